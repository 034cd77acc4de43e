/*
 * output.c: redirectctl's output (output.h).
 */
#include "output.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "records.h"

/* ---- formatting ---- */

const char *
out_safe(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	if (len == 0)
		return buf;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && o + 5 < len; p++) {
		if (*p == 0x1b) {
			buf[o++] = '\\';
			buf[o++] = 'e';
		} else if (*p < 0x20 || *p == 0x7f) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
		} else {
			buf[o++] = (char)*p;
		}
	}
	buf[o] = '\0';
	return buf;
}

/* A shorthand for one safe string in a printf argument list. */
#define SAFE(s) out_safe((s), (char[1024]){0}, 1024)

static const char *
fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

static const char *
fmt_time(int64_t us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (us <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static const char *
fmt_duration_us(int64_t us, char *buf, size_t len)
{
	if (us < 0)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%" PRId64 " us", us);
	else if (us < 1000000)
		snprintf(buf, len, "%.1f ms", (double)us / 1000);
	else if (us < 60000000)
		snprintf(buf, len, "%.1f s", (double)us / 1000000);
	else if (us < (int64_t)3600 * 1000000)
		snprintf(buf, len, "%" PRId64 "m %" PRId64 "s", us / 60000000, us / 1000000 % 60);
	else
		snprintf(
		    buf, len, "%" PRId64 "h %" PRId64 "m", us / 3600000000, us / 60000000 % 60);
	return buf;
}

static void
print_json(json_t *doc)
{
	json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(doc);
}

static char *
hex(const ProtobufCBinaryData *b)
{
	char *s = malloc(b->len * 2 + 1);

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < b->len; i++)
		snprintf(s + 2 * i, 3, "%02x", b->data[i]);
	s[b->len * 2] = '\0';
	return s;
}

/* ---- status, stats ---- */

static json_t *
sinks_json(const Redirect__V1__Stats *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n_export_sinks; i++) {
		const Redirect__V1__ExportSink *e = s->export_sinks[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(e->name));
		json_object_set_new(o, "state",
		    json_string(e->state == REDIRECT__V1__EXPORT_SINK__STATE__CONNECTED
				    ? "connected"
				    : "retrying"));
		json_object_set_new(
		    o, "acked_sequence", json_integer((json_int_t)e->acked_sequence));
		json_object_set_new(o, "pending", json_integer((json_int_t)e->pending));
		json_object_set_new(o, "oldest_pending_us", json_integer(e->oldest_pending_us));
		json_object_set_new(o, "shipped", json_integer((json_int_t)e->shipped));
		json_object_set_new(o, "lost", json_integer((json_int_t)e->lost));
		json_object_set_new(o, "last_error", json_string(e->last_error));
		json_object_set_new(o, "down_since_us", json_integer(e->down_since_us));
		json_array_append_new(a, o);
	}
	return a;
}

void
out_status(int json, const Redirect__V1__AgentInfo *info, const Redirect__V1__Health *h)
{
	char t[32], up[32];

	if (json) {
		json_t *doc = json_object(), *cfg = json_object(), *reasons = json_array();

		json_object_set_new(doc, "agent_id", json_string(info->agent_id));
		json_object_set_new(doc, "agent_uuid", json_string(info->agent_uuid));
		json_object_set_new(doc, "version", json_string(info->version));
		json_object_set_new(doc, "platform", json_string(info->platform));
		json_object_set_new(doc, "hostname", json_string(info->hostname));
		json_object_set_new(doc, "started_at_us", json_integer(info->started_at_us));
		json_object_set_new(doc, "listen_port", json_integer(info->listen_port));
		json_object_set_new(doc, "mark", json_integer(info->mark));
		json_object_set_new(doc, "workers", json_integer(info->workers));
		json_object_set_new(doc, "db_path", json_string(info->db_path));
		for (size_t i = 0; i < info->n_config; i++)
			json_object_set_new(
			    cfg, info->config[i]->key, json_string(info->config[i]->value));
		json_object_set_new(doc, "config", cfg);
		json_object_set_new(doc, "health",
		    json_string(h->status == REDIRECT__V1__HEALTH__STATUS__SERVING ? "serving"
										   : "degraded"));
		for (size_t i = 0; i < h->n_reasons; i++)
			json_array_append_new(reasons, json_string(h->reasons[i]));
		json_object_set_new(doc, "health_reasons", reasons);
		print_json(doc);
		return;
	}
	printf("%-10s %s (redirect-agent %s, %s, host %s)\n", "agent", SAFE(info->agent_id),
	    SAFE(info->version), SAFE(info->platform), SAFE(info->hostname));
	printf("%-10s %s\n", "uuid", SAFE(info->agent_uuid));
	printf("%-10s %s\n", "health",
	    h->status == REDIRECT__V1__HEALTH__STATUS__SERVING ? "serving" : "degraded");
	for (size_t i = 0; i < h->n_reasons; i++)
		printf("%-10s - %s\n", "", SAFE(h->reasons[i]));
	printf("%-10s %s UTC (up %s)\n", "started", fmt_time(info->started_at_us, t, sizeof(t)),
	    fmt_duration_us(clock_wall_us() - info->started_at_us, up, sizeof(up)));
	printf("%-10s port %u, mark 0x%x, %u workers\n", "listening", info->listen_port, info->mark,
	    info->workers);
	printf("%-10s %s\n", "database", SAFE(info->db_path));
}

