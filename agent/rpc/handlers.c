/*
 * handlers.c: the API's method table and the Agent and Telemetry methods,
 * whatever the transport (rpc_internal.h). A method decodes nothing itself
 * (rpc_call hands it the request), reads counters or the database, and packs
 * its reply. Inputs are validated here; errors name the field.
 */
#include "rpc_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "export.h"
#include "log.h"
#include "owner.h"
#include "policies.h"
#include "policy.h"
#include "query.h"
#include "redirect.h"
#include "store.h"
#include "version.h"
#include "worker.h"

int
rpc_core_new(struct rpc_core **out, const struct rpc_deps *deps, char *err, size_t errlen)
{
	struct rpc_core *core = calloc(1, sizeof(*core));
	struct policy_row row;

	*out = NULL;
	if (core == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	core->deps = *deps;
	core->cfg = deps->cfg;
	if (policies_open(deps->cfg->db_path, &core->policies, err, errlen) != 0 ||
	    query_open(deps->cfg->db_path, &core->call_q, err, errlen) != 0) {
		policies_close(core->policies);
		free(core);
		return -1;
	}
	policies_set_keep(core->policies, deps->cfg->policy_history_keep);
	pthread_mutex_init(&core->policy_lock, NULL);
	pthread_mutex_init(&core->call_lock, NULL);
	/* A version the fleet set is still the fleet's after a restart. */
	if (policy_version(policy_current(deps->policy)) > 0 &&
	    policies_get(core->policies, policy_version(policy_current(deps->policy)), &row) == 1) {
		if (strncmp(row.author, "fleet:", 6) == 0)
			snprintf(
			    core->fleet_source, sizeof(core->fleet_source), "%s", row.author + 6);
		policy_row_free(&row);
	}
	*out = core;
	return 0;
}

void
rpc_core_set_deps(struct rpc_core *core, const struct rpc_deps *deps)
{
	core->deps = *deps;
}

void
rpc_core_free(struct rpc_core *core)
{
	if (core == NULL)
		return;
	policies_close(core->policies);
	query_close(core->call_q);
	pthread_mutex_destroy(&core->policy_lock);
	pthread_mutex_destroy(&core->call_lock);
	free(core);
}

void
rpc_core_set_policy_history_keep(struct rpc_core *core, unsigned keep)
{
	pthread_mutex_lock(&core->policy_lock); /* the policy store's */
	if (core->policies != NULL)
		policies_set_keep(core->policies, keep);
	pthread_mutex_unlock(&core->policy_lock);
}

int
rpc_core_call(struct rpc_core *core, const char *path, const uint8_t *req, size_t len,
    uint8_t **reply, size_t *reply_len, char *msg, size_t msglen)
{
	const struct rpc_method *m = rpc_method_by_path(path);
	struct rpc_ctx cx = {.core = core, .caller = "a fleet console (NATS)"};
	grpc_status_code st;

	*reply = NULL;
	*reply_len = 0;
	if (m == NULL) {
		snprintf(msg, msglen, "unknown method %s", path);
		return GRPC_STATUS_UNIMPLEMENTED;
	}
	if (m->handle == NULL) {
		snprintf(msg, msglen, "%s is a stream: read the fleet's stream instead", path);
		return GRPC_STATUS_UNIMPLEMENTED;
	}
	pthread_mutex_lock(&core->call_lock);
	cx.q = core->call_q;
	st = rpc_call(&cx, m, RPC_ROLE_ADMIN, req, len);
	pthread_mutex_unlock(&core->call_lock);
	if (st == GRPC_STATUS_OK) {
		*reply = cx.reply;
		*reply_len = cx.reply_len;
	} else {
		free(cx.reply);
		snprintf(msg, msglen, "%s", cx.msg);
	}
	return (int)st;
}

grpc_status_code
rpc_fail(struct rpc_ctx *cx, grpc_status_code status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cx->msg, sizeof(cx->msg), fmt, ap);
	va_end(ap);
	return status;
}

