/*
 * redirectctl: the admin CLI. It talks to the agent over the same gRPC API
 * a console uses: on the agent's local socket, or over TLS to a remote one.
 *
 * Three parts, as relayctl has them: the command table and its parser
 * (parser.c) turn argv into a struct request before anything is sent; this
 * file makes the calls each action needs; output.c prints the replies, for
 * people or as JSON.
 *
 * Exit codes: 0 ok, 1 the agent said no, 2 usage, 3 the agent cannot be reached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "err.h"
#include "fleet.h"
#include "output.h"
#include "parser.h"
#include "paths.h"

#define POLICY_FILE_MAX (4 << 20) /* the agent's request cap */

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

#define CALL(cl, method, req, type, out)                                                           \
	client_call((cl), method, &(req).base, &type##__descriptor, (ProtobufCMessage **)(out),    \
	    msg, sizeof(msg))

static int
do_status(struct client *cl, const struct request *rq)
{
	Redirect__V1__GetInfoRequest iq = REDIRECT__V1__GET_INFO_REQUEST__INIT;
	Redirect__V1__GetHealthRequest hq = REDIRECT__V1__GET_HEALTH_REQUEST__INIT;
	Redirect__V1__AgentInfo *info = NULL;
	Redirect__V1__Health *h = NULL;
	char msg[512];
	int rc;

	if ((rc = CALL(cl, "/redirect.v1.Agent/GetInfo", iq, redirect__v1__agent_info, &info)) != 0)
		return call_failed(rc, msg);
	if ((rc = CALL(cl, "/redirect.v1.Agent/GetHealth", hq, redirect__v1__health, &h)) != 0) {
		protobuf_c_message_free_unpacked(&info->base, NULL);
		return call_failed(rc, msg);
	}
	out_status(rq->json, info, h);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	protobuf_c_message_free_unpacked(&h->base, NULL);
	return 0;
}

static int
do_stats(struct client *cl, const struct request *rq)
{
	Redirect__V1__GetStatsRequest q = REDIRECT__V1__GET_STATS_REQUEST__INIT;
	Redirect__V1__Stats *s = NULL;
	char msg[512];
	int rc;

	if ((rc = CALL(cl, "/redirect.v1.Telemetry/GetStats", q, redirect__v1__stats, &s)) != 0)
		return call_failed(rc, msg);
	out_stats(rq->json, s);
	protobuf_c_message_free_unpacked(&s->base, NULL);
	return 0;
}

static int
do_conns(struct client *cl, const struct request *rq)
{
	Redirect__V1__ListConnectionsRequest q = REDIRECT__V1__LIST_CONNECTIONS_REQUEST__INIT;
	struct out_conns *o = NULL;
	unsigned long shown = 0;
	char msg[512], token[64] = "";
	int rc;

	q.since_us = rq->since_us;
	q.until_us = rq->until_us;
	q.dst_cidr = (char *)(rq->dst_cidr != NULL ? rq->dst_cidr : "");
	q.dst_port = rq->dst_port;
	q.state = (char *)(rq->state != NULL ? rq->state : "");
	q.verdict = (char *)(rq->verdict != NULL ? rq->verdict : "");
	q.redirect_state = (char *)(rq->redirect_state != NULL ? rq->redirect_state : "");
	do {
		Redirect__V1__ListConnectionsResponse *r = NULL;

		q.page_size = (uint32_t)(rq->limit - shown > 1000 ? 1000 : rq->limit - shown);
		q.page_token = token;
		if ((rc = CALL(cl, "/redirect.v1.Telemetry/ListConnections", q,
			 redirect__v1__list_connections_response, &r)) != 0) {
			out_conns_end(o);
			return call_failed(rc, msg);
		}
		if (o == NULL && (o = out_conns_begin(rq->json)) == NULL) {
			protobuf_c_message_free_unpacked(&r->base, NULL);
			fprintf(stderr, "redirectctl: out of memory\n");
			return EXIT_NO;
		}
		for (size_t i = 0; i < r->n_connections; i++)
			out_conns_row(o, r->connections[i]);
		shown += r->n_connections;
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} while (token[0] != '\0' && shown < rq->limit);
	out_conns_end(o);
	return 0;
}

static int
do_conn(struct client *cl, const struct request *rq)
{
	Redirect__V1__GetConnectionRequest q = REDIRECT__V1__GET_CONNECTION_REQUEST__INIT;
	Redirect__V1__Connection *k = NULL;
	char msg[512];
	int rc;

	q.id = rq->id;
	if ((rc = CALL(
		 cl, "/redirect.v1.Telemetry/GetConnection", q, redirect__v1__connection, &k)) != 0)
		return call_failed(rc, msg);
	out_conn(rq->json, k);
	protobuf_c_message_free_unpacked(&k->base, NULL);
	return 0;
}

