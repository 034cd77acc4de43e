/*
 * watch.c: WatchConnections, the server-streaming method.
 *
 * Each watcher reads the committed event log (connection_events) from its
 * own position and is sent one message at a time: the next is read only when
 * gRPC has taken the previous one. A slow console therefore slows only
 * itself; the agent's history is on disk, not in a buffer that could wrap.
 *
 * Threads: the watch thread owns the list of watchers, reads the database
 * (its own read-only connection) and starts every batch. The completion-queue
 * thread only reports completions (flags under watch_lock). A watcher is
 * freed, by the watch thread, once no batch of its own is in flight.
 */
#include <errno.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "platform.h"
#include "query.h"
#include "rpc_internal.h"
#include "store.h"

#define WATCH_MAX      64 /* watchers at once */
#define WATCH_PREFETCH 32 /* events read per query */
#define WATCH_POLL_MS  20 /* how often an idle watcher checks for new events */

struct watch {
	struct watch *next;
	grpc_call *call;
	uint64_t cursor; /* sequence of the last event read */
	struct rpc_tag send_tag, close_tag, status_tag;
	int cancelled; /* RECV_CLOSE_ON_SERVER's out-parameter */
	/* under watch_lock */
	int sending, close_done, broken, status_sent, status_done, sent_md, cancel_sent;
	grpc_byte_buffer *inflight;
	grpc_slice status_details;
	grpc_byte_buffer *queue[WATCH_PREFETCH];
	unsigned qhead, qcount;
};

static int
queue_event(void *arg, const struct conn_row *r)
{
	struct watch *w = arg;
	Redirect__V1__ConnectionEvent ev = REDIRECT__V1__CONNECTION_EVENT__INIT;
	Redirect__V1__Connection *c = rpc_conn_new(r);

	if (c == NULL)
		return -ENOMEM;
	ev.sequence = r->seq;
	ev.connection = c;
	w->queue[(w->qhead + w->qcount) % WATCH_PREFETCH] = rpc_pack(&ev.base);
	w->qcount++;
	w->cursor = r->seq;
	rpc_conn_free(c);
	return w->qcount == WATCH_PREFETCH ? 1 : 0;
}

/* A stream's first batch carries its initial metadata. Returns the ops used (0 or 1). */
static size_t
first_batch_md(struct watch *w, grpc_op *ops)
{
	memset(ops, 0, 2 * sizeof(*ops));
	if (w->sent_md)
		return 0;
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	w->sent_md = 1;
	return 1;
}

static void
start_send(struct watch *w)
{
	grpc_op ops[2];
	size_t n = first_batch_md(w, ops);

	w->inflight = w->queue[w->qhead];
	w->qhead = (w->qhead + 1) % WATCH_PREFETCH;
	w->qcount--;
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = w->inflight;
	n++;
	if (grpc_call_start_batch(w->call, ops, n, &w->send_tag, NULL) == GRPC_CALL_OK)
		w->sending = 1;
	else
		w->broken = 1;
}

static void
start_status(struct watch *w, grpc_status_code code, const char *why)
{
	grpc_op ops[2];
	size_t n = first_batch_md(w, ops);

	w->status_details = grpc_slice_from_copied_string(why);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n].data.send_status_from_server.status_details = &w->status_details;
	n++;
	w->status_sent = 1;
	if (grpc_call_start_batch(w->call, ops, n, &w->status_tag, NULL) != GRPC_CALL_OK)
		w->status_done = w->broken = 1;
}

static void
watch_free(struct watch *w)
{
	while (w->qcount > 0) {
		grpc_byte_buffer_destroy(w->queue[w->qhead]);
		w->qhead = (w->qhead + 1) % WATCH_PREFETCH;
		w->qcount--;
	}
	grpc_slice_unref(w->status_details);
	grpc_call_unref(w->call);
	free(w);
}

/*
 * Nothing of its own in flight, and the call is over: safe to free. The
 * RECV_CLOSE batch started with the stream is in flight until close_done,
 * whatever else failed: a broken stream is cancelled (below) to end it.
 */