grpc_status_code
rpc_reply(struct rpc_ctx *cx, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);

	if (len > RPC_MAX_REPLY_BYTES)
		return rpc_fail(cx, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "the reply would be %zu bytes, over the limit of %d", len, RPC_MAX_REPLY_BYTES);
	free(cx->reply);
	if ((cx->reply = malloc(len > 0 ? len : 1)) == NULL)
		return rpc_fail(cx, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	cx->reply_len = protobuf_c_message_pack(msg, cx->reply);
	return GRPC_STATUS_OK;
}

/* Read a varint at *p (below end). Returns 0, or -1 when it runs past end. */
static int
wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	*out = 0;
	for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;

		*out |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return 0;
	}
	return -1;
}

/* rpc_string_with_nul, DEPTH levels of nesting down. */
static const char *
string_with_nul_at(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth)
{
	const uint8_t *end = p + len;

	while (p < end) {
		uint64_t key, n;
		const ProtobufCFieldDescriptor *f;
		const char *inner;

		if (wire_varint(&p, end, &key) != 0)
			return NULL;
		switch (key & 7) {
		case 0:
			if (wire_varint(&p, end, &n) != 0)
				return NULL;
			continue;
		case 1:
			n = 8;
			break;
		case 5:
			n = 4;
			break;
		case 2:
			if (wire_varint(&p, end, &n) != 0 || n > (uint64_t)(end - p))
				return NULL;
			f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
			if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
			    memchr(p, 0, n) != NULL)
				return f->name;
			if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < 16 &&
			    (inner = string_with_nul_at(f->descriptor, p, n, depth + 1)) != NULL)
				return inner;
			break;
		default:
			return NULL;
		}
		if (n > (uint64_t)(end - p))
			return NULL;
		p += n;
	}
	return NULL;
}

const char *
rpc_string_with_nul(const ProtobufCMessageDescriptor *d, const uint8_t *req, size_t len)
{
	return string_with_nul_at(d, req, len, 0);
}

grpc_status_code
rpc_call(struct rpc_ctx *cx, const struct rpc_method *m, enum rpc_role role, const uint8_t *req,
    size_t len)
{
	const char *nul;
	ProtobufCMessage *msg;
	grpc_status_code st;

	cx->msg[0] = '\0';
	if (role < m->needs) {
		if (role == RPC_ROLE_NONE)
			rpc_fail(cx, GRPC_STATUS_PERMISSION_DENIED, "%s has no role on this agent",
			    cx->caller);
		else
			rpc_fail(cx, GRPC_STATUS_PERMISSION_DENIED,
			    "%s is a reader: %s needs the admin role", cx->caller, m->path);
		log_info("rpc: refused %s: %s", m->path, cx->msg);
		return GRPC_STATUS_PERMISSION_DENIED;
	}
	if (len > RPC_MAX_REQUEST_BYTES)
		return rpc_fail(cx, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "the request is %zu bytes, over the limit of %d", len, RPC_MAX_REQUEST_BYTES);
	if ((msg = protobuf_c_message_unpack(m->input, NULL, len, req)) == NULL)
		return rpc_fail(cx, GRPC_STATUS_INVALID_ARGUMENT, "malformed request: not a %s",
		    m->input->name);
	if ((nul = rpc_string_with_nul(m->input, req, len)) != NULL) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return rpc_fail(cx, GRPC_STATUS_INVALID_ARGUMENT,
		    "%s holds a NUL byte: it would be cut there; refused", nul);
	}
	cx->req = msg;
	st = m->handle(cx);
	cx->req = NULL;
	protobuf_c_message_free_unpacked(msg, NULL);
	if (st != GRPC_STATUS_OK)
		log_debug("rpc: %s: status %d: %s", m->path, (int)st, cx->msg);
	return st;
}

/* ---- Agent ---- */