static int
print_event(void *arg, const ProtobufCMessage *m)
{
	const struct request *rq = arg;

	out_event(rq->json, (const Redirect__V1__ConnectionEvent *)m);
	return 0;
}

static int
do_watch(struct client *cl, const struct request *rq)
{
	Redirect__V1__WatchConnectionsRequest q = REDIRECT__V1__WATCH_CONNECTIONS_REQUEST__INIT;
	char msg[512];
	int rc;

	q.after_sequence = rq->after;
	out_watch_header(rq->json);
	rc = client_stream(cl, "/redirect.v1.Telemetry/WatchConnections", &q.base,
	    &redirect__v1__connection_event__descriptor, print_event, (void *)rq, msg, sizeof(msg));
	return rc == 0 ? 0 : call_failed(rc, msg);
}

/* The file's text, at most POLICY_FILE_MAX bytes; NULL after saying why. */
static char *
read_policy_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "redirectctl: %s: %s\n", path, err_str(errno));
		return NULL;
	}
	buf = malloc(POLICY_FILE_MAX + 1);
	n = buf != NULL ? fread(buf, 1, POLICY_FILE_MAX + 1, f) : 0;
	fclose(f);
	if (buf == NULL) {
		fprintf(stderr, "redirectctl: out of memory\n");
		return NULL;
	}
	if (n > POLICY_FILE_MAX) {
		fprintf(stderr, "redirectctl: %s: larger than the agent accepts (4 MiB)\n", path);
		free(buf);
		return NULL;
	}
	if (memchr(buf, '\0', n) != NULL) {
		/* It would be cut there: what is after the NUL would silently not count. */
		fprintf(stderr,
		    "redirectctl: %s: holds a NUL byte at offset %zu: not a policy document\n",
		    path, (size_t)((char *)memchr(buf, '\0', n) - buf));
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static int
get_policy(struct client *cl, Redirect__V1__PolicyVersion **out, char *msg, size_t msglen)
{
	Redirect__V1__GetPolicyRequest q = REDIRECT__V1__GET_POLICY_REQUEST__INIT;

	return client_call(cl, "/redirect.v1.Policy/GetPolicy", &q.base,
	    &redirect__v1__policy_version__descriptor, (ProtobufCMessage **)out, msg, msglen);
}

static int
do_policy_get(struct client *cl, const struct request *rq)
{
	Redirect__V1__PolicyVersion *v = NULL;
	char msg[512];
	int rc;

	if ((rc = get_policy(cl, &v, msg, sizeof(msg))) != 0)
		return call_failed(rc, msg);
	out_policy(rq->json, v);
	protobuf_c_message_free_unpacked(&v->base, NULL);
	return 0;
}

/*
 * Without --expected-version, set replaces the version the agent has now
 * (read just before): fine for one admin. Consoles pass the version they
 * read, so a concurrent change makes theirs fail instead of vanishing.
 */
static int
do_policy_set(struct client *cl, const struct request *rq, const char *doc)
{
	Redirect__V1__SetPolicyRequest q = REDIRECT__V1__SET_POLICY_REQUEST__INIT;
	Redirect__V1__PolicyVersion *v = NULL;
	long long expected = rq->expected_version;
	char msg[2048];
	int rc;

	if (expected < 0) {
		if ((rc = get_policy(cl, &v, msg, sizeof(msg))) != 0)
			return call_failed(rc, msg);
		expected = (long long)v->version;
		protobuf_c_message_free_unpacked(&v->base, NULL);
		v = NULL;
	}
	q.document_json = (char *)doc;
	q.expected_version = (uint64_t)expected;
	if ((rc = CALL(cl, "/redirect.v1.Policy/SetPolicy", q, redirect__v1__policy_version, &v)) !=
	    0)
		return call_failed(rc, msg);
	out_policy_set(rq->json, v);
	protobuf_c_message_free_unpacked(&v->base, NULL);
	return 0;
}

static int
do_policy_validate(struct client *cl, const struct request *rq, const char *doc)
{
	Redirect__V1__ValidatePolicyRequest q = REDIRECT__V1__VALIDATE_POLICY_REQUEST__INIT;
	Redirect__V1__ValidatePolicyResponse *r = NULL;
	char msg[512];
	int rc, bad;

	q.document_json = (char *)doc;
	q.simulate_last = rq->simulate;
	if ((rc = CALL(cl, "/redirect.v1.Policy/ValidatePolicy", q,
		 redirect__v1__validate_policy_response, &r)) != 0)
		return call_failed(rc, msg);
	bad = r->n_problems > 0;
	out_validate(rq->json, rq->file, rq->simulate, r);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return bad ? EXIT_NO : 0;
}

/* Every version, a page at a time (the agent pages: a reply has a size limit). */
#define HISTORY_PAGES_MAX 1000 /* 100,000 versions: the most [db] policy_history_keep keeps */

static int
do_policy_history(struct client *cl, const struct request *rq)
{
	Redirect__V1__ListPolicyHistoryRequest q = REDIRECT__V1__LIST_POLICY_HISTORY_REQUEST__INIT;
	Redirect__V1__ListPolicyHistoryResponse *pages[HISTORY_PAGES_MAX];
	size_t n = 0;
	char msg[512], token[32] = "";
	int rc = 0;

	q.page_size = 100;
	do {
		Redirect__V1__ListPolicyHistoryResponse *r = NULL;

		q.page_token = token;
		if ((rc = CALL(cl, "/redirect.v1.Policy/ListPolicyHistory", q,
			 redirect__v1__list_policy_history_response, &r)) != 0) {
			rc = call_failed(rc, msg);
			break;
		}
		pages[n++] = r;
		snprintf(token, sizeof(token), "%s", r->next_page_token);
	} while (token[0] != '\0' && n < HISTORY_PAGES_MAX);
	if (rc == 0)
		out_history(rq->json, pages, n);
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&pages[i]->base, NULL);
	return rc;
}

