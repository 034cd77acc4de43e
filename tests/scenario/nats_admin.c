/*
 * nats_admin: what a NATS operator and a SIEM connector do, for the
 * scenario tests (never shipped): make or change a stream, and read one
 * back in full.
 *
 *   nats_admin URL add-stream NAME SUBJECT [MAX_MSGS]   (MAX_MSGS: discard new beyond it)
 *   nats_admin URL update-stream NAME SUBJECT MAX_MSGS  (0: no limit)
 *   nats_admin URL dump STREAM      every message: "<Nats-Msg-Id>\t<data>", in stream order
 *   nats_admin URL times STREAM     every message: "<stored at, ns since the epoch>\t<data>"
 *   nats_admin URL count STREAM     the number of messages
 *   nats_admin URL kv-put BUCKET KEY FILE   a value as it is (no check: a bad document too)
 *   nats_admin URL kv-get BUCKET KEY        print a key's value
 *   nats_admin URL pub SUBJECT TEXT         publish; exit 1 when the server refuses it
 *   nats_admin URL sub SUBJECT              subscribe; exit 1 when the server refuses it
 *
 * URL may carry user:password@; NATS_INBOX sets the inbox prefix (a user
 * confined to its own). Exit 0, or 1 with the reason on stderr.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char refused[512]; /* the server's asynchronous complaint */

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
	const char *t = NULL;

	(void)sub, (void)arg;
	natsConnection_GetLastError(nc, &t);
	snprintf(refused, sizeof(refused), "%s", t != NULL ? t : natsStatus_GetText(err));
}

/* After a publish or a subscription: a refusal comes back asynchronously, if at all. */
static int
refusal(natsConnection *nc, const char *what)
{
	natsConnection_FlushTimeout(nc, 1000);
	nats_Sleep(300);
	if (refused[0] != '\0') {
		fprintf(stderr, "nats_admin: %s: %s\n", what, refused);
		return 1;
	}
	return 0;
}

static int
fail(const char *what, natsStatus s)
{
	const char *t = nats_GetLastError(NULL);

	fprintf(stderr, "nats_admin: %s: %s%s%s\n", what, natsStatus_GetText(s),
	    t != NULL && *t != '\0' ? ": " : "", t != NULL ? t : "");
	return 1;
}

static int
put_stream(jsCtx *js, const char *name, const char *subject, long long max, int update)
{
	const char *subjects[1] = {subject};
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode ec = 0;
	natsStatus s;

	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.MaxMsgs = max > 0 ? max : -1;
	sc.Discard = js_DiscardNew;
	s = update ? js_UpdateStream(&si, js, &sc, NULL, &ec)
		   : js_AddStream(&si, js, &sc, NULL, &ec);
	if (s != NATS_OK)
		return fail(update ? "update-stream" : "add-stream", s);
	jsStreamInfo_Destroy(si);
	return 0;
}

static int
count(jsCtx *js, const char *stream, uint64_t *n)
{
	jsStreamInfo *si = NULL;
	natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, NULL);

	if (s != NATS_OK)
		return fail("stream info", s);
	*n = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return 0;
}

/* Every message, through an ordered consumer, until the count is reached. */
static int
dump(jsCtx *js, const char *stream, int times)
{
	natsSubscription *sub = NULL;
	jsSubOptions so;
	uint64_t total, got = 0;
	natsStatus s;

	if (count(js, stream, &total) != 0)
		return 1;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	if ((s = js_SubscribeSync(&sub, js, ">", NULL, &so, NULL)) != NATS_OK)
		return fail("subscribe", s);
	while (got < total) {
		natsMsg *m = NULL;
		const char *id = "";

		if ((s = natsSubscription_NextMsg(&m, sub, 5000)) != NATS_OK) {
			natsSubscription_Destroy(sub);
			return fail("next message", s);
		}
		if (times) {
			jsMsgMetaData *meta = NULL;

			if ((s = natsMsg_GetMetaData(&meta, m)) != NATS_OK)
				return fail("metadata", s);
			printf("%lld\t", (long long)meta->Timestamp);
			jsMsgMetaData_Destroy(meta);
		} else {
			(void)natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
			printf("%s\t", id != NULL ? id : "");
		}
		printf("%.*s\n", natsMsg_GetDataLength(m), natsMsg_GetData(m));
		natsMsg_Destroy(m);
		got++;
	}
	natsSubscription_Destroy(sub);
	return 0;
}