static grpc_status_code
get_info(struct rpc_ctx *cx)
{
	const struct config *cfg = cx->core->cfg;
	Redirect__V1__AgentInfo info = REDIRECT__V1__AGENT_INFO__INIT;
	Redirect__V1__AgentInfo__ConfigEntry e[8], *ep[8];
	char host[256] = "", ports[512] = "", port[16], idle[16], conn[16], maxs[16];
	size_t n = 0;

	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	for (size_t i = 0; i < cfg->n_redirect_ports; i++) {
		size_t off = strlen(ports);

		if (cfg->redirect_ports[i].lo == cfg->redirect_ports[i].hi)
			snprintf(ports + off, sizeof(ports) - off, "%s%u", i ? ", " : "",
			    (unsigned)cfg->redirect_ports[i].lo);
		else
			snprintf(ports + off, sizeof(ports) - off, "%s%u-%u", i ? ", " : "",
			    (unsigned)cfg->redirect_ports[i].lo,
			    (unsigned)cfg->redirect_ports[i].hi);
	}
	snprintf(port, sizeof(port), "%u", (unsigned)cfg->listen_port);
	snprintf(idle, sizeof(idle), "%u", cfg->idle_timeout_s);
	snprintf(conn, sizeof(conn), "%u", cfg->connect_timeout_ms);
	snprintf(maxs, sizeof(maxs), "%u", cfg->max_sessions);
#define ENTRY(k, v)                                                                                \
	do {                                                                                       \
		redirect__v1__agent_info__config_entry__init(&e[n]);                               \
		e[n].key = (char *)(k);                                                            \
		e[n].value = (char *)(v);                                                          \
		ep[n] = &e[n];                                                                     \
		n++;                                                                               \
	} while (0)
	ENTRY("proxy.listen_port", port);
	ENTRY("proxy.redirect_ports", ports);
	ENTRY("proxy.connect_timeout_ms", conn);
	ENTRY("proxy.idle_timeout_s", idle);
	ENTRY("proxy.max_sessions", maxs);
	ENTRY("db.path", cfg->db_path);
	ENTRY("api.local_socket", cfg->local_socket);
#undef ENTRY
	info.version = (char *)RA_VERSION;
	info.platform = (char *)platform_name();
	info.hostname = host;
	info.started_at_us = cx->core->deps.started_at_us;
	info.agent_id = (char *)cfg->agent_id;
	info.listen_port = cfg->listen_port;
	info.mark = cfg->mark;
	info.workers = workers_count(cfg);
	info.db_path = (char *)cfg->db_path;
	info.agent_uuid = (char *)store_agent_uuid(cx->core->deps.store);
	info.n_config = n;
	info.config = ep;
	return rpc_reply(cx, &info.base);
}

#define HEALTH_MAX_REASONS 8

int
rpc_health(struct rpc_core *core, char (*r)[STORE_PROBLEM_LEN], size_t max, size_t *out)
{
	struct export_sink_stats sinks[4];
	size_t n = 0, n_sinks;
	struct store_stats ss;
	int64_t now = clock_wall_us();

#define REASON(...)                                                                                \
	do {                                                                                       \
		if (n < max)                                                                       \
			snprintf(r[n++], STORE_PROBLEM_LEN, __VA_ARGS__);                          \
	} while (0)
	store_get_stats(core->deps.store, &ss);
	if (core->deps.redirect != NULL && redirect_rules_present(core->deps.redirect) != 1)
		REASON("nft table redirect_agent_%s is missing: connections are not redirected",
		    core->cfg->agent_id);
	if (ss.incident[0] != '\0')
		REASON("%s", ss.incident);
	if (core->deps.redirect != NULL && owner_problem() != NULL)
		REASON("%s", owner_problem());
	if (ss.write_error[0] != '\0')
		REASON("%s", ss.write_error);
	if (ss.queue_depth * 2 >= core->cfg->queue_size)
		REASON("database queue backlog: %llu of %u events",
		    (unsigned long long)ss.queue_depth, core->cfg->queue_size);
	if (ss.events_dropped > 0)
		REASON("%llu connection events were dropped since start",
		    (unsigned long long)ss.events_dropped);
	/* A sink down for longer than degraded_after_s, or one that lost events. */
	n_sinks = export_get_stats(core->deps.exporter, sinks, 4);
	for (size_t i = 0; i < n_sinks; i++) {
		const struct export_sink_stats *e = &sinks[i];

		if (e->state == EXPORT_RETRYING && e->down_since_us > 0 &&
		    now - e->down_since_us >= (int64_t)core->cfg->degraded_after_s * 1000000)
			REASON("export %.15s cannot ship for %llds (%llu events pending): %.200s",
			    e->name, (long long)((now - e->down_since_us) / 1000000),
			    (unsigned long long)e->pending, e->last_error);
		if (e->lost > 0)
			REASON("export %.15s lost %llu events: they were pruned before it could "
			       "ship them ([export] max_backlog)",
			    e->name, (unsigned long long)e->lost);
	}
#undef REASON
	*out = n;
	return n == 0;
}