static int
do_reload(struct client *cl, const struct request *rq)
{
	Redirect__V1__ReloadRequest q = REDIRECT__V1__RELOAD_REQUEST__INIT;
	Redirect__V1__ReloadResponse *r = NULL;
	char msg[2048];
	int rc;

	if ((rc = CALL(cl, "/redirect.v1.Agent/Reload", q, redirect__v1__reload_response, &r)) != 0)
		return call_failed(rc, msg);
	out_reload(rq->json, r->message);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

static int
run(struct client *cl, const struct request *rq, const char *doc)
{
	switch (rq->action) {
	case ACT_RELOAD:
		return do_reload(cl, rq);
	case ACT_STATUS:
		return do_status(cl, rq);
	case ACT_STATS:
		return do_stats(cl, rq);
	case ACT_CONNS:
		return do_conns(cl, rq);
	case ACT_CONN:
		return do_conn(cl, rq);
	case ACT_WATCH:
		return do_watch(cl, rq);
	case ACT_POLICY_GET:
		return do_policy_get(cl, rq);
	case ACT_POLICY_SET:
		return do_policy_set(cl, rq, doc);
	case ACT_POLICY_VALIDATE:
		return do_policy_validate(cl, rq, doc);
	case ACT_POLICY_HISTORY:
		return do_policy_history(cl, rq);
	case ACT_NONE:
	case ACT_HELP:
	case ACT_FLEET_INIT: /* fleet_run's, never here */
	case ACT_FLEET_AGENTS:
	case ACT_FLEET_CONNS:
	case ACT_FLEET_POLICY_GET:
	case ACT_FLEET_POLICY_SET:
	case ACT_FLEET_POLICY_DELETE:
	case ACT_FLEET_POLICY_HISTORY:
	case ACT_FLEET_CALL:
		break;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct request rq;
	struct client cl;
	char err[512], sock[256], dir[256], *doc = NULL;
	int rc;

	if ((rc = parse_command_line(argc, argv, &rq)) != 0)
		return rc;
	if (rq.action == ACT_NONE)
		return 0;
	if (rq.action == ACT_HELP) {
		if (rq.help_group != NULL)
			print_group_usage(stdout, rq.help_group);
		else
			print_usage(stdout, rq.help_for);
		return 0;
	}
	/* A file that cannot be read is the command line's fault: before connecting. */
	if ((rq.action == ACT_POLICY_SET || rq.action == ACT_POLICY_VALIDATE ||
		rq.action == ACT_FLEET_POLICY_SET) &&
	    (doc = read_policy_file(rq.file)) == NULL)
		return EXIT_USAGE;
	if (rq.fleet) {
		rc = fleet_run(&rq, doc);
		free(doc);
		return rc;
	}
	if (rq.fleet_call) { /* the same commands, to one agent over NATS */
		if ((rc = fleet_client_open(&cl, &rq)) == 0)
			rc = run(&cl, &rq, doc);
		fleet_client_close(&cl);
		free(doc);
		return rc;
	}
	if (rq.socket_path == NULL)
		rq.socket_path = paths_join(
		    sock, sizeof(sock), paths_runtime_dir(dir, sizeof(dir)), "agent.sock");
	if (rq.target != NULL
		? client_open_tls(&cl, rq.target, rq.ca, rq.cert, rq.key, err, sizeof(err)) != 0
		: client_open(&cl, rq.socket_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "redirectctl: %s\n", err);
		free(doc);
		return EXIT_UNREACHABLE;
	}
	rc = run(&cl, &rq, doc);
	client_close(&cl);
	free(doc);
	return rc;
}
