/*
 * redirectctl: the local admin CLI. It talks to the agent over the same gRPC
 * API a console uses, on the agent's local socket.
 *
 * The command table is apart from the I/O: each command parses its own
 * options into a request, calls the agent once (or once per page), and
 * prints a table for people or one JSON document for scripts.
 *
 * Exit codes: 0 ok, 1 the agent said no, 2 usage, 3 the agent cannot be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "clock.h"
#include "records.h"
#include "redirect/v1/agent.pb-c.h"
#include "redirect/v1/policy.pb-c.h"
#include "redirect/v1/telemetry.pb-c.h"
#ifdef _WIN32
#include "service_win.h"
#endif

#ifndef AGENT_VERSION
#define AGENT_VERSION "0.0.0-dev"
#endif

#define EXIT_NO          1
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3
/* The agent's default socket (config.c's default on each platform). */
static const char *
default_socket(void)
{
#ifdef _WIN32
	static char path[MAX_PATH];
	char dir[MAX_PATH];

	snprintf(path, sizeof(path), "%s\\agent.sock", service_data_dir(dir, sizeof(dir)));
	return path;
#else
	return "/run/redirect-agent/agent.sock";
#endif
}

struct ctx {
	struct client cl;
	int json;
};

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(struct ctx *, int argc, char **argv);
};

/* ---- output helpers ---- */

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

/* Map a call's outcome to an exit code, printing the agent's reason. */
static int
call_failed(int rc, const char *msg)
{
	if (rc == CLIENT_UNREACHABLE) {
		fprintf(stderr, "redirectctl: %s\n", msg);
		return EXIT_UNREACHABLE;
	}
	fprintf(stderr, "redirectctl: the agent said no (%s): %s\n",
	    rc == GRPC_STATUS_UNIMPLEMENTED ? "unimplemented" : "error", msg);
	return EXIT_NO;
}

#define CALL(c, method, req, type, out)                                                            \
	client_call(&(c)->cl, method, &(req).base, &type##__descriptor,                            \
	    (ProtobufCMessage **)(out), msg, sizeof(msg))

/* ---- status ---- */

static int
cmd_status(struct ctx *c, int argc, char **argv)
{
	Redirect__V1__GetInfoRequest iq = REDIRECT__V1__GET_INFO_REQUEST__INIT;
	Redirect__V1__GetHealthRequest hq = REDIRECT__V1__GET_HEALTH_REQUEST__INIT;
	Redirect__V1__AgentInfo *info = NULL;
	Redirect__V1__Health *h = NULL;
	char msg[512], t[32], up[32];
	int rc;

	(void)argv;
	if (argc > 1)
		return EXIT_USAGE;
	if ((rc = CALL(c, "/redirect.v1.Agent/GetInfo", iq, redirect__v1__agent_info, &info)) != 0)
		return call_failed(rc, msg);
	if ((rc = CALL(c, "/redirect.v1.Agent/GetHealth", hq, redirect__v1__health, &h)) != 0) {
		protobuf_c_message_free_unpacked(&info->base, NULL);
		return call_failed(rc, msg);
	}
	if (c->json) {
		json_t *doc = json_object(), *cfg = json_object(), *reasons = json_array();

		json_object_set_new(doc, "agent_id", json_string(info->agent_id));
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
	} else {
		printf("%-10s %s (redirect-agent %s, %s, host %s)\n", "agent", info->agent_id,
		    info->version, info->platform, info->hostname);
		printf("%-10s %s\n", "health",
		    h->status == REDIRECT__V1__HEALTH__STATUS__SERVING ? "serving" : "degraded");
		for (size_t i = 0; i < h->n_reasons; i++)
			printf("%-10s - %s\n", "", h->reasons[i]);
		printf("%-10s %s UTC (up %s)\n", "started",
		    fmt_time(info->started_at_us, t, sizeof(t)),
		    fmt_duration_us(clock_wall_us() - info->started_at_us, up, sizeof(up)));
		printf("%-10s port %u, mark 0x%x, %u workers\n", "listening", info->listen_port,
		    info->mark, info->workers);
		printf("%-10s %s\n", "database", info->db_path);
	}
	protobuf_c_message_free_unpacked(&info->base, NULL);
	protobuf_c_message_free_unpacked(&h->base, NULL);
	return 0;
}

/* ---- stats ---- */