static int
watch_finished(const struct watch *w)
{
	return w->close_done && !w->sending && (!w->status_sent || w->status_done);
}

static void *
watch_main(void *arg)
{
	struct rpc_server *srv = arg;

	platform_thread_name("ra-watch");
	pthread_mutex_lock(&srv->watch_lock);
	for (;;) {
		struct watch **pw = &srv->watchers;
		struct timespec ts;

		while (*pw != NULL) {
			struct watch *w = *pw;

			if (watch_finished(w)) {
				*pw = w->next;
				srv->n_watchers--;
				watch_free(w);
				continue;
			}
			pw = &w->next;
			if (w->broken && !w->cancel_sent) {
				/* Ends the RECV_CLOSE batch too: then w may be freed. */
				grpc_call_cancel(w->call, NULL);
				w->cancel_sent = 1;
			}
			if (w->sending || w->close_done || w->broken || w->status_sent)
				continue;
			if (srv->stopping) {
				start_status(w, GRPC_STATUS_UNAVAILABLE, "agent stopping");
				continue;
			}
			if (w->qcount == 0 &&
			    store_last_sequence(srv->core->deps.store) > w->cursor) {
				int rc;

				/* Not under the lock: the completion-queue thread must
				 * not wait on a database read. Only this thread frees w,
				 * and only it touches the queue and the cursor. */
				pthread_mutex_unlock(&srv->watch_lock);
				rc = query_events_after(
				    srv->watch_q, w->cursor, WATCH_PREFETCH, queue_event, w);
				pthread_mutex_lock(&srv->watch_lock);
				if (rc < 0) {
					log_warnx("rpc: watch: cannot read events: %s",
					    query_errmsg(srv->watch_q));
					start_status(
					    w, GRPC_STATUS_INTERNAL, "cannot read the event log");
					continue;
				}
				if (w->close_done || w->broken)
					continue; /* ended meanwhile: freed on the next round */
			}
			if (w->qcount > 0)
				start_send(w);
		}
		pthread_cond_broadcast(&srv->watch_idle);
		if (srv->watch_exit && srv->watchers == NULL)
			break;
		/* With nobody watching, sleep until someone starts to: an idle agent
		 * should not wake 50 times a second. */
		if (srv->watchers == NULL && !srv->watch_exit) {
			pthread_cond_wait(&srv->watch_wake, &srv->watch_lock);
			continue;
		}
		clock_deadline_ms(&ts, WATCH_POLL_MS);
		pthread_cond_timedwait(&srv->watch_wake, &srv->watch_lock, &ts);
	}
	pthread_mutex_unlock(&srv->watch_lock);
	return NULL;
}

int
watch_start(struct rpc_server *srv, char *err, size_t errlen)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&srv->watch_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->watch_wake, &ca);
	pthread_cond_init(&srv->watch_idle, &ca);
	pthread_condattr_destroy(&ca);
	srv->watch_inited = 1;
	if (query_open(srv->cfg->db_path, &srv->watch_q, err, errlen) != 0)
		return -1;
	if (pthread_create(&srv->watch_thread, NULL, watch_main, srv) != 0) {
		snprintf(err, errlen, "cannot start the watch thread");
		return -1;
	}
	srv->watch_running = 1;
	return 0;
}

grpc_status_code
watch_begin(
    struct rpc_server *srv, grpc_call *call, const ProtobufCMessage *req, char *msg, size_t msglen)
{
	const Redirect__V1__WatchConnectionsRequest *rq =
	    (const Redirect__V1__WatchConnectionsRequest *)req;
	uint64_t head = store_last_sequence(srv->core->deps.store);
	struct watch *w;
	grpc_op op;
	int64_t oldest;