static grpc_status_code
get_health(struct rpc_ctx *cx)
{
	Redirect__V1__Health h = REDIRECT__V1__HEALTH__INIT;
	char r[HEALTH_MAX_REASONS][STORE_PROBLEM_LEN], *rp[HEALTH_MAX_REASONS];
	size_t n;

	rpc_health(cx->core, r, HEALTH_MAX_REASONS, &n);
	for (size_t i = 0; i < n; i++)
		rp[i] = r[i];
	h.status =
	    n == 0 ? REDIRECT__V1__HEALTH__STATUS__SERVING : REDIRECT__V1__HEALTH__STATUS__DEGRADED;
	h.n_reasons = n;
	h.reasons = rp;
	return rpc_reply(cx, &h.base);
}

static grpc_status_code
reload(struct rpc_ctx *cx)
{
	Redirect__V1__ReloadResponse r = REDIRECT__V1__RELOAD_RESPONSE__INIT;
	char msg[RPC_MSG_MAX];
	int rc;

	if (cx->core->deps.reload == NULL)
		return rpc_fail(cx, GRPC_STATUS_UNIMPLEMENTED, "this agent cannot reload");
	rc = cx->core->deps.reload(cx->core->deps.reload_ctx, msg, sizeof(msg));
	if (rc != 0)
		return rpc_fail(cx,
		    rc == -EBUSY    ? GRPC_STATUS_FAILED_PRECONDITION
		    : rc == -EINVAL ? GRPC_STATUS_INVALID_ARGUMENT
				    : GRPC_STATUS_INTERNAL,
		    "%s", msg);
	log_info("rpc: reload by %s: %s", cx->caller, msg);
	r.message = msg;
	return rpc_reply(cx, &r.base);
}

/* ---- Telemetry ---- */

static grpc_status_code
get_stats(struct rpc_ctx *cx)
{
	struct rpc_core *core = cx->core;
	Redirect__V1__Stats s = REDIRECT__V1__STATS__INIT;
	Redirect__V1__ExportSink es[4], *esp[4];
	struct export_sink_stats sinks[4];
	struct proxy_stats_snapshot p;
	struct store_stats d;
	grpc_status_code st;
	size_t n_sinks;

	workers_get_stats(core->deps.workers, &p);
	store_get_stats(core->deps.store, &d);
	s.started_at_us = core->deps.started_at_us;
	s.accepted = p.accepted;
	s.active = p.active;
	s.relayed = p.relayed;
	s.failed = p.failed;
	s.refused = p.refused;
	s.by_self = p.by_self;
	s.previously_by_self = p.previously_by_self;
	s.bytes_up = p.bytes_up;
	s.bytes_down = p.bytes_down;
	s.accept_errors = p.accept_errors;
	s.accept_paused = p.accept_paused;
	s.db_events_submitted = d.submitted;
	s.db_rows_written = d.rows_written;
	s.db_batches = d.batches;
	s.db_queue_depth = d.queue_depth;
	s.db_queue_high_water = d.queue_high_water;
	s.events_dropped = d.events_dropped;
	s.db_rows_pruned = d.rows_pruned;
	s.interrupted_at_start = d.interrupted_at_start;
	s.blocked = p.blocked;
	n_sinks = export_get_stats(core->deps.exporter, sinks, 4);
	for (size_t i = 0; i < n_sinks; i++) {
		redirect__v1__export_sink__init(&es[i]);
		es[i].name = sinks[i].name;
		es[i].state = sinks[i].state == EXPORT_CONNECTED
				  ? REDIRECT__V1__EXPORT_SINK__STATE__CONNECTED
				  : REDIRECT__V1__EXPORT_SINK__STATE__RETRYING;
		es[i].acked_sequence = sinks[i].acked;
		es[i].pending = sinks[i].pending;
		es[i].oldest_pending_us = sinks[i].oldest_pending_us;
		es[i].shipped = sinks[i].shipped;
		es[i].lost = sinks[i].lost;
		es[i].last_error = sinks[i].last_error;
		es[i].down_since_us = sinks[i].down_since_us;
		esp[i] = &es[i];
		s.export_lost += sinks[i].lost;
	}
	s.n_export_sinks = n_sinks;
	s.export_sinks = esp;
	pthread_mutex_lock(&core->policy_lock);
	rpc_fill_rule_hits(core, &s);
	st = rpc_reply(cx, &s.base);
	rpc_free_rule_hits(&s);
	pthread_mutex_unlock(&core->policy_lock);
	return st;
}