void
out_stats(int json, const Redirect__V1__Stats *s)
{
	char b1[32], b2[32];
	const struct {
		const char *name;
		uint64_t v;
	} rows[] = {
	    {"accepted", s->accepted},
	    {"active", s->active},
	    {"relayed", s->relayed},
	    {"failed", s->failed},
	    {"refused", s->refused},
	    {"by_self", s->by_self},
	    {"previously_by_self", s->previously_by_self},
	    {"blocked", s->blocked},
	    {"policy_version", s->policy_version},
	    {"bytes_up", s->bytes_up},
	    {"bytes_down", s->bytes_down},
	    {"accept_errors", s->accept_errors},
	    {"accept_paused", s->accept_paused},
	    {"db_events_submitted", s->db_events_submitted},
	    {"db_rows_written", s->db_rows_written},
	    {"db_batches", s->db_batches},
	    {"db_queue_depth", s->db_queue_depth},
	    {"db_queue_high_water", s->db_queue_high_water},
	    {"events_dropped", s->events_dropped},
	    {"db_rows_pruned", s->db_rows_pruned},
	    {"interrupted_at_start", s->interrupted_at_start},
	};

	if (json) {
		json_t *doc = json_object(), *hits = json_array();

		json_object_set_new(doc, "started_at_us", json_integer(s->started_at_us));
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			json_object_set_new(doc, rows[i].name, json_integer((json_int_t)rows[i].v));
		for (size_t i = 0; i < s->n_rule_hits; i++) {
			json_t *h = json_object();

			json_object_set_new(h, "rule_id", json_string(s->rule_hits[i]->rule_id));
			json_object_set_new(h, "action", json_string(s->rule_hits[i]->action));
			json_object_set_new(
			    h, "hits", json_integer((json_int_t)s->rule_hits[i]->hits));
			json_array_append_new(hits, h);
		}
		json_object_set_new(doc, "rule_hits", hits);
		json_object_set_new(doc, "export_lost", json_integer((json_int_t)s->export_lost));
		json_object_set_new(doc, "export_sinks", sinks_json(s));
		print_json(doc);
		return;
	}
	printf("connections  %" PRIu64 " accepted, %" PRIu64 " active, %" PRIu64
	       " relayed, %" PRIu64 " failed, %" PRIu64 " refused\n",
	    s->accepted, s->active, s->relayed, s->failed, s->refused);
	printf("loops        %" PRIu64 " by_self, %" PRIu64
	       " previously_by_self (relayed once with the escape mark)\n",
	    s->by_self, s->previously_by_self);
	printf("bytes        %s up, %s down (closed connections)\n",
	    fmt_bytes(s->bytes_up, b1, sizeof(b1)), fmt_bytes(s->bytes_down, b2, sizeof(b2)));
	printf("accept       %" PRIu64 " errors, %" PRIu64 " pauses at max_sessions\n",
	    s->accept_errors, s->accept_paused);
	printf("database     %" PRIu64 " events written in %" PRIu64 " batches, queue %" PRIu64
	       " (high-water %" PRIu64 "), %" PRIu64 " dropped, %" PRIu64 " pruned\n",
	    s->db_rows_written, s->db_batches, s->db_queue_depth, s->db_queue_high_water,
	    s->events_dropped, s->db_rows_pruned);
	printf("recovery     %" PRIu64 " connections marked interrupted at start\n",
	    s->interrupted_at_start);
	printf("policy       version %" PRIu64 ", %" PRIu64 " connections blocked\n",
	    s->policy_version, s->blocked);
	for (size_t i = 0; i < s->n_export_sinks; i++) {
		const Redirect__V1__ExportSink *e = s->export_sinks[i];
		char age[32] = "";

		if (e->oldest_pending_us > 0)
			fmt_duration_us(clock_wall_us() - e->oldest_pending_us, age, sizeof(age));
		printf("export       %s %s, acknowledged up to %" PRIu64 ", %" PRIu64
		       " pending%s%s%s, %" PRIu64 " shipped, %" PRIu64 " lost\n",
		    SAFE(e->name),
		    e->state == REDIRECT__V1__EXPORT_SINK__STATE__CONNECTED ? "connected"
									    : "retrying",
		    e->acked_sequence, e->pending, age[0] != '\0' ? " (oldest " : "", age,
		    age[0] != '\0' ? " old)" : "", e->shipped, e->lost);
		if (e->last_error[0] != '\0')
			printf("             last error: %s\n", SAFE(e->last_error));
	}
	/* Rules that matched (the first 20) and the default; --json has all. */
	for (size_t i = 0, shown = 0; i < s->n_rule_hits && shown < 20; i++) {
		const Redirect__V1__RuleHits *h = s->rule_hits[i];

		if (h->hits == 0 && h->rule_id[0] != '\0')
			continue;
		printf("  %-32s %-7s %" PRIu64 " hits\n",
		    h->rule_id[0] != '\0' ? SAFE(h->rule_id) : "(default action)", SAFE(h->action),
		    h->hits);
		shown++;
	}
}

