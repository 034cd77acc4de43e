/*
 * fleet.c: redirectctl fleet, the reference console, over NATS (fleet.h).
 *
 * What the agents put in NATS (agent/fleet/control.h) is read here with
 * the NATS C client: the inventory bucket, the policy bucket, the records'
 * stream; and "fleet call UUID COMMAND" sends the same protobuf requests
 * as the gRPC client, as NATS requests to that agent (a transport behind
 * client.h). Who may do what is the NATS server's permissions: a refusal
 * comes back as a timeout, so the message says which it may be.
 */
#include "fleet.h"

#include <errno.h>
#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "output.h"
#include "policy.h"

#define FLEET_WAIT_MS    3000 /* a request or a JetStream call, at most */
#define FLEET_CONNECT_MS 3000
#define FLEET_AGENTS_MAX 200000
#define FLEET_STREAM     "REDIRECT_CONN"
#define FLEET_AGENTS     "REDIRECT_AGENTS"
#define FLEET_POLICY     "REDIRECT_POLICY"

struct fleet_conn {
	natsConnection *nc;
	jsCtx *js;
	const struct request *rq;
	char rpc_subject[256]; /* "<prefix>.rpc.<uuid>" for fleet call */
};

/*
 * The server's asynchronous complaint ("Permissions Violation for Publish
 * to ..."): a refused request otherwise only times out.
 */
static char async_error[512];

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
	const char *text = NULL;

	(void)sub, (void)arg;
	natsConnection_GetLastError(nc, &text);
	snprintf(
	    async_error, sizeof(async_error), "%s", text != NULL ? text : natsStatus_GetText(err));
}

/* "STATUS: library text" of the latest NATS failure. */
static void
reason(natsStatus s, const char *what, char *out, size_t len)
{
	const char *text = nats_GetLastError(NULL), *where;

	if (s == NATS_TIMEOUT && async_error[0] != '\0') {
		snprintf(out, len, "%s: not permitted: %s", what, async_error);
		return;
	}
	if (text != NULL && text[0] == '(' && (where = strstr(text, "): ")) != NULL)
		text = where + 3;
	if (text != NULL && strcmp(text, natsStatus_GetText(s)) == 0)
		text = NULL; /* nats.c often says the status twice */
	snprintf(out, len, "%s: %s%s%.300s%s", what, natsStatus_GetText(s),
	    text != NULL && text[0] != '\0' ? ": " : "", text != NULL ? text : "",
	    s == NATS_TIMEOUT ? " (no answer: down, or not permitted for this user)" : "");
}

static int
failed(natsStatus s, const char *what)
{
	char why[700];

	reason(s, what, why, sizeof(why));
	fprintf(stderr, "redirectctl: %s\n", why);
	return s == NATS_NO_SERVER || s == NATS_CONNECTION_CLOSED || s == NATS_NOT_YET_CONNECTED
		   ? EXIT_UNREACHABLE
		   : EXIT_NO;
}

static const char *
prefix(const struct request *rq)
{
	return rq->nats.prefix != NULL ? rq->nats.prefix : "redirect";
}