/*
 * A Connection message holding its own copies of a row's strings and blobs
 * (rpc_internal.h). NULL when any copy failed: never a half-filled message.
 */
Redirect__V1__Connection *
rpc_conn_new(const struct conn_row *r)
{
	Redirect__V1__Connection *c = malloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	redirect__v1__connection__init(c);
	c->id = r->id;
	c->opened_at_us = r->opened_at_us;
	c->closed_at_us = r->closed_at_us;
	c->family = r->family;
	c->client_addr = strdup(r->client_addr);
	c->client_port = r->client_port;
	c->orig_dst_addr = strdup(r->orig_dst_addr);
	c->orig_dst_port = r->orig_dst_port;
	c->upstream_local_addr = strdup(r->upstream_local_addr);
	c->upstream_local_port = r->upstream_local_port;
	c->redirect_state = strdup(r->redirect_state);
	c->records_mark = r->records_mark;
	c->verdict = strdup(r->verdict);
	c->state = strdup(r->state);
	c->bytes_up = r->bytes_up;
	c->bytes_down = r->bytes_down;
	c->connect_us = r->connect_us;
	c->close_reason = strdup(r->close_reason);
	c->error = strdup(r->error);
	c->uid = r->uid;
	c->pid = r->pid;
	c->exe = strdup(r->exe);
	c->policy_version = r->policy_version;
	c->rule_id = strdup(r->rule_id);
	c->server_name = strdup(r->server_name);
	if (r->redirect_records_len > 0 &&
	    (c->redirect_records.data = malloc(r->redirect_records_len)))
		memcpy(c->redirect_records.data, r->redirect_records,
		    c->redirect_records.len = r->redirect_records_len);
	if (r->redirect_context_len > 0 &&
	    (c->redirect_context.data = malloc(r->redirect_context_len)))
		memcpy(c->redirect_context.data, r->redirect_context,
		    c->redirect_context.len = r->redirect_context_len);
	if (!c->client_addr || !c->orig_dst_addr || !c->upstream_local_addr || !c->redirect_state ||
	    !c->verdict || !c->state || !c->close_reason || !c->error || !c->exe || !c->rule_id ||
	    !c->server_name || (r->redirect_records_len > 0 && c->redirect_records.data == NULL) ||
	    (r->redirect_context_len > 0 && c->redirect_context.data == NULL)) {
		rpc_conn_free(c);
		return NULL;
	}
	return c;
}

void
rpc_conn_free(Redirect__V1__Connection *c)
{
	if (c == NULL)
		return;
	/* The init'ed defaults point at protobuf-c's empty string: never freed. */
	char **strs[] = {&c->client_addr, &c->orig_dst_addr, &c->upstream_local_addr,
	    &c->redirect_state, &c->verdict, &c->state, &c->close_reason, &c->error, &c->exe,
	    &c->rule_id, &c->server_name};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (*strs[i] != protobuf_c_empty_string)
			free(*strs[i]);
	free(c->redirect_records.data);
	free(c->redirect_context.data);
	free(c);
}