static int
cmd_stats(struct ctx *c, int argc, char **argv)
{
	Redirect__V1__GetStatsRequest q = REDIRECT__V1__GET_STATS_REQUEST__INIT;
	Redirect__V1__Stats *s = NULL;
	char msg[512], b1[32], b2[32];
	int rc;

	(void)argv;
	if (argc > 1)
		return EXIT_USAGE;
	if ((rc = CALL(c, "/redirect.v1.Telemetry/GetStats", q, redirect__v1__stats, &s)) != 0)
		return call_failed(rc, msg);
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
	if (c->json) {
		json_t *doc = json_object();

		json_object_set_new(doc, "started_at_us", json_integer(s->started_at_us));
		json_t *hits = json_array();

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
		print_json(doc);
	} else {
		printf("connections  %" PRIu64 " accepted, %" PRIu64 " active, %" PRIu64
		       " relayed, %" PRIu64 " failed, %" PRIu64 " refused\n",
		    s->accepted, s->active, s->relayed, s->failed, s->refused);
		printf("loops        %" PRIu64 " by_self, %" PRIu64
		       " previously_by_self (relayed once with the escape mark)\n",
		    s->by_self, s->previously_by_self);
		printf("bytes        %s up, %s down (closed connections)\n",
		    fmt_bytes(s->bytes_up, b1, sizeof(b1)),
		    fmt_bytes(s->bytes_down, b2, sizeof(b2)));
		printf("accept       %" PRIu64 " errors, %" PRIu64 " pauses at max_sessions\n",
		    s->accept_errors, s->accept_paused);
		printf("database     %" PRIu64 " events written in %" PRIu64
		       " batches, queue %" PRIu64 " (high-water %" PRIu64 "), %" PRIu64
		       " dropped, %" PRIu64 " pruned\n",
		    s->db_rows_written, s->db_batches, s->db_queue_depth, s->db_queue_high_water,
		    s->events_dropped, s->db_rows_pruned);
		printf("recovery     %" PRIu64 " connections marked interrupted at start\n",
		    s->interrupted_at_start);
		printf("policy       version %" PRIu64 ", %" PRIu64 " connections blocked\n",
		    s->policy_version, s->blocked);
		/* Rules that matched (the first 20) and the default; --json has all. */
		for (size_t i = 0, shown = 0; i < s->n_rule_hits && shown < 20; i++) {
			const Redirect__V1__RuleHits *h = s->rule_hits[i];

			if (h->hits == 0 && h->rule_id[0] != '\0')
				continue;
			printf("  %-32s %-7s %" PRIu64 " hits\n",
			    h->rule_id[0] != '\0' ? h->rule_id : "(default action)", h->action,
			    h->hits);
			shown++;
		}
	}
	protobuf_c_message_free_unpacked(&s->base, NULL);
	return 0;
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

/* "90s", "15m", "2h", "7d" (a bare number is seconds). Returns microseconds or -1. */
static int64_t
parse_duration(const char *s)
{
	char *end;
	unsigned long long v;
	int64_t mult = 1000000;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || v > 100ULL * 365 * 86400)
		return -1;
	if (*end == 'm')
		mult *= 60;
	else if (*end == 'h')
		mult *= 3600;
	else if (*end == 'd')
		mult *= 86400;
	else if (*end != 's' && *end != '\0')
		return -1;
	if (*end != '\0' && end[1] != '\0')
		return -1;
	return (int64_t)v * mult;
}

static int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno != 0 || *end != '\0' || *out > max ? -1 : 0;
}