static int
fleet_connect(struct fleet_conn *fc, const struct request *rq)
{
	const struct fleet_opts *o = &rq->nats;
	natsOptions *opts = NULL;
	jsOptions jo;
	char inbox[160];
	natsStatus s;

	memset(fc, 0, sizeof(*fc));
	fc->rq = rq;
	snprintf(inbox, sizeof(inbox), "%s%s%s", o->inbox != NULL ? o->inbox : "_INBOX",
	    o->inbox == NULL && o->user != NULL ? "." : "",
	    o->inbox == NULL && o->user != NULL ? o->user : "");
	if ((s = natsOptions_Create(&opts)) != NATS_OK ||
	    (s = natsOptions_SetURL(opts, o->server)) != NATS_OK ||
	    (s = natsOptions_SetName(opts, "redirectctl")) != NATS_OK ||
	    (s = natsOptions_SetTimeout(opts, FLEET_CONNECT_MS)) != NATS_OK ||
	    (s = natsOptions_SetMaxReconnect(opts, 0)) != NATS_OK ||
	    (s = natsOptions_SetCustomInboxPrefix(opts, inbox)) != NATS_OK ||
	    (s = natsOptions_SetErrorHandler(opts, on_error, NULL)) != NATS_OK ||
	    (o->user != NULL &&
		(s = natsOptions_SetUserInfo(opts, o->user,
		     o->password != NULL ? o->password : getenv("REDIRECTCTL_NATS_PASSWORD"))) !=
		    NATS_OK) ||
	    (o->creds != NULL &&
		(s = natsOptions_SetUserCredentialsFromFiles(opts, o->creds, NULL)) != NATS_OK) ||
	    (o->tls_ca != NULL &&
		((s = natsOptions_SetSecure(opts, true)) != NATS_OK ||
		    (s = natsOptions_LoadCATrustedCertificates(opts, o->tls_ca)) != NATS_OK)) ||
	    (o->tls_cert != NULL && (s = natsOptions_LoadCertificatesChain(
					 opts, o->tls_cert, o->tls_key)) != NATS_OK)) {
		natsOptions_Destroy(opts);
		return failed(s, "NATS options");
	}
	s = natsConnection_Connect(&fc->nc, opts);
	natsOptions_Destroy(opts);
	if (s != NATS_OK) {
		char what[300];

		snprintf(what, sizeof(what), "cannot reach %s", o->server);
		failed(s, what);
		return EXIT_UNREACHABLE;
	}
	jsOptions_Init(&jo);
	jo.Wait = FLEET_WAIT_MS;
	if ((s = natsConnection_JetStream(&fc->js, fc->nc, &jo)) != NATS_OK)
		return failed(s, "JetStream");
	return 0;
}

static void
fleet_disconnect(struct fleet_conn *fc)
{
	jsCtx_Destroy(fc->js);
	natsConnection_Destroy(fc->nc);
}

/* ---- init: what the operator makes once ---- */

static int
do_init(struct fleet_conn *fc)
{
	const char *subjects[1];
	char subj[96], src[96], dst[96];
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	kvConfig kc;
	kvStore *kv = NULL;
	jsRePublish rp;
	natsStatus s;

	snprintf(subj, sizeof(subj), "%s.conn.>", prefix(fc->rq));
	subjects[0] = subj;
	jsStreamConfig_Init(&sc);
	sc.Name = FLEET_STREAM;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Duplicates = 120LL * 1000000000; /* Nats-Msg-Id de-duplication: 2 min */
	if ((s = js_AddStream(&si, fc->js, &sc, NULL, &ec)) != NATS_OK && ec != 10058)
		return failed(s, "stream " FLEET_STREAM);
	jsStreamInfo_Destroy(si);
	kvConfig_Init(&kc);
	kc.Bucket = FLEET_AGENTS;
	kc.History = 1;
	kc.TTL = (fc->rq->ttl_s > 0 ? fc->rq->ttl_s : 3600) * 1000000000LL;
	if ((s = js_CreateKeyValue(&kv, fc->js, &kc)) != NATS_OK)
		return failed(s, "bucket " FLEET_AGENTS);
	kvStore_Destroy(kv);
	kvConfig_Init(&kc);
	kc.Bucket = FLEET_POLICY;
	kc.History = 10;
	snprintf(src, sizeof(src), "$KV.%s.>", FLEET_POLICY);
	snprintf(dst, sizeof(dst), "%s.policy.>", prefix(fc->rq));
	memset(&rp, 0, sizeof(rp));
	rp.Source = src;
	rp.Destination = dst;
	kc.RePublish = &rp;
	if ((s = js_CreateKeyValue(&kv, fc->js, &kc)) != NATS_OK)
		return failed(s, "bucket " FLEET_POLICY);
	kvStore_Destroy(kv);
	printf("stream %s (%s), buckets %s (age limit %llds) and %s (republished to %s)\n",
	    FLEET_STREAM, subj, FLEET_AGENTS, (long long)(fc->rq->ttl_s > 0 ? fc->rq->ttl_s : 3600),
	    FLEET_POLICY, dst);
	return 0;
}