int
main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsStatus s;
	int rc = 2;

	if (argc < 4) {
		fprintf(stderr, "usage: nats_admin URL add-stream|update-stream|dump|count ARGS\n");
		return 2;
	}
	{
		natsOptions *o = NULL;

		if ((s = natsOptions_Create(&o)) != NATS_OK ||
		    (s = natsOptions_SetURL(o, argv[1])) != NATS_OK ||
		    (s = natsOptions_SetErrorHandler(o, on_error, NULL)) != NATS_OK ||
		    (getenv("NATS_INBOX") != NULL && (s = natsOptions_SetCustomInboxPrefix(
							  o, getenv("NATS_INBOX"))) != NATS_OK) ||
		    (s = natsConnection_Connect(&nc, o)) != NATS_OK)
			return fail(argv[1], s);
		natsOptions_Destroy(o);
	}
	{
		jsOptions jo;

		jsOptions_Init(&jo);
		jo.Wait = 2000;
		if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK)
			return fail("JetStream", s);
	}
	if (strcmp(argv[2], "add-stream") == 0 && argc >= 5)
		rc = put_stream(js, argv[3], argv[4], argc > 5 ? strtoll(argv[5], NULL, 10) : 0, 0);
	else if (strcmp(argv[2], "update-stream") == 0 && argc == 6)
		rc = put_stream(js, argv[3], argv[4], strtoll(argv[5], NULL, 10), 1);
	else if (strcmp(argv[2], "dump") == 0)
		rc = dump(js, argv[3], 0);
	else if (strcmp(argv[2], "times") == 0)
		rc = dump(js, argv[3], 1);
	else if (strcmp(argv[2], "kv-put") == 0 && argc == 6) {
		kvStore *kv = NULL;
		char buf[1 << 16];
		FILE *f = fopen(argv[5], "r");
		size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		uint64_t rev = 0;

		if (f != NULL)
			fclose(f);
		buf[n] = '\0';
		if ((s = js_KeyValue(&kv, js, argv[3])) != NATS_OK ||
		    (s = kvStore_PutString(&rev, kv, argv[4], buf)) != NATS_OK)
			rc = fail("kv-put", s);
		else
			printf("%llu\n", (unsigned long long)rev), rc = 0;
		kvStore_Destroy(kv);
	} else if (strcmp(argv[2], "kv-get") == 0 && argc == 5) {
		kvStore *kv = NULL;
		kvEntry *e = NULL;

		if ((s = js_KeyValue(&kv, js, argv[3])) != NATS_OK ||
		    (s = kvStore_Get(&e, kv, argv[4])) != NATS_OK)
			rc = fail("kv-get", s);
		else
			printf("%s\n", kvEntry_ValueString(e)), rc = 0;
		kvEntry_Destroy(e);
		kvStore_Destroy(kv);
	} else if (strcmp(argv[2], "pub") == 0 && argc == 5) {
		rc = (s = natsConnection_PublishString(nc, argv[3], argv[4])) != NATS_OK
			 ? fail("pub", s)
			 : refusal(nc, argv[3]);
	} else if (strcmp(argv[2], "sub") == 0 && argc == 4) {
		natsSubscription *sub = NULL;

		rc = (s = natsConnection_SubscribeSync(&sub, nc, argv[3])) != NATS_OK
			 ? fail("sub", s)
			 : refusal(nc, argv[3]);
		natsSubscription_Destroy(sub);
	} else if (strcmp(argv[2], "count") == 0) {
		uint64_t n = 0;

		if ((rc = count(js, argv[3], &n)) == 0)
			printf("%llu\n", (unsigned long long)n);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rc;
}