static int
cmd_conns(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"limit", required_argument, NULL, 'l'},
	    {"since", required_argument, NULL, 's'},
	    {"dst", required_argument, NULL, 'd'},
	    {"port", required_argument, NULL, 'p'},
	    {"state", required_argument, NULL, 'S'},
	    {NULL, 0, NULL, 0},
	};
	Redirect__V1__ListConnectionsRequest q = REDIRECT__V1__LIST_CONNECTIONS_REQUEST__INIT;
	unsigned long limit = 20, v;
	json_t *all;
	char msg[512], token[64] = "";
	int opt, rc, shown = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (parse_uint(optarg, 1000000, &limit) != 0 || limit == 0) {
				fprintf(stderr, "redirectctl: conns: --limit takes 1 to 1000000\n");
				return EXIT_USAGE;
			}
			break;
		case 's': {
			int64_t d = parse_duration(optarg);

			if (d < 0) {
				fprintf(stderr, "redirectctl: conns: --since takes a duration like "
						"90s, 15m, 2h, 7d\n");
				return EXIT_USAGE;
			}
			q.since_us = clock_wall_us() - d;
			break;
		}
		case 'd':
			q.dst_cidr =
			    optarg; /* checked by the agent, which says which part is wrong */
			break;
		case 'p':
			if (parse_uint(optarg, 65535, &v) != 0 || v == 0) {
				fprintf(stderr, "redirectctl: conns: --port takes 1 to 65535\n");
				return EXIT_USAGE;
			}
			q.dst_port = (uint32_t)v;
			break;
		case 'S':
			q.state = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return EXIT_USAGE;

	all = json_array();
	do {
		Redirect__V1__ListConnectionsResponse *r = NULL;

		q.page_size =
		    (uint32_t)(limit - (unsigned long)shown > 1000 ? 1000
								   : limit - (unsigned long)shown);
		q.page_token = token;
		if ((rc = CALL(c, "/redirect.v1.Telemetry/ListConnections", q,
			 redirect__v1__list_connections_response, &r)) != 0) {
			json_decref(all);
			return call_failed(rc, msg);
		}
		if (!c->json && shown == 0)
			printf("%-8s %-19s %-6s %-39s %-11s %-7s %-20s %10s %10s %9s  %s\n", "ID",
			    "OPENED (UTC)", "FAMILY", "DESTINATION", "STATE", "VERDICT", "REDIRECT",
			    "UP", "DOWN", "DURATION", "REASON");
		for (size_t i = 0; i < r->n_connections; i++) {
			const Redirect__V1__Connection *k = r->connections[i];
			char t[32], dst[64], up[32], down[32], dur[32], redir[48];

			if (c->json) {
				json_array_append_new(all, conn_json(k));
				continue;
			}
			snprintf(dst, sizeof(dst), k->family == 6 ? "[%s]:%u" : "%s:%u",
			    k->orig_dst_addr, k->orig_dst_port);
			if (k->records_mark != 0)
				snprintf(redir, sizeof(redir), "%s(0x%x)", k->redirect_state,
				    k->records_mark);
			else
				snprintf(redir, sizeof(redir), "%s", k->redirect_state);
			printf("%-8" PRIu64
			       " %-19s %-6s %-39s %-11s %-7s %-20s %10s %10s %9s  %s%s%s\n",
			    k->id, fmt_time(k->opened_at_us, t, sizeof(t)),
			    k->family == 6 ? "ipv6" : "ipv4", dst, k->state, k->verdict, redir,
			    fmt_bytes(k->bytes_up, up, sizeof(up)),
			    fmt_bytes(k->bytes_down, down, sizeof(down)),
			    fmt_duration_us(k->closed_at_us > 0 ? k->closed_at_us - k->opened_at_us
								: clock_wall_us() - k->opened_at_us,
				dur, sizeof(dur)),
			    k->close_reason, k->error[0] != '\0' ? ": " : "", k->error);
		}
		shown += (int)r->n_connections;
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (token[0] != '\0' && (unsigned long)shown < limit);

	if (c->json) {
		json_t *doc = json_object();

		json_object_set_new(doc, "connections", all);
		print_json(doc);
	} else {
		json_decref(all);
	}
	return 0;
}

static int
cmd_conn(struct ctx *c, int argc, char **argv)
{
	Redirect__V1__GetConnectionRequest q = REDIRECT__V1__GET_CONNECTION_REQUEST__INIT;
	Redirect__V1__Connection *k = NULL;
	unsigned long id;
	char msg[512];
	int rc;

	if (argc != 2 || parse_uint(argv[1], ~0UL, &id) != 0 || id == 0) {
		fprintf(stderr, "redirectctl: conn takes one connection id\n");
		return EXIT_USAGE;
	}
	q.id = id;
	if ((rc = CALL(
		 c, "/redirect.v1.Telemetry/GetConnection", q, redirect__v1__connection, &k)) != 0)
		return call_failed(rc, msg);
	if (c->json) {
		print_json(conn_json(k));
	} else {
		json_t *o = conn_json(k);
		const char *key;
		json_t *val;
		char t[32];

		json_object_foreach(o, key, val)
		{
			if (json_is_string(val))
				printf("%-20s %s\n", key, json_string_value(val));
			else if (strcmp(key, "opened_at_us") == 0 ||
				 strcmp(key, "closed_at_us") == 0)
				printf("%-20s %s UTC\n", key,
				    fmt_time(json_integer_value(val), t, sizeof(t)));
			else
				printf("%-20s %lld\n", key, (long long)json_integer_value(val));
		}
		json_decref(o);
	}
	protobuf_c_message_free_unpacked(&k->base, NULL);
	return 0;
}