/* ---- agents: the inventory ---- */

/*
 * Every entry of the inventory bucket: an ordered consumer over its stream,
 * the last value of each key. Entries written while it reads come after
 * "caught up", so a listing that stops there can miss an agent whose
 * heartbeat landed meanwhile: it reads on until it has as many keys as the
 * stream holds (History 1: one message per key), for at most 300 ms more.
 */
static int
do_agents(struct fleet_conn *fc)
{
	jsSubOptions so;
	natsSubscription *sub = NULL;
	jsErrCode ec = 0;
	json_t *by_key = json_object(), *agents = json_array(), *v;
	int64_t settle_until = 0;
	const char *k;
	natsStatus s;
	int rc = 0, caught_up = 0;

	{ /* an empty bucket sends nothing: no wait for it */
		jsStreamInfo *si = NULL;

		if ((s = js_GetStreamInfo(&si, fc->js, "KV_" FLEET_AGENTS, NULL, &ec)) != NATS_OK) {
			rc = failed(s, "bucket " FLEET_AGENTS);
			goto out;
		}
		caught_up = si->State.Msgs == 0;
		jsStreamInfo_Destroy(si);
		if (caught_up)
			goto print;
	}
	jsSubOptions_Init(&so);
	so.Stream = "KV_" FLEET_AGENTS;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverLastPerSubject;
	if ((s = js_SubscribeSync(&sub, fc->js, "$KV." FLEET_AGENTS ".>", NULL, &so, &ec)) !=
	    NATS_OK) {
		rc = failed(s, "bucket " FLEET_AGENTS);
		goto out;
	}
	for (;;) {
		natsMsg *m = NULL;
		jsMsgMetaData *meta = NULL;
		const char *op = NULL, *key;

		s = natsSubscription_NextMsg(&m, sub, caught_up ? 50 : FLEET_WAIT_MS);
		if (s == NATS_TIMEOUT && caught_up)
			break;
		if (s != NATS_OK) {
			rc = failed(s, "reading the inventory");
			goto out;
		}
		key = natsMsg_GetSubject(m) + strlen("$KV." FLEET_AGENTS ".");
		(void)natsMsgHeader_Get(m, "KV-Operation", &op);
		if (op == NULL && (v = json_loadb(natsMsg_GetData(m),
				       (size_t)natsMsg_GetDataLength(m), 0, NULL)) != NULL)
			json_object_set_new(by_key, key, v);
		else
			json_object_set_new(
			    by_key, key, json_null()); /* deleted: counted, not shown */
		if (!caught_up && natsMsg_GetMetaData(&meta, m) == NATS_OK) {
			if (meta->NumPending == 0) {
				jsStreamInfo *si = NULL;

				caught_up = 1;
				settle_until = clock_wall_us() + 300000;
				if (js_GetStreamInfo(&si, fc->js, "KV_" FLEET_AGENTS, NULL, &ec) ==
					NATS_OK &&
				    json_object_size(by_key) >= si->State.Msgs)
					settle_until = 0; /* complete */
				jsStreamInfo_Destroy(si);
			}
			jsMsgMetaData_Destroy(meta);
		}
		natsMsg_Destroy(m);
		if (caught_up && clock_wall_us() >= settle_until)
			break;
		if (json_object_size(by_key) >= FLEET_AGENTS_MAX)
			break;
	}
print:
	json_object_foreach(by_key, k, v) if (json_is_object(v)) json_array_append(agents, v);
	out_agents(fc->rq->json, agents);
out:
	json_decref(by_key);
	json_decref(agents);
	natsSubscription_Destroy(sub);
	return rc;
}

/* ---- conns: the stream ---- */