struct page {
	Redirect__V1__Connection **items;
	size_t n, cap;
};

static int
collect(void *arg, const struct conn_row *r)
{
	struct page *pg = arg;
	Redirect__V1__Connection *c = rpc_conn_new(r);

	if (c == NULL || pg->n == pg->cap) {
		rpc_conn_free(c);
		return -ENOMEM;
	}
	pg->items[pg->n++] = c;
	return 0;
}

static int
copy_word(char *dst, size_t len, const char *src, const char *field, char *msg, size_t msglen)
{
	if (strlen(src) >= len) {
		snprintf(msg, msglen, "%s: too long", field);
		return -1;
	}
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

int
rpc_filter_from_request(
    const Redirect__V1__ListConnectionsRequest *rq, struct conn_filter *f, char *msg, size_t msglen)
{
	char why[160];

	memset(f, 0, sizeof(*f));
	if (rq->since_us < 0 || rq->until_us < 0) {
		snprintf(msg, msglen, "since_us/until_us: must not be negative");
		return -1;
	}
	f->since_us = rq->since_us;
	f->until_us = rq->until_us;
	if (rq->dst_cidr != NULL && rq->dst_cidr[0] != '\0') {
		if (addr_parse_cidr(rq->dst_cidr, &f->dst, why, sizeof(why)) != 0) {
			snprintf(msg, msglen, "dst_cidr: %s", why);
			return -1;
		}
		f->has_cidr = 1;
	}
	if (rq->dst_port > 65535) {
		snprintf(msg, msglen, "dst_port: %u is not a port", rq->dst_port);
		return -1;
	}
	f->dst_port = (uint16_t)rq->dst_port;
	if (copy_word(f->state, sizeof(f->state), rq->state, "state", msg, msglen) != 0 ||
	    copy_word(f->verdict, sizeof(f->verdict), rq->verdict, "verdict", msg, msglen) != 0 ||
	    copy_word(f->redirect_state, sizeof(f->redirect_state), rq->redirect_state,
		"redirect_state", msg, msglen) != 0)
		return -1;
	if (query_filter_check(f, msg, msglen) != 0)
		return -1;
	if (rq->page_size > QUERY_PAGE_MAX) {
		snprintf(msg, msglen, "page_size: %u is over the limit of %d", rq->page_size,
		    QUERY_PAGE_MAX);
		return -1;
	}
	return 0;
}

static grpc_status_code
list_connections(struct rpc_ctx *cx)
{
	const Redirect__V1__ListConnectionsRequest *rq =
	    (const Redirect__V1__ListConnectionsRequest *)cx->req;
	Redirect__V1__ListConnectionsResponse resp = REDIRECT__V1__LIST_CONNECTIONS_RESPONSE__INIT;
	struct conn_filter f;
	struct page pg = {0};
	char next[QUERY_TOKEN_LEN + 1];
	grpc_status_code st = GRPC_STATUS_OK;
	int n;

	if (rpc_filter_from_request(rq, &f, cx->msg, sizeof(cx->msg)) != 0)
		return GRPC_STATUS_INVALID_ARGUMENT;
	pg.cap = rq->page_size > 0 ? rq->page_size : QUERY_PAGE_DEFAULT;
	if ((pg.items = calloc(pg.cap, sizeof(*pg.items))) == NULL)
		return rpc_fail(cx, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	n = query_list_connections(cx->q, &f, (unsigned)pg.cap, rq->page_token, next, collect, &pg,
	    cx->msg, sizeof(cx->msg));
	if (n == -EINVAL) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
	} else if (n == -ENOMEM) {
		st = rpc_fail(cx, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	} else if (n < 0) {
		log_warnx("rpc: ListConnections: %s", cx->msg);
		st = GRPC_STATUS_INTERNAL;
	} else {
		resp.n_connections = pg.n;
		resp.connections = pg.items;
		resp.next_page_token = next;
		st = rpc_reply(cx, &resp.base);
	}
	for (size_t i = 0; i < pg.n; i++)
		rpc_conn_free(pg.items[i]);
	free(pg.items);
	return st;
}

static int
take_one(void *arg, const struct conn_row *r)
{
	*(Redirect__V1__Connection **)arg = rpc_conn_new(r);
	return 0;
}

static grpc_status_code
get_connection(struct rpc_ctx *cx)
{
	const Redirect__V1__GetConnectionRequest *rq =
	    (const Redirect__V1__GetConnectionRequest *)cx->req;
	Redirect__V1__Connection *c = NULL;
	grpc_status_code st;
	int r;

	if (rq->id == 0)
		return rpc_fail(cx, GRPC_STATUS_INVALID_ARGUMENT, "id: required");
	r = query_get_connection(cx->q, rq->id, take_one, &c);
	if (r < 0)
		return rpc_fail(cx, GRPC_STATUS_INTERNAL, "database error");
	if (r == 0)
		return rpc_fail(cx, GRPC_STATUS_NOT_FOUND, "no connection with id %llu",
		    (unsigned long long)rq->id);
	if (c == NULL)
		return rpc_fail(cx, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	st = rpc_reply(cx, &c->base);
	rpc_conn_free(c);
	return st;
}

#define METHOD(service, name, role, in, fn, fast)                                                  \
	{                                                                                          \
		"/redirect.v1." service "/" name, service, name, role, &in##__descriptor, fn, fast \
	}
#define FAST 1 /* reads counters only: served on the fast queue (server.c) */
#define SLOW 0

const struct rpc_method rpc_methods[] = {
    METHOD("Agent", "GetInfo", RPC_ROLE_READER, redirect__v1__get_info_request, get_info, FAST),
    METHOD(
	"Agent", "GetHealth", RPC_ROLE_READER, redirect__v1__get_health_request, get_health, FAST),
    /* Reads the file and may replace the nft table: never on the fast queue. */
    METHOD("Agent", "Reload", RPC_ROLE_ADMIN, redirect__v1__reload_request, reload, SLOW),
    METHOD("Telemetry", "GetStats", RPC_ROLE_READER, redirect__v1__get_stats_request, get_stats,
	SLOW), /* the policy lock, for rule hits */
    METHOD("Telemetry", "ListConnections", RPC_ROLE_READER, redirect__v1__list_connections_request,
	list_connections, SLOW),
    METHOD("Telemetry", "GetConnection", RPC_ROLE_READER, redirect__v1__get_connection_request,
	get_connection, SLOW),
    /* Its start reads one number; its events are read by the watch thread. */
    METHOD("Telemetry", "WatchConnections", RPC_ROLE_READER,
	redirect__v1__watch_connections_request, NULL, FAST),
    METHOD("Policy", "GetPolicy", RPC_ROLE_ADMIN, redirect__v1__get_policy_request, rpc_get_policy,
	SLOW),
    METHOD("Policy", "SetPolicy", RPC_ROLE_ADMIN, redirect__v1__set_policy_request, rpc_set_policy,
	SLOW),
    METHOD("Policy", "ValidatePolicy", RPC_ROLE_ADMIN, redirect__v1__validate_policy_request,
	rpc_validate_policy, SLOW),
    METHOD("Policy", "ListPolicyHistory", RPC_ROLE_ADMIN, redirect__v1__list_policy_history_request,
	rpc_list_policy_history, SLOW),
};
const size_t rpc_n_methods = sizeof(rpc_methods) / sizeof(rpc_methods[0]);

const struct rpc_method *
rpc_method_by_path(const char *path)
{
	for (size_t i = 0; i < rpc_n_methods; i++)
		if (strcmp(rpc_methods[i].path, path) == 0)
			return &rpc_methods[i];
	return NULL;
}

const struct rpc_method *
rpc_method_by_name(const char *service, const char *name)
{
	for (size_t i = 0; i < rpc_n_methods; i++)
		if (strcmp(rpc_methods[i].service, service) == 0 &&
		    strcmp(rpc_methods[i].name, name) == 0)
			return &rpc_methods[i];
	return NULL;
}
