/*
 * handlers.c: the API's methods. Each decodes nothing itself (server.c hands
 * it the request message), reads counters or the database, and packs its
 * reply. Inputs are validated here; errors name the field.
 */
#include "rpc_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "policies.h"
#include "query.h"
#include "redirect.h"
#include "store.h"
#include "worker.h"

#ifndef AGENT_VERSION
#define AGENT_VERSION "0.0.0-dev"
#endif

int
rpc_db_open(struct rpc_server *srv, char *err, size_t errlen)
{
	if (sqlite3_open_v2(srv->cfg->db_path, &srv->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", srv->cfg->db_path,
		    srv->db != NULL ? sqlite3_errmsg(srv->db) : "cannot open");
		return -1;
	}
	sqlite3_busy_timeout(srv->db, 2000);
	return policies_open(srv->cfg->db_path, &srv->policy_db, err, errlen);
}

void
rpc_db_close(struct rpc_server *srv)
{
	if (srv->db != NULL)
		sqlite3_close(srv->db);
	srv->db = NULL;
	if (srv->policy_db != NULL)
		sqlite3_close(srv->policy_db);
	srv->policy_db = NULL;
}

/* ---- Agent ---- */

static grpc_status_code
get_info(struct rpc_server *srv, const ProtobufCMessage *req, grpc_byte_buffer **reply, char *msg,
    size_t msglen)
{
	const struct config *cfg = srv->cfg;
	Redirect__V1__AgentInfo info = REDIRECT__V1__AGENT_INFO__INIT;
	Redirect__V1__AgentInfo__ConfigEntry e[8], *ep[8];
	char host[256] = "", ports[512] = "", port[16], idle[16], conn[16], maxs[16];
	size_t n = 0;

	(void)req;
	(void)msg;
	(void)msglen;
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
	info.version = (char *)AGENT_VERSION;
	info.platform = (char *)"linux";
	info.hostname = host;
	info.started_at_us = srv->deps.started_at_us;
	info.agent_id = (char *)cfg->agent_id;
	info.listen_port = cfg->listen_port;
	info.mark = cfg->mark;
	info.workers = workers_count(cfg);
	info.db_path = (char *)cfg->db_path;
	info.n_config = n;
	info.config = ep;
	*reply = rpc_pack(&info.base);
	return GRPC_STATUS_OK;
}

static grpc_status_code
get_health(struct rpc_server *srv, const ProtobufCMessage *req, grpc_byte_buffer **reply, char *msg,
    size_t msglen)
{
	Redirect__V1__Health h = REDIRECT__V1__HEALTH__INIT;
	char r[3][160], *rp[3];
	size_t n = 0;
	struct store_stats ss;

	(void)req;
	(void)msg;
	(void)msglen;
	store_get_stats(srv->deps.store, &ss);
	if (srv->deps.redirect != NULL && redirect_rules_present(srv->deps.redirect) != 1)
		snprintf(r[n++], sizeof(r[0]),
		    "nft table redirect_agent_%s is missing: connections "
		    "are not redirected",
		    srv->cfg->agent_id);
	if (ss.queue_depth * 2 >= srv->cfg->queue_size)
		snprintf(r[n++], sizeof(r[0]), "database queue backlog: %llu of %u events",
		    (unsigned long long)ss.queue_depth, srv->cfg->queue_size);
	if (ss.events_dropped > 0)
		snprintf(r[n++], sizeof(r[0]), "%llu connection events were dropped since start",
		    (unsigned long long)ss.events_dropped);
	for (size_t i = 0; i < n; i++)
		rp[i] = r[i];
	h.status =
	    n == 0 ? REDIRECT__V1__HEALTH__STATUS__SERVING : REDIRECT__V1__HEALTH__STATUS__DEGRADED;
	h.n_reasons = n;
	h.reasons = rp;
	*reply = rpc_pack(&h.base);
	return GRPC_STATUS_OK;
}

/* ---- Telemetry ---- */