	if (rq->after_sequence > head) {
		snprintf(msg, msglen, "after_sequence %llu is ahead of the newest event (%llu)",
		    (unsigned long long)rq->after_sequence, (unsigned long long)head);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	/* With none kept, the next event will be head + 1: all before it are gone. */
	if ((oldest = query_oldest_event(srv->q)) == 0)
		oldest = (int64_t)head + 1;
	if (rq->after_sequence > 0 && oldest > 0 && rq->after_sequence + 1 < (uint64_t)oldest) {
		snprintf(msg, msglen,
		    "events %llu to %lld were pruned (retention): resume from %lld, or read the "
		    "record with ListConnections",
		    (unsigned long long)rq->after_sequence + 1, (long long)oldest - 1,
		    (long long)oldest - 1);
		return GRPC_STATUS_OUT_OF_RANGE;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	w->call = call;
	w->cursor = rq->after_sequence > 0 ? rq->after_sequence : head;
	w->send_tag = (struct rpc_tag){RPC_TAG_WATCH_SEND, w};
	w->close_tag = (struct rpc_tag){RPC_TAG_WATCH_CLOSE, w};
	w->status_tag = (struct rpc_tag){RPC_TAG_WATCH_STATUS, w};
	w->status_details = grpc_empty_slice();

	pthread_mutex_lock(&srv->watch_lock);
	if (srv->n_watchers >= WATCH_MAX || srv->stopping) {
		pthread_mutex_unlock(&srv->watch_lock);
		free(w);
		snprintf(msg, msglen, srv->stopping ? "agent stopping" : "too many watchers (%d)",
		    WATCH_MAX);
		return srv->stopping ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	/* Its own batch: completes when the client goes away (or the call ends). */
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &w->cancelled;
	if (grpc_call_start_batch(call, &op, 1, &w->close_tag, NULL) != GRPC_CALL_OK) {
		pthread_mutex_unlock(&srv->watch_lock);
		free(w);
		snprintf(msg, msglen, "cannot start the stream");
		return GRPC_STATUS_INTERNAL;
	}
	w->next = srv->watchers;
	srv->watchers = w;
	srv->n_watchers++;
	pthread_cond_signal(&srv->watch_wake);
	pthread_mutex_unlock(&srv->watch_lock);
	return GRPC_STATUS_OK;
}

void
watch_on_tag(struct rpc_server *srv, struct rpc_tag *t, int success)
{
	struct watch *w = t->arg;

	pthread_mutex_lock(&srv->watch_lock);
	switch (t->kind) {
	case RPC_TAG_WATCH_SEND:
		w->sending = 0;
		grpc_byte_buffer_destroy(w->inflight);
		w->inflight = NULL;
		if (!success)
			w->broken = 1;
		break;
	case RPC_TAG_WATCH_CLOSE:
		w->close_done = 1;
		break;
	case RPC_TAG_WATCH_STATUS:
		w->status_done = 1;
		break;
	default:
		break;
	}
	pthread_cond_signal(&srv->watch_wake);
	pthread_mutex_unlock(&srv->watch_lock);
}

void
watch_stop_begin(struct rpc_server *srv)
{
	struct timespec ts;

	if (!srv->watch_running)
		return;
	clock_deadline_ms(&ts, 1000);
	pthread_mutex_lock(&srv->watch_lock);
	pthread_cond_signal(&srv->watch_wake);
	/* Let idle streams end with a status before gRPC cancels the rest. */
	for (;;) {
		int pending = 0;

		for (struct watch *w = srv->watchers; w != NULL; w = w->next)
			if (!w->status_sent && !w->close_done && !w->broken)
				pending = 1;
		if (!pending ||
		    pthread_cond_timedwait(&srv->watch_idle, &srv->watch_lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&srv->watch_lock);
}

void
watch_stop_end(struct rpc_server *srv)
{
	if (srv->watch_running) {
		pthread_mutex_lock(&srv->watch_lock);
		srv->watch_exit = 1;
		pthread_cond_signal(&srv->watch_wake);
		pthread_mutex_unlock(&srv->watch_lock);
		pthread_join(srv->watch_thread, NULL);
	}
	query_close(srv->watch_q);
	srv->watch_q = NULL;
	if (srv->watch_inited) {
		pthread_cond_destroy(&srv->watch_wake);
		pthread_cond_destroy(&srv->watch_idle);
		pthread_mutex_destroy(&srv->watch_lock);
	}
}