static int
do_conns(struct fleet_conn *fc)
{
	const struct request *rq = fc->rq;
	jsSubOptions so;
	natsSubscription *sub = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	char subject[160];
	natsStatus s;
	int rc = 0;

	snprintf(subject, sizeof(subject), "%s.conn.%s", prefix(rq),
	    rq->agent != NULL ? rq->agent : "*");
	jsSubOptions_Init(&so);
	so.Stream = FLEET_STREAM;
	so.Ordered = true;
	if (rq->since_us != 0) {
		so.Config.DeliverPolicy = js_DeliverByStartTime;
		so.Config.OptStartTime = rq->since_us * 1000;
	} else {
		/* The last --limit records of the stream (for one agent: of the stream, filtered).
		 */
		uint64_t last;

		if ((s = js_GetStreamInfo(&si, fc->js, FLEET_STREAM, NULL, &ec)) != NATS_OK)
			return failed(s, "stream " FLEET_STREAM);
		last = si->State.LastSeq;
		jsStreamInfo_Destroy(si);
		so.Config.DeliverPolicy = js_DeliverByStartSequence;
		so.Config.OptStartSeq = last > rq->limit ? last - rq->limit + 1 : 1;
	}
	if ((s = js_SubscribeSync(&sub, fc->js, subject, NULL, &so, &ec)) != NATS_OK)
		return failed(s, "stream " FLEET_STREAM);
	for (;;) {
		natsMsg *m = NULL;
		jsMsgMetaData *meta = NULL;
		int caught_up = 0;

		s = natsSubscription_NextMsg(&m, sub, rq->follow ? 3600000 : FLEET_WAIT_MS);
		if (s == NATS_TIMEOUT && !rq->follow)
			break; /* nothing more */
		if (s != NATS_OK) {
			if (s != NATS_TIMEOUT)
				rc = failed(s, "reading the stream");
			break;
		}
		out_fleet_record(rq->json, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
		fflush(stdout);
		if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
			caught_up = meta->NumPending == 0;
			jsMsgMetaData_Destroy(meta);
		}
		natsMsg_Destroy(m);
		if (caught_up && !rq->follow)
			break;
	}
	natsSubscription_Destroy(sub);
	return rc;
}

/* ---- policy keys ---- */

static int
open_policy(struct fleet_conn *fc, kvStore **kv)
{
	natsStatus s = js_KeyValue(kv, fc->js, FLEET_POLICY);

	return s == NATS_OK ? 0 : failed(s, "bucket " FLEET_POLICY);
}

static int
do_policy_get(struct fleet_conn *fc)
{
	kvStore *kv = NULL;
	kvEntry *e = NULL;
	natsStatus s;
	int rc;

	if ((rc = open_policy(fc, &kv)) != 0)
		return rc;
	if ((s = kvStore_Get(&e, kv, fc->rq->policy_key)) == NATS_NOT_FOUND) {
		fprintf(stderr, "redirectctl: %s: no such key (its agents use the next in order)\n",
		    fc->rq->policy_key);
		rc = EXIT_NO;
	} else if (s != NATS_OK) {
		rc = failed(s, fc->rq->policy_key);
	} else {
		char *doc = strndup(kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e));

		out_fleet_policy(fc->rq->json, fc->rq->policy_key, kvEntry_Revision(e),
		    kvEntry_Created(e) / 1000000000, doc != NULL ? doc : "");
		free(doc);
	}
	kvEntry_Destroy(e);
	kvStore_Destroy(kv);
	return rc;
}

