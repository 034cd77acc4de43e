/*
 * ecs.c: connection events as ECS JSON (ecs.h). A small bounded writer of
 * its own: it runs once per shipped event, at tens of thousands a second.
 */
#include "ecs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conn.h"

struct out {
	char *p;
	size_t len, cap;
	int full;
	int first; /* no comma before the next member */
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->len + n >= o->cap) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A JSON string: quotes, escapes, control characters as \u00XX. */
static void
put_string(struct out *o, const char *s)
{
	put(o, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		const unsigned char *run = c;

		while (*c >= 0x20 && *c != '"' && *c != '\\')
			c++;
		put(o, (const char *)run, (size_t)(c - run));
		if (*c == '\0')
			break;
		if (*c == '"' || *c == '\\') {
			char esc[2] = {'\\', (char)*c};

			put(o, esc, 2);
		} else {
			char esc[8];

			snprintf(esc, sizeof(esc), "\\u%04x", *c);
			put(o, esc, 6);
		}
	}
	put(o, "\"", 1);
}

static void
key(struct out *o, const char *k)
{
	if (!o->first)
		put(o, ",", 1);
	o->first = 0;
	put(o, "\"", 1);
	puts_(o, k);
	put(o, "\":", 2);
}

static void
begin(struct out *o, const char *k)
{
	if (k != NULL)
		key(o, k);
	put(o, "{", 1);
	o->first = 1;
}

static void
end(struct out *o)
{
	put(o, "}", 1);
	o->first = 0;
}

static void
str(struct out *o, const char *k, const char *v)
{
	key(o, k);
	put_string(o, v);
}

/* A string member only when the value is known (not NULL, not ""). */
static void
str_known(struct out *o, const char *k, const char *v)
{
	if (v != NULL && v[0] != '\0')
		str(o, k, v);
}

static void
num(struct out *o, const char *k, int64_t v)
{
	char b[24];

	key(o, k);
	put(o, b, (size_t)snprintf(b, sizeof(b), "%" PRId64, v));
}

static void
unum(struct out *o, const char *k, uint64_t v)
{
	char b[24];

	key(o, k);
	put(o, b, (size_t)snprintf(b, sizeof(b), "%" PRIu64, v));
}

/* RFC 3339 UTC with microseconds: 2026-11-30T06:00:00.123456Z */
static void
when(struct out *o, const char *k, int64_t us)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	char b[40];
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(b + n, sizeof(b) - n, ".%06dZ", (int)(us % 1000000));
	key(o, k);
	put(o, "\"", 1);
	put(o, b, n);
	put(o, "\"", 1);
}

int
ecs_ships(const struct conn_row *r, int include_open)
{
	enum conn_state st;

	if (conn_state_parse(r->state, &st) != 0)
		return 0;
	return st == CONN_CLOSED || st == CONN_FAILED || st == CONN_INTERRUPTED ||
	       (include_open && st == CONN_OPEN);
}