/* ---- conns, conn ---- */

/*
 * The proxies a connection passed, as far as this agent's row tells: the
 * incoming mark's bits (a set: the mark does not keep their order), then
 * this agent and its bit, e.g. "0x1+0x2 -> c(0x4)".
 */
static void
mark_chain(const Redirect__V1__Connection *k, char *buf, size_t len)
{
	struct records_v1 rec;
	struct context_v1 ctx;
	size_t off = 0;

	buf[0] = '\0';
	if (records_decode(k->redirect_records.data, k->redirect_records.len, &rec) != 0)
		return;
	for (unsigned bit = 0; bit < 32; bit++) {
		uint32_t m = 1u << bit;

		if ((rec.incoming_mark & m) != 0 && off < len)
			off +=
			    (size_t)snprintf(buf + off, len - off, "%s0x%x", off > 0 ? "+" : "", m);
	}
	if (context_decode(k->redirect_context.data, k->redirect_context.len, &ctx) != 0)
		ctx.agent_id[0] = '\0';
	if (off < len)
		snprintf(buf + off, len - off, "%s%s(0x%x)", off > 0 ? " -> " : "",
		    ctx.agent_id[0] != '\0' ? ctx.agent_id : "self", rec.own_mark);
}

static json_t *
conn_json(const Redirect__V1__Connection *k)
{
	json_t *o = json_object();
	char *rec = hex(&k->redirect_records), *ctxh = hex(&k->redirect_context);
	char chain[256];

	json_object_set_new(o, "id", json_integer((json_int_t)k->id));
	json_object_set_new(o, "opened_at_us", json_integer(k->opened_at_us));
	json_object_set_new(o, "closed_at_us", json_integer(k->closed_at_us));
	json_object_set_new(o, "family", json_integer(k->family));
	json_object_set_new(o, "client_addr", json_string(k->client_addr));
	json_object_set_new(o, "client_port", json_integer(k->client_port));
	json_object_set_new(o, "orig_dst_addr", json_string(k->orig_dst_addr));
	json_object_set_new(o, "orig_dst_port", json_integer(k->orig_dst_port));
	json_object_set_new(o, "upstream_local_addr", json_string(k->upstream_local_addr));
	json_object_set_new(o, "upstream_local_port", json_integer(k->upstream_local_port));
	json_object_set_new(o, "redirect_state", json_string(k->redirect_state));
	json_object_set_new(o, "records_mark", json_integer(k->records_mark));
	mark_chain(k, chain, sizeof(chain));
	json_object_set_new(o, "mark_chain", json_string(chain));
	json_object_set_new(o, "redirect_records", json_string(rec != NULL ? rec : ""));
	json_object_set_new(o, "redirect_context", json_string(ctxh != NULL ? ctxh : ""));
	json_object_set_new(o, "verdict", json_string(k->verdict));
	json_object_set_new(o, "policy_version", json_integer((json_int_t)k->policy_version));
	json_object_set_new(o, "rule_id", json_string(k->rule_id));
	json_object_set_new(o, "server_name", json_string(k->server_name));
	json_object_set_new(o, "state", json_string(k->state));
	json_object_set_new(o, "bytes_up", json_integer((json_int_t)k->bytes_up));
	json_object_set_new(o, "bytes_down", json_integer((json_int_t)k->bytes_down));
	json_object_set_new(o, "connect_us", json_integer(k->connect_us));
	json_object_set_new(o, "close_reason", json_string(k->close_reason));
	json_object_set_new(o, "error", json_string(k->error));
	json_object_set_new(o, "uid", json_integer(k->uid));
	json_object_set_new(o, "pid", json_integer(k->pid));
	json_object_set_new(o, "exe", json_string(k->exe));
	free(rec);
	free(ctxh);
	return o;
}