static int
do_policy_set(struct fleet_conn *fc, const char *doc)
{
	const struct request *rq = fc->rq;
	struct policy_problems pr;
	struct policy *p;
	kvStore *kv = NULL;
	uint64_t rev = 0;
	natsStatus s;
	int rc;

	/* Checked here as each agent will: a document with a problem is not sent. */
	if ((p = policy_compile(doc, (size_t)-1, &pr)) == NULL) {
		for (size_t i = 0; i < pr.n; i++)
			fprintf(stderr, "%s: %s\n", rq->file, pr.msg[i]);
		policy_problems_free(&pr);
		return EXIT_NO;
	}
	policy_free(p);
	if ((rc = open_policy(fc, &kv)) != 0)
		return rc;
	if (rq->expected_revision == 0)
		s = kvStore_CreateString(&rev, kv, rq->policy_key, doc);
	else if (rq->expected_revision > 0)
		s = kvStore_UpdateString(
		    &rev, kv, rq->policy_key, doc, (uint64_t)rq->expected_revision);
	else
		s = kvStore_PutString(&rev, kv, rq->policy_key, doc);
	if (s != NATS_OK) {
		rc = failed(s, rq->policy_key);
		if (rq->expected_revision >= 0)
			fprintf(stderr,
			    "redirectctl: (compare-and-set: the key is not at revision %lld: "
			    "read it again)\n",
			    rq->expected_revision);
	} else if (rq->json) {
		printf("{\"key\": \"%s\", \"revision\": %llu}\n", rq->policy_key,
		    (unsigned long long)rev);
	} else {
		printf("%s revision %llu set\n", rq->policy_key, (unsigned long long)rev);
	}
	kvStore_Destroy(kv);
	return rc;
}

static int
do_policy_delete(struct fleet_conn *fc)
{
	kvStore *kv = NULL;
	natsStatus s;
	int rc;

	if ((rc = open_policy(fc, &kv)) != 0)
		return rc;
	if ((s = kvStore_Delete(kv, fc->rq->policy_key)) != NATS_OK)
		rc = failed(s, fc->rq->policy_key);
	else
		printf("%s deleted: its agents use the next key in order\n", fc->rq->policy_key);
	kvStore_Destroy(kv);
	return rc;
}

static int
do_policy_history(struct fleet_conn *fc)
{
	kvStore *kv = NULL;
	kvEntryList list = {0};
	json_t *arr = json_array();
	natsStatus s;
	int rc;

	if ((rc = open_policy(fc, &kv)) != 0)
		return rc;
	if ((s = kvStore_History(&list, kv, fc->rq->policy_key, NULL)) != NATS_OK) {
		rc = s == NATS_NOT_FOUND
			 ? (fprintf(stderr, "redirectctl: %s: no such key\n", fc->rq->policy_key),
			       EXIT_NO)
			 : failed(s, fc->rq->policy_key);
		goto out;
	}
	if (!fc->rq->json)
		printf("%-9s %-7s %s\n", "REVISION", "OP", "BYTES");
	for (int i = list.Count - 1; i >= 0; i--) { /* newest first */
		kvEntry *e = list.Entries[i];
		const char *op = kvEntry_Operation(e) == kvOp_Put ? "put" : "delete";

		if (fc->rq->json)
			json_array_append_new(
			    arr, json_pack("{s:I, s:s, s:I, s:s%}", "revision",
				     (json_int_t)kvEntry_Revision(e), "op", op, "created",
				     (json_int_t)(kvEntry_Created(e) / 1000000000), "document",
				     kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e)));
		else
			printf("%-9llu %-7s %d\n", (unsigned long long)kvEntry_Revision(e), op,
			    kvEntry_ValueLen(e));
	}
	if (fc->rq->json) {
		json_t *doc = json_pack("{s:s, s:O}", "key", fc->rq->policy_key, "revisions", arr);
		char *text = json_dumps(doc, JSON_INDENT(2));

		printf("%s\n", text != NULL ? text : "{}");
		free(text);
		json_decref(doc);
	}
out:
	json_decref(arr);
	kvEntryList_Destroy(&list);
	kvStore_Destroy(kv);
	return rc;
}

int
fleet_run(const struct request *rq, const char *doc)
{
	struct fleet_conn fc;
	int rc;

	if ((rc = fleet_connect(&fc, rq)) != 0) {
		fleet_disconnect(&fc);
		return rc;
	}
	switch (rq->action) {
	case ACT_FLEET_INIT:
		rc = do_init(&fc);
		break;
	case ACT_FLEET_AGENTS:
		rc = do_agents(&fc);
		break;
	case ACT_FLEET_CONNS:
		rc = do_conns(&fc);
		break;
	case ACT_FLEET_POLICY_GET:
		rc = do_policy_get(&fc);
		break;
	case ACT_FLEET_POLICY_SET:
		rc = do_policy_set(&fc, doc);
		break;
	case ACT_FLEET_POLICY_DELETE:
		rc = do_policy_delete(&fc);
		break;
	case ACT_FLEET_POLICY_HISTORY:
		rc = do_policy_history(&fc);
		break;
	default:
		rc = EXIT_USAGE;
		break;
	}
	fleet_disconnect(&fc);
	return rc;
}