static grpc_status_code
get_stats(struct rpc_server *srv, const ProtobufCMessage *req, grpc_byte_buffer **reply, char *msg,
    size_t msglen)
{
	Redirect__V1__Stats s = REDIRECT__V1__STATS__INIT;
	struct proxy_stats_snapshot p;
	struct store_stats d;

	(void)req;
	(void)msg;
	(void)msglen;
	workers_get_stats(srv->deps.workers, &p);
	store_get_stats(srv->deps.store, &d);
	s.started_at_us = srv->deps.started_at_us;
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
	rpc_fill_rule_hits(srv, &s);
	*reply = rpc_pack(&s.base);
	rpc_free_rule_hits(&s);
	return GRPC_STATUS_OK;
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

/* Build a query filter from the request; on a bad field, msg names it. */
int rpc_filter_from_request(const Redirect__V1__ListConnectionsRequest *rq, struct conn_filter *f,
    char *msg, size_t msglen);

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
list_connections(struct rpc_server *srv, const ProtobufCMessage *req, grpc_byte_buffer **reply,
    char *msg, size_t msglen)
{
	const Redirect__V1__ListConnectionsRequest *rq =
	    (const Redirect__V1__ListConnectionsRequest *)req;
	Redirect__V1__ListConnectionsResponse resp = REDIRECT__V1__LIST_CONNECTIONS_RESPONSE__INIT;
	struct conn_filter f;
	struct page pg = {0};
	char next[QUERY_TOKEN_LEN + 1];
	grpc_status_code st = GRPC_STATUS_OK;
	int n;

	if (rpc_filter_from_request(rq, &f, msg, msglen) != 0)
		return GRPC_STATUS_INVALID_ARGUMENT;
	pg.cap = rq->page_size > 0 ? rq->page_size : QUERY_PAGE_DEFAULT;
	if ((pg.items = calloc(pg.cap, sizeof(*pg.items))) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	n = query_list_connections(
	    srv->db, &f, (unsigned)pg.cap, rq->page_token, next, collect, &pg, msg, msglen);
	if (n == -EINVAL) {
		st = GRPC_STATUS_INVALID_ARGUMENT;
	} else if (n == -ENOMEM) {
		snprintf(msg, msglen, "out of memory");
		st = GRPC_STATUS_RESOURCE_EXHAUSTED;
	} else if (n < 0) {
		log_warnx("rpc: ListConnections: %s", msg);
		st = GRPC_STATUS_INTERNAL;
	} else {
		resp.n_connections = pg.n;
		resp.connections = pg.items;
		resp.next_page_token = next;
		*reply = rpc_pack(&resp.base);
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
get_connection(struct rpc_server *srv, const ProtobufCMessage *req, grpc_byte_buffer **reply,
    char *msg, size_t msglen)
{
	const Redirect__V1__GetConnectionRequest *rq =
	    (const Redirect__V1__GetConnectionRequest *)req;
	Redirect__V1__Connection *c = NULL;
	int r;

	if (rq->id == 0) {
		snprintf(msg, msglen, "id: required");
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	r = query_get_connection(srv->db, rq->id, take_one, &c);
	if (r < 0) {
		snprintf(msg, msglen, "database error");
		return GRPC_STATUS_INTERNAL;
	}
	if (r == 0) {
		snprintf(msg, msglen, "no connection with id %llu", (unsigned long long)rq->id);
		return GRPC_STATUS_NOT_FOUND;
	}
	if (c == NULL) {
		snprintf(msg, msglen, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	*reply = rpc_pack(&c->base);
	rpc_conn_free(c);
	return GRPC_STATUS_OK;
}

const struct rpc_method rpc_methods[] = {
    {"/redirect.v1.Agent/GetInfo", RPC_ROLE_READER, 0, &redirect__v1__get_info_request__descriptor,
	get_info},
    {"/redirect.v1.Agent/GetHealth", RPC_ROLE_READER, 0,
	&redirect__v1__get_health_request__descriptor, get_health},
    {"/redirect.v1.Telemetry/GetStats", RPC_ROLE_READER, 0,
	&redirect__v1__get_stats_request__descriptor, get_stats},
    {"/redirect.v1.Telemetry/ListConnections", RPC_ROLE_READER, 0,
	&redirect__v1__list_connections_request__descriptor, list_connections},
    {"/redirect.v1.Telemetry/GetConnection", RPC_ROLE_READER, 0,
	&redirect__v1__get_connection_request__descriptor, get_connection},
    {"/redirect.v1.Telemetry/WatchConnections", RPC_ROLE_READER, 1,
	&redirect__v1__watch_connections_request__descriptor, NULL},
    {"/redirect.v1.Policy/GetPolicy", RPC_ROLE_ADMIN, 0,
	&redirect__v1__get_policy_request__descriptor, rpc_get_policy},
    {"/redirect.v1.Policy/SetPolicy", RPC_ROLE_ADMIN, 0,
	&redirect__v1__set_policy_request__descriptor, rpc_set_policy},
    {"/redirect.v1.Policy/ValidatePolicy", RPC_ROLE_ADMIN, 0,
	&redirect__v1__validate_policy_request__descriptor, rpc_validate_policy},
    {"/redirect.v1.Policy/ListPolicyHistory", RPC_ROLE_ADMIN, 0,
	&redirect__v1__list_policy_history_request__descriptor, rpc_list_policy_history},
};
const size_t rpc_n_methods = sizeof(rpc_methods) / sizeof(rpc_methods[0]);