struct out_conns {
	int json;
	json_t *all;
};

struct out_conns *
out_conns_begin(int json)
{
	struct out_conns *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	o->json = json;
	if (json)
		o->all = json_array();
	else
		printf("%-8s %-19s %-6s %-39s %-11s %-7s %-20s %10s %10s %9s  %s\n", "ID",
		    "OPENED (UTC)", "FAMILY", "DESTINATION", "STATE", "VERDICT", "REDIRECT", "UP",
		    "DOWN", "DURATION", "REASON");
	return o;
}

void
out_conns_row(struct out_conns *o, const Redirect__V1__Connection *k)
{
	char t[32], dst[64], up[32], down[32], dur[32], redir[48];

	if (o->json) {
		json_array_append_new(o->all, conn_json(k));
		return;
	}
	snprintf(dst, sizeof(dst), k->family == 6 ? "[%s]:%u" : "%s:%u", SAFE(k->orig_dst_addr),
	    k->orig_dst_port);
	if (k->records_mark != 0)
		snprintf(
		    redir, sizeof(redir), "%s(0x%x)", SAFE(k->redirect_state), k->records_mark);
	else
		snprintf(redir, sizeof(redir), "%s", SAFE(k->redirect_state));
	printf("%-8" PRIu64 " %-19s %-6s %-39s %-11s %-7s %-20s %10s %10s %9s  %s%s%s\n", k->id,
	    fmt_time(k->opened_at_us, t, sizeof(t)), k->family == 6 ? "ipv6" : "ipv4", dst,
	    SAFE(k->state), SAFE(k->verdict), redir, fmt_bytes(k->bytes_up, up, sizeof(up)),
	    fmt_bytes(k->bytes_down, down, sizeof(down)),
	    fmt_duration_us(k->closed_at_us > 0 ? k->closed_at_us - k->opened_at_us
						: clock_wall_us() - k->opened_at_us,
		dur, sizeof(dur)),
	    SAFE(k->close_reason), k->error[0] != '\0' ? ": " : "", SAFE(k->error));
}

void
out_conns_end(struct out_conns *o)
{
	if (o == NULL)
		return;
	if (o->json) {
		json_t *doc = json_object();

		json_object_set_new(doc, "connections", o->all);
		print_json(doc);
	}
	free(o);
}