/* ---- fleet call: one agent's methods as NATS requests ---- */

/* "/redirect.v1.Agent/GetInfo" -> "<rpc subject>.Agent.GetInfo" */
static int
call_unary(struct client *c, const char *method, const uint8_t *req, size_t len, uint8_t **reply,
    size_t *reply_len, char *msg, size_t msglen)
{
	struct fleet_conn *fc = c->impl;
	const char *svc = method + strlen("/redirect.v1."), *slash = strchr(svc, '/');
	char subject[400];
	const char *status = NULL, *text = NULL;
	natsMsg *r = NULL;
	natsStatus s;

	*reply = NULL;
	*reply_len = 0;
	if (strncmp(method, "/redirect.v1.", 13) != 0 || slash == NULL) {
		snprintf(msg, msglen, "not an API method: %s", method);
		return 12;
	}
	snprintf(subject, sizeof(subject), "%s.%.*s.%s", fc->rpc_subject, (int)(slash - svc), svc,
	    slash + 1);
	s = natsConnection_Request(&r, fc->nc, subject, req, (int)len, FLEET_WAIT_MS);
	if (s == NATS_NO_RESPONDERS) {
		snprintf(msg, msglen,
		    "agent %s does not answer over NATS (not connected, or "
		    "unknown)",
		    fc->rq->agent);
		return CLIENT_UNREACHABLE;
	}
	if (s != NATS_OK) {
		reason(s, subject, msg, msglen);
		if (s == NATS_TIMEOUT && async_error[0] != '\0')
			return 7; /* PERMISSION_DENIED, by the server */
		return s == NATS_TIMEOUT ? CLIENT_UNREACHABLE : 2;
	}
	if (natsMsgHeader_Get(r, "Status", &status) == NATS_OK && status != NULL) {
		/* a gRPC status code, 1..16; anything else from a peer is UNKNOWN (2) */
		char *end;
		long code = strtol(status, &end, 10);

		if (*end != '\0' || end == status || code < 1 || code > 16)
			code = 2;

		(void)natsMsgHeader_Get(r, "Status-Message", &text);
		snprintf(msg, msglen, "%s", text != NULL ? text : "");
		natsMsg_Destroy(r);
		return (int)code;
	}
	*reply_len = (size_t)natsMsg_GetDataLength(r);
	if ((*reply = malloc(*reply_len > 0 ? *reply_len : 1)) != NULL)
		memcpy(*reply, natsMsg_GetData(r), *reply_len);
	natsMsg_Destroy(r);
	return *reply != NULL ? 0 : 8;
}

int
fleet_client_open(struct client *c, const struct request *rq)
{
	struct fleet_conn *fc = calloc(1, sizeof(*fc));
	int rc;

	memset(c, 0, sizeof(*c));
	if (fc == NULL)
		return EXIT_NO;
	if ((rc = fleet_connect(fc, rq)) != 0) {
		fleet_disconnect(fc);
		free(fc);
		return rc;
	}
	snprintf(fc->rpc_subject, sizeof(fc->rpc_subject), "%s.rpc.%s", prefix(rq), rq->agent);
	snprintf(c->where, sizeof(c->where), "agent %s over NATS", rq->agent);
	c->unary = call_unary;
	c->impl = fc;
	return 0;
}

void
fleet_client_close(struct client *c)
{
	struct fleet_conn *fc = c->impl;

	if (fc == NULL)
		return;
	fleet_disconnect(fc);
	free(fc);
	c->impl = NULL;
}