/* ---- not yet served by the agent: say so, with the agent's words ---- */

static int
print_event(void *arg, const ProtobufCMessage *m)
{
	const struct ctx *c = arg;
	const Redirect__V1__ConnectionEvent *ev = (const Redirect__V1__ConnectionEvent *)m;
	const Redirect__V1__Connection *k = ev->connection;
	char dst[64], up[32], down[32];

	if (k == NULL)
		return 0;
	if (c->json) {
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
		snprintf(dst, sizeof(dst), k->family == 6 ? "[%s]:%u" : "%s:%u", k->orig_dst_addr,
		    k->orig_dst_port);
		printf("%-10" PRIu64 " %-8" PRIu64 " %-11s %-39s %10s %10s  %s%s%s\n", ev->sequence,
		    k->id, k->state, dst, fmt_bytes(k->bytes_up, up, sizeof(up)),
		    fmt_bytes(k->bytes_down, down, sizeof(down)), k->close_reason,
		    k->error[0] != '\0' ? ": " : "", k->error);
	}
	fflush(stdout); /* one event, one line, as it happens: for pipes too */
	return 0;
}

static int
cmd_watch(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"after", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	Redirect__V1__WatchConnectionsRequest q = REDIRECT__V1__WATCH_CONNECTIONS_REQUEST__INIT;
	unsigned long after;
	char msg[512];
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'a' || parse_uint(optarg, ~0UL, &after) != 0) {
			fprintf(stderr, "redirectctl: watch: --after takes a sequence number\n");
			return EXIT_USAGE;
		}
		q.after_sequence = after;
	}
	if (optind < argc)
		return EXIT_USAGE;
	if (!c->json)
		printf("%-10s %-8s %-11s %-39s %10s %10s  %s\n", "SEQUENCE", "ID", "STATE",
		    "DESTINATION", "UP", "DOWN", "REASON");
	rc = client_stream(&c->cl, "/redirect.v1.Telemetry/WatchConnections", &q.base,
	    &redirect__v1__connection_event__descriptor, print_event, c, msg, sizeof(msg));
	return rc == 0 ? 0 : call_failed(rc, msg);
}

#define POLICY_FILE_MAX (4 << 20) /* the agent's request cap */