void
out_conn(int json, const Redirect__V1__Connection *k)
{
	json_t *o = conn_json(k);
	const char *key;
	json_t *val;
	char t[32];

	if (json) {
		print_json(o);
		return;
	}
	json_object_foreach(o, key, val)
	{
		if (json_is_string(val))
			printf("%-20s %s\n", key, SAFE(json_string_value(val)));
		else if (strcmp(key, "opened_at_us") == 0 || strcmp(key, "closed_at_us") == 0)
			printf(
			    "%-20s %s UTC\n", key, fmt_time(json_integer_value(val), t, sizeof(t)));
		else
			printf("%-20s %lld\n", key, (long long)json_integer_value(val));
	}
	json_decref(o);
}

/* ---- watch ---- */

void
out_watch_header(int json)
{
	if (!json)
		printf("%-10s %-8s %-11s %-39s %10s %10s  %s\n", "SEQUENCE", "ID", "STATE",
		    "DESTINATION", "UP", "DOWN", "REASON");
}

void
out_event(int json, const Redirect__V1__ConnectionEvent *ev)
{
	const Redirect__V1__Connection *k = ev->connection;
	char dst[64], up[32], down[32];

	if (k == NULL)
		return;
	if (json) {
		json_t *doc = json_object();
		char *line;

		json_object_set_new(doc, "sequence", json_integer((json_int_t)ev->sequence));
		json_object_set_new(doc, "connection", conn_json(k));
		line = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (line != NULL)
			printf("%s\n", line);
		free(line);
		json_decref(doc);
	} else {
		snprintf(dst, sizeof(dst), k->family == 6 ? "[%s]:%u" : "%s:%u",
		    SAFE(k->orig_dst_addr), k->orig_dst_port);
		printf("%-10" PRIu64 " %-8" PRIu64 " %-11s %-39s %10s %10s  %s%s%s\n", ev->sequence,
		    k->id, SAFE(k->state), dst, fmt_bytes(k->bytes_up, up, sizeof(up)),
		    fmt_bytes(k->bytes_down, down, sizeof(down)), SAFE(k->close_reason),
		    k->error[0] != '\0' ? ": " : "", SAFE(k->error));
	}
	fflush(stdout); /* one event, one line, as it happens: for pipes too */
}

/* ---- policy ---- */

/* The document as indented JSON (escaped as JSON; as sent, escaped, when it does not parse). */
static void
print_document(const char *doc)
{
	json_t *j = json_loads(doc, 0, NULL);
	char *text = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	printf("%s\n", text != NULL ? text : SAFE(doc));
	free(text);
	json_decref(j);
}

static json_t *
version_json(const Redirect__V1__PolicyVersion *v)
{
	json_t *o = json_object(), *doc = json_loads(v->document_json, 0, NULL);

	json_object_set_new(o, "version", json_integer((json_int_t)v->version));
	json_object_set_new(o, "set_at_us", json_integer(v->set_at_us));
	json_object_set_new(o, "author", json_string(v->author));
	json_object_set_new(o, "sha256", json_string(v->sha256));
	json_object_set_new(o, "rules", json_integer(v->rules));
	json_object_set_new(o, "document", doc != NULL ? doc : json_string(v->document_json));
	return o;
}

void
out_policy(int json, const Redirect__V1__PolicyVersion *v)
{
	char t[32];

	if (json) {
		print_json(version_json(v));
		return;
	}
	if (v->version == 0)
		printf("no policy set: the agent allows every connection\n");
	else
		printf("version %" PRIu64 ", set %s UTC by %s, %u rules, sha256 %.16s\n",
		    v->version, fmt_time(v->set_at_us, t, sizeof(t)), SAFE(v->author), v->rules,
		    SAFE(v->sha256));
	print_document(v->document_json);
}

void
out_policy_set(int json, const Redirect__V1__PolicyVersion *v)
{
	if (json)
		print_json(version_json(v));
	else
		printf("policy version %" PRIu64 " set (%u rules)\n", v->version, v->rules);
}