int
ecs_format(const struct conn_row *r, const struct ecs_agent *a, char *buf, size_t cap)
{
	struct out o = {buf, 0, cap, 0, 1};
	enum conn_state st = CONN_OPEN;
	enum conn_verdict v = VERDICT_ALLOW;
	int final, denied;
	const char *outcome;
	char id[80];

	(void)conn_state_parse(r->state, &st);
	(void)conn_verdict_parse(r->verdict, &v);
	final = st != CONN_OPEN && st != CONN_RELAYING;
	denied = v == VERDICT_BLOCK || v == VERDICT_REFUSE;
	/* The verdict carried out is a success; a connection that never got
	 * where it was allowed to go is a failure. */
	if (st == CONN_CLOSED || (st == CONN_FAILED && denied))
		outcome = "success";
	else if (st == CONN_FAILED)
		outcome = "failure";
	else
		outcome = "unknown";

	begin(&o, NULL);
	when(&o, "@timestamp", final && r->closed_at_us > 0 ? r->closed_at_us : r->opened_at_us);
	begin(&o, "ecs");
	str(&o, "version", ECS_VERSION);
	end(&o);

	begin(&o, "event");
	str(&o, "kind", "event");
	key(&o, "category");
	puts_(&o, "[\"network\"]");
	key(&o, "type");
	puts_(&o, final ? "[\"connection\",\"end\"," : "[\"connection\",\"start\",");
	puts_(&o, denied ? "\"denied\"]" : "\"allowed\"]");
	str(&o, "action", r->verdict);
	str(&o, "outcome", outcome);
	when(&o, "start", r->opened_at_us);
	if (final && r->closed_at_us > 0) {
		when(&o, "end", r->closed_at_us);
		num(&o, "duration", (r->closed_at_us - r->opened_at_us) * 1000);
	}
	snprintf(id, sizeof(id), "%s:%" PRIu64, a->uuid, r->seq);
	str(&o, "id", id);
	unum(&o, "sequence", r->seq);
	str_known(&o, "reason", r->close_reason);
	when(&o, "created", r->at_us > 0 ? r->at_us : r->opened_at_us);
	end(&o);

	if (r->error != NULL && r->error[0] != '\0') {
		begin(&o, "error");
		str(&o, "message", r->error);
		end(&o);
	}

	begin(&o, "source");
	str(&o, "ip", r->client_addr);
	unum(&o, "port", r->client_port);
	if (final)
		unum(&o, "bytes", r->bytes_up);
	if (r->upstream_local_addr != NULL && r->upstream_local_addr[0] != '\0') {
		begin(&o, "nat");
		str(&o, "ip", r->upstream_local_addr);
		unum(&o, "port", r->upstream_local_port);
		end(&o);
	}
	end(&o);

	begin(&o, "destination");
	str_known(&o, "ip", r->orig_dst_addr);
	if (r->orig_dst_port != 0)
		unum(&o, "port", r->orig_dst_port);
	if (final)
		unum(&o, "bytes", r->bytes_down);
	end(&o);

	begin(&o, "network");
	str(&o, "transport", "tcp");
	str(&o, "type", r->family == 6 ? "ipv6" : "ipv4");
	str(&o, "direction", "egress");
	end(&o);

	if (r->policy_version > 0 || (r->rule_id != NULL && r->rule_id[0] != '\0')) {
		begin(&o, "rule");
		str_known(&o, "id", r->rule_id);
		if (r->policy_version > 0) {
			char pv[24];

			snprintf(pv, sizeof(pv), "%" PRIu64, r->policy_version);
			str(&o, "version", pv);
		}
		end(&o);
	}
	if (r->uid >= 0) {
		char uid[24];

		snprintf(uid, sizeof(uid), "%" PRId64, r->uid);
		begin(&o, "user");
		str(&o, "id", uid);
		end(&o);
	}
	if (r->pid >= 0 || (r->exe != NULL && r->exe[0] != '\0')) {
		begin(&o, "process");
		if (r->pid >= 0)
			num(&o, "pid", r->pid);
		str_known(&o, "executable", r->exe);
		end(&o);
	}
	if (r->server_name != NULL && r->server_name[0] != '\0') {
		if (strcmp(r->server_name_source, "host") == 0) {
			begin(&o, "url");
			str(&o, "domain", r->server_name);
			end(&o);
		} else {
			begin(&o, "tls");
			begin(&o, "client");
			str(&o, "server_name", r->server_name);
			end(&o);
			end(&o);
		}
	}

	begin(&o, "agent");
	str(&o, "id", a->uuid);
	str(&o, "name", a->name);
	str(&o, "type", "redirect-agent");
	str(&o, "version", a->version);
	end(&o);
	begin(&o, "host");
	str_known(&o, "name", a->hostname);
	begin(&o, "os");
	str(&o, "type", a->os_type);
	end(&o);
	end(&o);

	begin(&o, "redirect_agent");
	unum(&o, "connection_id", r->id);
	str(&o, "state", r->state);
	str_known(&o, "redirect_state", r->redirect_state);
	unum(&o, "records_mark", r->records_mark);
	if (r->connect_us >= 0)
		num(&o, "connect_us", r->connect_us);
	str_known(&o, "server_name_source", r->server_name_source);
	end(&o);
	end(&o);

	if (o.full)
		return -ENOSPC;
	buf[o.len] = '\0';
	return (int)o.len;
}
