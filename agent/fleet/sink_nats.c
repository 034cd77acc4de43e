/*
 * sink_nats.c: the NATS JetStream sink. Each record is published to
 * <prefix>.conn.<agent uuid> with the header Nats-Msg-Id: <uuid>:<sequence>,
 * asynchronously, at most SINK_NATS_WINDOW unacknowledged at once; the
 * stream's acknowledgement of each advances the cursor (shipper.h). A
 * record sent twice (after a reconnect, a restart or a timeout) has the
 * same message id, and the stream keeps one copy: exactly once in the
 * stream, while the sends within its duplicate window (2 minutes by
 * default) are at least once on the wire.
 *
 * The stream itself ([fleet] stream, subjects <prefix>.conn.>) is the
 * operator's, unless [fleet] create_stream = yes: then the agent makes it
 * when it is missing. Without it a publish finds no stream and fails ("no
 * responders"); the shipper says so and retries.
 */
#include "sink_nats.h"

#include <inttypes.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fleet.h"
#include "log.h"

#define SINK_NATS_WINDOW                                                                           \
	1024 /* records unacknowledged at once (the helper's runs: 256-4096 alike) */
#define SINK_NATS_WAIT_MS 10000 /* a record not acknowledged in this long is sent again */

struct sink_nats {
	struct fleet *fleet;
	jsOptions jo;
	jsCtx *js; /* on connection generation gen; NULL before the first */
	unsigned gen;
	jsPubOptions po;
	char subject[256];
	char uuid[40];
	char stream[64];
	char stream_subjects[256];
	int create_stream;
	int stream_ready; /* created (or found) since the last connect */
	struct shipper *sh;
};

static uint64_t
seq_of(natsMsg *m)
{
	const char *id = NULL, *colon;

	if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || id == NULL ||
	    (colon = strrchr(id, ':')) == NULL)
		return 0;
	return strtoull(colon + 1, NULL, 10);
}

/* The stream's answer to one record; from the library's thread. */
static void
on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	struct sink_nats *s = arg;
	uint64_t seq = seq_of(msg);

	(void)js;
	if (pa != NULL) {
		shipper_ack(s->sh, seq);
	} else if (pae != NULL) {
		char why[768];

		if (pae->Err == NATS_NO_RESPONDERS)
			snprintf(why, sizeof(why),
			    "no JetStream stream takes %s: create stream %s (subjects %s), or set "
			    "[fleet] create_stream = yes",
			    s->subject, s->stream, s->stream_subjects);
		else
			snprintf(why, sizeof(why), "the stream refused record %" PRIu64 ": %s%s%s",
			    seq, natsStatus_GetText(pae->Err), pae->ErrText != NULL ? ": " : "",
			    pae->ErrText != NULL ? pae->ErrText : "");
		shipper_fail(s->sh, seq, why);
	}
	natsMsg_Destroy(msg); /* ours, with an AckHandler */
}

/* Make the stream when asked to and it is missing. 0, or -1 with why set. */
static int
ensure_stream(struct sink_nats *s, char *why, size_t whylen)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode ec = 0;
	const char *subjects[1] = {s->stream_subjects};
	natsStatus st;

	if (js_GetStreamInfo(&si, s->js, s->stream, NULL, &ec) == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = s->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Duplicates = (int64_t)120 * 1000 * 1000 * 1000; /* ns: two minutes */
	if ((st = js_AddStream(&si, s->js, &sc, NULL, &ec)) != NATS_OK) {
		snprintf(why, whylen, "cannot create stream %s: %s (JetStream error %d)", s->stream,
		    natsStatus_GetText(st), (int)ec);
		return -1;
	}
	jsStreamInfo_Destroy(si);
	log_info("export nats: created stream %s (subjects %s)", s->stream, s->stream_subjects);
	return 0;
}

static int
nats_ready(void *arg, char *why, size_t whylen)
{
	struct sink_nats *s = arg;

	if (!fleet_connected(s->fleet, why, whylen)) {
		s->stream_ready = 0;
		return 0;
	}
	/* A new connection: a new context on it. */
	if (s->js == NULL || s->gen != fleet_generation(s->fleet)) {
		jsCtx *js = NULL;

		if (fleet_jetstream(s->fleet, &s->jo, (void **)&js, &s->gen) != 0) {
			snprintf(why, whylen, "NATS: no connection");
			return 0;
		}
		if (s->js != NULL) {
			/* What was in flight on the old one gets no answer now: again. */
			jsCtx_Destroy(s->js);
			shipper_fail(s->sh, 0, "the NATS connection was made anew");
		}
		s->js = js;
		s->stream_ready = 0;
	}
	if (s->create_stream && !s->stream_ready) {
		if (ensure_stream(s, why, whylen) != 0)
			return 0;
		s->stream_ready = 1;
	}
	return 1;
}

static int
nats_send(void *arg, uint64_t seq, const char *rec, size_t len)
{
	struct sink_nats *s = arg;
	natsMsg *m = NULL;
	char id[80];
	natsStatus st;

	snprintf(id, sizeof(id), "%s:%" PRIu64, s->uuid, seq);
	if ((st = natsMsg_Create(&m, s->subject, NULL, rec, (int)len)) != NATS_OK ||
	    (st = natsMsgHeader_Set(m, "Nats-Msg-Id", id)) != NATS_OK ||
	    (st = js_PublishMsgAsync(s->js, &m, &s->po)) != NATS_OK) {
		natsMsg_Destroy(m); /* still ours when it was not taken */
		return -1;
	}
	return 0;
}

static void
nats_attach(void *arg, struct shipper *sh)
{
	((struct sink_nats *)arg)->sh = sh;
}

static void
nats_close(void *arg)
{
	struct sink_nats *s = arg;

	if (s->js != NULL)
		jsCtx_Destroy(s->js);
	free(s);
}

static const struct sink_ops nats_ops = {
    .name = "nats",
    .ready = nats_ready,
    .send = nats_send,
    .attach = nats_attach,
    .close = nats_close,
};

int
sink_nats_start(struct shipper **out, const struct config *cfg, struct fleet *fleet,
    const char *uuid, const struct shipper_options *base, char *err, size_t errlen)
{
	struct sink_nats *s = calloc(1, sizeof(*s));
	struct shipper_options opt = *base;
	*out = NULL;
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->fleet = fleet;
	snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
	snprintf(s->subject, sizeof(s->subject), "%s.conn.%s", cfg->fleet_subject_prefix, uuid);
	snprintf(
	    s->stream_subjects, sizeof(s->stream_subjects), "%s.conn.>", cfg->fleet_subject_prefix);
	snprintf(s->stream, sizeof(s->stream), "%s", cfg->fleet_stream);
	s->create_stream = cfg->fleet_create_stream;
	jsOptions_Init(&s->jo);
	s->jo.PublishAsync.MaxPending = SINK_NATS_WINDOW;
	s->jo.PublishAsync.AckHandler = on_ack;
	s->jo.PublishAsync.AckHandlerClosure = s;
	jsPubOptions_Init(&s->po);
	s->po.MaxWait = SINK_NATS_WAIT_MS;
	opt.ops = &nats_ops;
	opt.sink = s;
	opt.window = SINK_NATS_WINDOW;
	if (shipper_start(out, &opt, err, errlen) != 0) {
		free(s);
		return -1;
	}
	return 0;
}