void
out_validate(
    int json, const char *file, unsigned simulate, const Redirect__V1__ValidatePolicyResponse *r)
{
	int bad = r->n_problems > 0;

	if (json) {
		json_t *o = json_object(), *probs = json_array(), *ex = json_array();

		for (size_t i = 0; i < r->n_problems; i++)
			json_array_append_new(probs, json_string(r->problems[i]));
		for (size_t i = 0; i < r->n_examples; i++)
			json_array_append_new(ex, json_string(r->examples[i]));
		json_object_set_new(o, "valid", json_boolean(!bad));
		json_object_set_new(o, "problems", probs);
		json_object_set_new(o, "simulated", json_integer((json_int_t)r->simulated));
		json_object_set_new(o, "changed", json_integer((json_int_t)r->changed));
		json_object_set_new(o, "examples", ex);
		print_json(o);
	} else if (bad) {
		for (size_t i = 0; i < r->n_problems; i++)
			printf("%s: %s\n", SAFE(file), SAFE(r->problems[i]));
	} else {
		printf("%s: valid\n", SAFE(file));
		if (simulate > 0)
			printf("of the last %" PRIu64 " connections judged, %" PRIu64
			       " would get another verdict\n",
			    r->simulated, r->changed);
		for (size_t i = 0; i < r->n_examples; i++)
			printf("  %s\n", SAFE(r->examples[i]));
	}
}

void
out_history(int json, Redirect__V1__ListPolicyHistoryResponse *const *pages, size_t n_pages)
{
	json_t *o = NULL, *a = NULL;
	char t[32];

	if (json) {
		o = json_object();
		a = json_array();
	} else {
		printf("%-8s %-19s %-16s %s\n", "VERSION", "SET (UTC)", "SHA256", "AUTHOR");
	}
	for (size_t p = 0; p < n_pages; p++) {
		const Redirect__V1__ListPolicyHistoryResponse *r = pages[p];

		for (size_t i = 0; i < r->n_versions; i++) {
			const Redirect__V1__PolicyVersion *v = r->versions[i];

			if (json)
				json_array_append_new(a, version_json(v));
			else
				printf("%-8" PRIu64 " %-19s %-16.16s %s\n", v->version,
				    fmt_time(v->set_at_us, t, sizeof(t)), SAFE(v->sha256),
				    SAFE(v->author));
		}
	}
	if (json) {
		json_object_set_new(o, "versions", a);
		print_json(o);
	}
}

/* ---- the fleet (values as the agents wrote them: JSON, escaped here) ---- */

/* "2026-11-30T08:00:15Z": seconds since the epoch, or -1 (no strptime/timegm on Windows). */
static int64_t
parse_rfc3339(const char *s)
{
	int y, mo, d, h, mi, sec;
	int64_t era, yoe, doy, doe;

	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &sec) != 6 ||
	    mo < 1 || mo > 12 || d < 1 || d > 31)
		return -1;
	/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
	y -= mo <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return ((era * 146097 + doe - 719468) * 86400) + h * 3600 + mi * 60 + sec;
}

int
out_agent_stale(json_t *a, int64_t now_s)
{
	int64_t seen = parse_rfc3339(json_string_value(json_object_get(a, "last_seen")));
	json_int_t hb = json_integer_value(json_object_get(a, "heartbeat_s"));

	/* Three heartbeats missed: stale (the bucket's age limit removes it later). */
	return seen < 0 || now_s - seen > 3 * (hb > 0 ? hb : 15);
}