static char *
read_policy_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "redirectctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(POLICY_FILE_MAX + 1);
	n = buf != NULL ? fread(buf, 1, POLICY_FILE_MAX + 1, f) : 0;
	fclose(f);
	if (buf == NULL)
		return NULL;
	if (n > POLICY_FILE_MAX) {
		fprintf(stderr, "redirectctl: %s: larger than the agent accepts (4 MiB)\n", path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* The document as indented JSON (as sent, when it does not parse). */
static void
print_document(const char *doc)
{
	json_t *j = json_loads(doc, 0, NULL);
	char *text = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	printf("%s\n", text != NULL ? text : doc);
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

static void
print_version_line(const Redirect__V1__PolicyVersion *v)
{
	char t[32];

	if (v->version == 0) {
		printf("no policy set: the agent allows every connection\n");
		return;
	}
	printf("version %" PRIu64 ", set %s UTC by %s, %u rules, sha256 %.16s\n", v->version,
	    fmt_time(v->set_at_us, t, sizeof(t)), v->author, v->rules, v->sha256);
}

static int
policy_get(struct ctx *c, Redirect__V1__PolicyVersion **out, char *msg, size_t msglen)
{
	Redirect__V1__GetPolicyRequest q = REDIRECT__V1__GET_POLICY_REQUEST__INIT;

	return client_call(&c->cl, "/redirect.v1.Policy/GetPolicy", &q.base,
	    &redirect__v1__policy_version__descriptor, (ProtobufCMessage **)out, msg, msglen);
}

static int
cmd_policy_get(struct ctx *c)
{
	Redirect__V1__PolicyVersion *v = NULL;
	char msg[512];
	int rc;

	if ((rc = policy_get(c, &v, msg, sizeof(msg))) != 0)
		return call_failed(rc, msg);
	if (c->json) {
		print_json(version_json(v));
	} else {
		print_version_line(v);
		print_document(v->document_json);
	}
	protobuf_c_message_free_unpacked(&v->base, NULL);
	return 0;
}

/*
 * Without --expected-version, set replaces the version the agent has now
 * (read just before): fine for one admin. Consoles pass the version they
 * read, so a concurrent change makes theirs fail instead of vanishing.
 */
static int
cmd_policy_set(struct ctx *c, const char *file, long long expected)
{
	Redirect__V1__SetPolicyRequest q = REDIRECT__V1__SET_POLICY_REQUEST__INIT;
	Redirect__V1__PolicyVersion *v = NULL;
	char msg[2048], *doc;
	int rc;

	if ((doc = read_policy_file(file)) == NULL)
		return EXIT_USAGE;
	if (expected < 0) {
		if ((rc = policy_get(c, &v, msg, sizeof(msg))) != 0) {
			free(doc);
			return call_failed(rc, msg);
		}
		expected = (long long)v->version;
		protobuf_c_message_free_unpacked(&v->base, NULL);
		v = NULL;
	}
	q.document_json = doc;
	q.expected_version = (uint64_t)expected;
	rc = CALL(c, "/redirect.v1.Policy/SetPolicy", q, redirect__v1__policy_version, &v);
	free(doc);
	if (rc != 0)
		return call_failed(rc, msg);
	if (c->json)
		print_json(version_json(v));
	else
		printf("policy version %" PRIu64 " set (%u rules)\n", v->version, v->rules);
	protobuf_c_message_free_unpacked(&v->base, NULL);
	return 0;
}

static int
cmd_policy_validate(struct ctx *c, const char *file, unsigned simulate)
{
	Redirect__V1__ValidatePolicyRequest q = REDIRECT__V1__VALIDATE_POLICY_REQUEST__INIT;
	Redirect__V1__ValidatePolicyResponse *r = NULL;
	char msg[512], *doc;
	int rc, bad;

	if ((doc = read_policy_file(file)) == NULL)
		return EXIT_USAGE;
	q.document_json = doc;
	q.simulate_last = simulate;
	rc = CALL(
	    c, "/redirect.v1.Policy/ValidatePolicy", q, redirect__v1__validate_policy_response, &r);
	free(doc);
	if (rc != 0)
		return call_failed(rc, msg);
	bad = r->n_problems > 0;
	if (c->json) {
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
			printf("%s: %s\n", file, r->problems[i]);
	} else {
		printf("%s: valid\n", file);
		if (simulate > 0)
			printf("of the last %" PRIu64 " connections judged, %" PRIu64
			       " would get another verdict\n",
			    r->simulated, r->changed);
		for (size_t i = 0; i < r->n_examples; i++)
			printf("  %s\n", r->examples[i]);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return bad ? EXIT_NO : 0;
}

static int
cmd_policy_history(struct ctx *c)
{
	Redirect__V1__ListPolicyHistoryRequest q = REDIRECT__V1__LIST_POLICY_HISTORY_REQUEST__INIT;
	Redirect__V1__ListPolicyHistoryResponse *r = NULL;
	char msg[512], t[32];
	int rc;

	if ((rc = CALL(c, "/redirect.v1.Policy/ListPolicyHistory", q,
		 redirect__v1__list_policy_history_response, &r)) != 0)
		return call_failed(rc, msg);
	if (c->json) {
		json_t *o = json_object(), *a = json_array();

		for (size_t i = 0; i < r->n_versions; i++)
			json_array_append_new(a, version_json(r->versions[i]));
		json_object_set_new(o, "versions", a);
		print_json(o);
	} else {
		printf("%-8s %-19s %-16s %s\n", "VERSION", "SET (UTC)", "SHA256", "AUTHOR");
		for (size_t i = 0; i < r->n_versions; i++)
			printf("%-8" PRIu64 " %-19s %-16.16s %s\n", r->versions[i]->version,
			    fmt_time(r->versions[i]->set_at_us, t, sizeof(t)),
			    r->versions[i]->sha256, r->versions[i]->author);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

/* policy get | set FILE [--expected-version N] | validate FILE [--simulate N] | history */
static int
cmd_policy(struct ctx *c, int argc, char **argv)
{
	unsigned long n = 0;

	if (argc == 2 && strcmp(argv[1], "get") == 0)
		return cmd_policy_get(c);
	if (argc == 2 && strcmp(argv[1], "history") == 0)
		return cmd_policy_history(c);
	if ((argc == 3 || argc == 5) && strcmp(argv[1], "set") == 0) {
		if (argc == 5 && (strcmp(argv[3], "--expected-version") != 0 ||
				     parse_uint(argv[4], ~0UL, &n) != 0)) {
			fprintf(stderr, "redirectctl: policy set: --expected-version takes a "
					"version number (0: none set yet)\n");
			return EXIT_USAGE;
		}
		return cmd_policy_set(c, argv[2], argc == 5 ? (long long)n : -1);
	}
	if ((argc == 3 || argc == 5) && strcmp(argv[1], "validate") == 0) {
		if (argc == 5 &&
		    (strcmp(argv[3], "--simulate") != 0 || parse_uint(argv[4], 100000, &n) != 0)) {
			fprintf(stderr, "redirectctl: policy validate: --simulate takes 1 to "
					"100000 (recorded connections to judge again)\n");
			return EXIT_USAGE;
		}
		return cmd_policy_validate(c, argv[2], (unsigned)n);
	}
	return EXIT_USAGE;
}

static const struct command commands[] = {
    {"status", "", "the agent's identity, configuration summary and health", cmd_status},
    {"stats", "", "counters since the agent started", cmd_stats},
    {"conns", "[--limit N] [--since DURATION] [--dst CIDR] [--port N] [--state S]",
	"recorded connections, newest first (default 20)", cmd_conns},
    {"conn", "ID", "one connection in full, redirect records and context in hex", cmd_conn},
    {"watch", "[--after SEQUENCE]",
	"follow connection events as they are committed (resume after a sequence number)",
	cmd_watch},
    {"policy", "get | set FILE [--expected-version N] | validate FILE [--simulate N] | history",
	"the policy in force, a new version (compare-and-set), a dry run, the versions so far",
	cmd_policy},
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: redirectctl [--socket PATH] [--json] COMMAND [ARGS]\n"
	    "       redirectctl --version | --help | COMMAND --help\n\n"
	    "Talks to redirect-agent over its local socket (default %s).\n\n"
	    "commands:\n",
	    default_socket());
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n  %-8s   %s\n", commands[i].name, commands[i].args, "",
		    commands[i].help);
	fprintf(f, "\nexit codes: 0 ok, 1 the agent said no, 2 usage, 3 cannot reach the agent\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"target", required_argument, NULL, 't'},
	    {"ca", required_argument, NULL, 'a'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'j'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *socket_path = NULL, *target = NULL, *ca = NULL, *cert = NULL, *key = NULL;
	const struct command *cmd = NULL;
	struct ctx c;
	char err[512];
	int opt, rc;

	memset(&c, 0, sizeof(c));
	/* '+': stop at the command; its options are its own. */
	while ((opt = getopt_long(argc, argv, "+s:jVh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'a':
			ca = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'j':
			c.json = 1;
			break;
		case 'V':
			printf("redirectctl %s\n", AGENT_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (target != NULL ? (socket_path != NULL || !ca || !cert || !key) : (ca || cert || key)) {
		fprintf(stderr, "redirectctl: use --socket PATH, or --target HOST:PORT with all of "
				"--ca, --cert and --key\n");
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "redirectctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = optind + 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: redirectctl [--socket PATH] [--json] %s %s\n\n%s\n",
			    cmd->name, cmd->args, cmd->help);
			return 0;
		}
	}
	if (target != NULL
		? client_open_tls(&c.cl, target, ca, cert, key, err, sizeof(err)) != 0
		: client_open(&c.cl, socket_path != NULL ? socket_path : default_socket(), err,
		      sizeof(err)) != 0) {
		fprintf(stderr, "redirectctl: %s\n", err);
		return EXIT_UNREACHABLE;
	}
	rc = cmd->run(&c, argc - optind, argv + optind);
	if (rc == EXIT_USAGE)
		fprintf(stderr, "usage: redirectctl [--socket PATH] [--json] %s %s\n", cmd->name,
		    cmd->args);
	client_close(&c.cl);
	return rc;
}