void
out_agents(int json, json_t *agents)
{
	int64_t now = clock_wall_us() / 1000000;
	size_t i;
	json_t *a;

	if (json) {
		json_t *doc = json_object();

		json_array_foreach(agents, i, a)
		    json_object_set_new(a, "stale", json_boolean(out_agent_stale(a, now)));
		json_object_set(doc, "agents", agents);
		print_json(doc);
		return;
	}
	printf("%-36s %-12s %-16s %-12s %-28s %-9s %s\n", "UUID", "NAME", "HOST", "GROUPS",
	    "POLICY", "HEALTH", "LAST SEEN");
	json_array_foreach(agents, i, a)
	{
		json_t *pol = json_object_get(a, "policy"), *g = json_object_get(a, "groups"), *x;
		char groups[128] = "", policy[96], seen[48];
		int64_t ts = parse_rfc3339(json_string_value(json_object_get(a, "last_seen")));
		size_t k, o = 0;

		json_array_foreach(g, k, x) o += (size_t)snprintf(groups + o,
		    o < sizeof(groups) ? sizeof(groups) - o : 0, "%s%s", k ? "," : "",
		    json_string_value(x) != NULL ? json_string_value(x) : "?");
		if (json_object_get(pol, "key") != NULL)
			snprintf(policy, sizeof(policy), "v%" PRId64 " %s@%" PRId64,
			    (int64_t)json_integer_value(json_object_get(pol, "version")),
			    json_string_value(json_object_get(pol, "key")),
			    (int64_t)json_integer_value(json_object_get(pol, "revision")));
		else
			snprintf(policy, sizeof(policy), "v%" PRId64 " local",
			    (int64_t)json_integer_value(json_object_get(pol, "version")));
		if (json_object_get(a, "policy_rejected") != NULL)
			snprintf(policy + strlen(policy), sizeof(policy) - strlen(policy),
			    " (rejected %s@%" PRId64 ")",
			    json_string_value(
				json_object_get(json_object_get(a, "policy_rejected"), "key")),
			    (int64_t)json_integer_value(json_object_get(
				json_object_get(a, "policy_rejected"), "revision")));
		snprintf(seen, sizeof(seen), "%llds ago%s", (long long)(ts < 0 ? -1 : now - ts),
		    out_agent_stale(a, now) ? " STALE" : "");
		printf("%-36s %-12s %-16s %-12s %-28s %-9s %s\n",
		    SAFE(json_string_value(json_object_get(a, "uuid")) ?: "?"),
		    SAFE(json_string_value(json_object_get(a, "name")) ?: "?"),
		    SAFE(json_string_value(json_object_get(a, "hostname")) ?: "?"), SAFE(groups),
		    SAFE(policy),
		    SAFE(json_string_value(json_object_get(json_object_get(a, "health"), "status"))
			     ?: "?"),
		    seen);
	}
}

void
out_fleet_record(int json, const char *data, size_t len)
{
	json_error_t e;
	json_t *r;
	char line[512];

	if (json) {
		printf("%.*s\n", (int)len, data);
		return;
	}
	if ((r = json_loadb(data, len, 0, &e)) == NULL) {
		printf("(not JSON: %.*s)\n", (int)(len > 80 ? 80 : len), data);
		return;
	}
	snprintf(line, sizeof(line),
	    "%s %s %s:%" PRId64 " -> %s:%" PRId64 " %s %s up %" PRId64 " down %" PRId64,
	    json_string_value(json_object_get(r, "@timestamp")) ?: "?",
	    json_string_value(json_object_get(json_object_get(r, "agent"), "name")) ?: "?",
	    json_string_value(json_object_get(json_object_get(r, "source"), "ip")) ?: "?",
	    (int64_t)json_integer_value(json_object_get(json_object_get(r, "source"), "port")),
	    json_string_value(json_object_get(json_object_get(r, "destination"), "ip")) ?: "?",
	    (int64_t)json_integer_value(json_object_get(json_object_get(r, "destination"), "port")),
	    json_string_value(json_object_get(json_object_get(r, "event"), "action")) ?: "?",
	    json_string_value(json_object_get(json_object_get(r, "event"), "outcome")) ?: "?",
	    (int64_t)json_integer_value(json_object_get(json_object_get(r, "source"), "bytes")),
	    (int64_t)json_integer_value(
		json_object_get(json_object_get(r, "destination"), "bytes")));
	printf("%s\n", SAFE(line));
	json_decref(r);
}

void
out_fleet_policy(int json, const char *key, uint64_t revision, int64_t created_s, const char *doc)
{
	char t[32];

	if (json) {
		json_t *o = json_pack("{s:s, s:I, s:I}", "key", key, "revision",
		    (json_int_t)revision, "created", (json_int_t)created_s);

		json_object_set_new(o, "document", json_string(doc));
		print_json(o);
		return;
	}
	printf("%s revision %" PRIu64 ", set %s UTC\n", SAFE(key), revision,
	    fmt_time(created_s * 1000000, t, sizeof(t)));
	printf("%s\n", SAFE(doc));
}

void
out_reload(int json, const char *message)
{
	if (json)
		print_json(json_pack("{s:s}", "message", message));
	else
		printf("%s\n", SAFE(message));
}
