/*
 * shipper.c: one export sink's thread (shipper.h).
 */
#include "shipper.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "outbox.h"
#include "platform.h"
#include "store.h"

#define SHIPPER_BATCH       512  /* events read per query */
#define SHIPPER_SAVE_MS     100  /* the cursor is stored at most this often */
#define SHIPPER_STATS_MS    1000 /* oldest pending and lost are read this often */
#define SHIPPER_READY_MS    200  /* a sink not ready is asked again after this */
#define SHIPPER_BACKOFF_MS  500  /* after a failure, first pause; doubled up to ... */
#define SHIPPER_BACKOFF_MAX 30000

struct shipper {
	struct shipper_options opt;
	struct outbox *ob;
	pthread_t thread;
	int running;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
	int64_t stop_deadline_us;
	/* The records handed over and not yet acknowledged: a ring of
	 * increasing sequences, each with its done flag. */
	uint64_t *seqs;
	unsigned char *done;
	unsigned head, count;
	uint64_t read_pos; /* the newest event read (shipped or skipped) */
	uint64_t cursor;   /* every event up to it is acknowledged or skipped */
	int rewind;        /* a failure: hand everything after the cursor over again */
	int failing;       /* since the last failure, nothing was acknowledged */
	int was_connected; /* ever: only a real outage is worth a warning */
	int waiting;       /* the thread sleeps on wake: an acknowledgement signals it */
	int have_cursor;   /* the stored cursor was read (the database may not open) */
	char why[256];     /* the latest failure */

	/* stats, under lock */
	enum export_state state;
	uint64_t shipped;
	uint64_t lost;
	int64_t oldest_pending_us;
	int64_t down_since_us;
	char last_error[256];

	/* the thread's own */
	uint64_t saved;
	int64_t saved_at_us, stats_at_us;
	int save_failing;
	unsigned backoff_ms;
	char rec[ECS_RECORD_MAX];
};

/* ---- the ring ---- */

static uint64_t *
slot_seq(struct shipper *sh, unsigned i)
{
	return &sh->seqs[(sh->head + i) % sh->opt.window];
}

/* The ring index of seq, or -1 (a binary search: sequences increase). */
static long
find(struct shipper *sh, uint64_t seq)
{
	unsigned lo = 0, hi = sh->count;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (*slot_seq(sh, mid) < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sh->count && *slot_seq(sh, lo) == seq ? (long)lo : -1;
}

/* Drop acknowledged records from the front; the cursor follows. Under lock. */
static void
advance(struct shipper *sh)
{
	while (sh->count > 0 && sh->done[sh->head]) {
		sh->head = (sh->head + 1) % sh->opt.window;
		sh->count--;
	}
	sh->cursor = sh->count > 0 ? *slot_seq(sh, 0) - 1 : sh->read_pos;
}

void
shipper_ack(struct shipper *sh, uint64_t seq)
{
	long i;

	pthread_mutex_lock(&sh->lock);
	if ((i = find(sh, seq)) >= 0 && !sh->done[(sh->head + (unsigned)i) % sh->opt.window]) {
		sh->done[(sh->head + (unsigned)i) % sh->opt.window] = 1;
		sh->shipped++;
		sh->failing = 0;
		if (i == 0) {
			advance(sh);
			if (sh->waiting) /* a signal costs a wake-up: only for a sleeper */
				pthread_cond_signal(&sh->wake);
		}
	}
	pthread_mutex_unlock(&sh->lock);
}

void
shipper_ack_upto(struct shipper *sh, uint64_t seq)
{
	pthread_mutex_lock(&sh->lock);
	for (unsigned i = 0; i < sh->count && *slot_seq(sh, i) <= seq; i++) {
		unsigned at = (sh->head + i) % sh->opt.window;

		if (!sh->done[at]) {
			sh->done[at] = 1;
			sh->shipped++;
			sh->failing = 0;
		}
	}
	advance(sh);
	if (sh->waiting)
		pthread_cond_signal(&sh->wake);
	pthread_mutex_unlock(&sh->lock);
}

void
shipper_fail(struct shipper *sh, uint64_t seq, const char *why)
{
	pthread_mutex_lock(&sh->lock);
	/* A failure for a record already given up on (rewound) changes nothing. */
	if (seq == 0 || find(sh, seq) >= 0) {
		sh->rewind = 1;
		sh->failing = 1;
		snprintf(sh->why, sizeof(sh->why), "%s", why);
		pthread_cond_signal(&sh->wake);
	}
	pthread_mutex_unlock(&sh->lock);
}

/* ---- the thread ---- */

/*
 * Connected once the sink is ready and has not failed since it last
 * acknowledged something: a sink that takes records only to refuse them
 * (a full stream) stays retrying, its down time counting on.
 */
static void
set_state(struct shipper *sh, enum export_state st, const char *why)
{
	pthread_mutex_lock(&sh->lock);
	if (st == EXPORT_CONNECTED && sh->failing) {
		pthread_mutex_unlock(&sh->lock);
		return;
	}
	if (st == EXPORT_RETRYING && sh->state != EXPORT_RETRYING) {
		sh->down_since_us = clock_wall_us();
		log_warnx("export %s: cannot ship: %s", sh->opt.ops->name, why);
	} else if (st == EXPORT_CONNECTED && sh->state == EXPORT_RETRYING) {
		log_info(
		    "export %s: shipping%s", sh->opt.ops->name, sh->was_connected ? " again" : "");
	}
	if (st == EXPORT_CONNECTED)
		sh->was_connected = 1;
	if (st == EXPORT_CONNECTED)
		sh->down_since_us = 0;
	if (why != NULL && why[0] != '\0')
		snprintf(sh->last_error, sizeof(sh->last_error), "%s", why);
	sh->state = st;
	pthread_mutex_unlock(&sh->lock);
}

/* Store the cursor when it moved, at most every SHIPPER_SAVE_MS (always when final). */
static void
save_cursor(struct shipper *sh, int final)
{
	int64_t now = clock_wall_us();
	uint64_t cursor;

	pthread_mutex_lock(&sh->lock);
	cursor = sh->cursor;
	pthread_mutex_unlock(&sh->lock);
	if (cursor <= sh->saved || (!final && now - sh->saved_at_us < SHIPPER_SAVE_MS * 1000))
		return;
	sh->saved_at_us = now; /* a failure too waits SHIPPER_SAVE_MS for the next try */
	if (outbox_set_cursor(sh->ob, cursor) != 0) {
		if (!sh->save_failing) /* once per spell: the database's health says the rest */
			log_warnx("export %s: cannot store the cursor: %s", sh->opt.ops->name,
			    outbox_errmsg(sh->ob));
		sh->save_failing = 1;
		return;
	}
	sh->save_failing = 0;
	sh->saved = cursor;
}

/* Refresh what the stats read from the database, once a second. */
static void
refresh_stats(struct shipper *sh)
{
	int64_t now = clock_wall_us(), oldest = 0;
	uint64_t acked, lost, cursor;

	if (now - sh->stats_at_us < SHIPPER_STATS_MS * 1000)
		return;
	sh->stats_at_us = now;
	pthread_mutex_lock(&sh->lock);
	cursor = sh->cursor;
	pthread_mutex_unlock(&sh->lock);
	if (outbox_cursor(sh->ob, &acked, &lost) != 0 ||
	    outbox_first_after(sh->ob, cursor, &oldest) != 0)
		return;
	pthread_mutex_lock(&sh->lock);
	sh->lost = lost;
	sh->oldest_pending_us = oldest;
	pthread_mutex_unlock(&sh->lock);
}

struct batch {
	struct shipper *sh;
	int failed;
	unsigned sent;
};

static int
ship_one(void *arg, const struct conn_row *r)
{
	struct batch *b = arg;
	struct shipper *sh = b->sh;
	int len;

	if (!ecs_ships(r, sh->opt.include_open)) {
		pthread_mutex_lock(&sh->lock);
		sh->read_pos = r->seq;
		if (sh->count == 0)
			sh->cursor = r->seq;
		pthread_mutex_unlock(&sh->lock);
		return 0;
	}
	if ((len = ecs_format(r, sh->opt.agent, sh->rec, sizeof(sh->rec))) < 0) {
		log_warnx("export %s: event %llu does not fit a record: skipped", sh->opt.ops->name,
		    (unsigned long long)r->seq);
		pthread_mutex_lock(&sh->lock);
		sh->read_pos = r->seq;
		pthread_mutex_unlock(&sh->lock);
		return 0;
	}
	/* In the ring before it is sent: its acknowledgement may come at once. */
	pthread_mutex_lock(&sh->lock);
	sh->seqs[(sh->head + sh->count) % sh->opt.window] = r->seq;
	sh->done[(sh->head + sh->count) % sh->opt.window] = 0;
	sh->count++;
	sh->read_pos = r->seq;
	pthread_mutex_unlock(&sh->lock);
	if (sh->opt.ops->send(sh->opt.sink, r->seq, sh->rec, (size_t)len) != 0) {
		shipper_fail(sh, r->seq, "the sink did not take a record");
		b->failed = 1;
		return 1;
	}
	b->sent++;
	return 0;
}

/* Read and hand over up to room events after the read position. Returns how many were read. */
static int
ship_batch(struct shipper *sh, unsigned room)
{
	struct batch b = {sh, 0, 0};
	uint64_t from;
	int n;

	pthread_mutex_lock(&sh->lock);
	from = sh->read_pos;
	pthread_mutex_unlock(&sh->lock);
	n = outbox_read(sh->ob, from, room < SHIPPER_BATCH ? room : SHIPPER_BATCH, ship_one, &b);
	if (n < 0) {
		log_warnx(
		    "export %s: cannot read events: %s", sh->opt.ops->name, outbox_errmsg(sh->ob));
		return 0;
	}
	if (b.sent > 0 && sh->opt.ops->flush != NULL && sh->opt.ops->flush(sh->opt.sink) != 0)
		shipper_fail(sh, 0, "the sink could not flush");
	return n;
}

/* After a failure: forget what is in flight, read again from the cursor, after a pause. */
static void
rewind_now(struct shipper *sh)
{
	struct timespec until;
	char why[256];

	pthread_mutex_lock(&sh->lock);
	sh->rewind = 0;
	sh->head = sh->count = 0;
	sh->read_pos = sh->cursor;
	snprintf(why, sizeof(why), "%s", sh->why);
	pthread_mutex_unlock(&sh->lock);
	set_state(sh, EXPORT_RETRYING, why);
	clock_deadline_ms(&until, sh->backoff_ms);
	pthread_mutex_lock(&sh->lock);
	while (!sh->stopping && pthread_cond_timedwait(&sh->wake, &sh->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&sh->lock);
	sh->backoff_ms =
	    sh->backoff_ms * 2 > SHIPPER_BACKOFF_MAX ? SHIPPER_BACKOFF_MAX : sh->backoff_ms * 2;
}

static void
wait_ms(struct shipper *sh, unsigned ms)
{
	struct timespec until;

	clock_deadline_ms(&until, ms);
	pthread_mutex_lock(&sh->lock);
	/* While stopping, only acknowledgements are worth waiting for. */
	if (!sh->rewind && (!sh->stopping || sh->count > 0)) {
		sh->waiting = 1;
		pthread_cond_timedwait(&sh->wake, &sh->lock, &until);
		sh->waiting = 0;
	}
	pthread_mutex_unlock(&sh->lock);
}

/*
 * Where shipping starts: the stored cursor, or after what the sink already
 * holds (a file written to just before a crash): no duplicates. Returns 0,
 * or -1 while the database cannot be read (tried again by the thread).
 */
static int
load_cursor(struct shipper *sh)
{
	uint64_t acked, lost, held;

	if (outbox_cursor(sh->ob, &acked, &lost) != 0)
		return -1;
	held = sh->opt.ops->recover != NULL ? sh->opt.ops->recover(sh->opt.sink) : 0;
	if (held > acked) {
		log_info("export %s: the sink holds events up to %llu, the cursor said %llu",
		    sh->opt.ops->name, (unsigned long long)held, (unsigned long long)acked);
		acked = held;
	}
	pthread_mutex_lock(&sh->lock);
	sh->cursor = sh->read_pos = sh->saved = acked;
	sh->lost = lost;
	sh->have_cursor = 1;
	pthread_mutex_unlock(&sh->lock);
	return 0;
}

static void *
shipper_main(void *arg)
{
	struct shipper *sh = arg;
	char name[16], why[256];

	snprintf(name, sizeof(name), "ra-ship-%.7s", sh->opt.ops->name);
	platform_thread_name(name);
	(void)platform_thread_lower_priority();
	for (;;) {
		unsigned room, count;
		uint64_t read_pos;
		int stopping, rewind, more;

		pthread_mutex_lock(&sh->lock);
		stopping = sh->stopping;
		rewind = sh->rewind;
		count = sh->count;
		read_pos = sh->read_pos;
		room = sh->opt.window - sh->count;
		pthread_mutex_unlock(&sh->lock);
		save_cursor(sh, 0);
		refresh_stats(sh);
		more = store_last_sequence(sh->opt.store) > read_pos;
		/* Stopping still ships what was committed before the stop, until the deadline. */
		if (stopping &&
		    ((count == 0 && !more) || rewind || clock_wall_us() >= sh->stop_deadline_us))
			break;
		if (rewind) {
			rewind_now(sh);
			continue;
		}
		if (!sh->have_cursor && load_cursor(sh) != 0) {
			snprintf(why, sizeof(why), "cannot read the database: %s",
			    outbox_errmsg(sh->ob));
			set_state(sh, EXPORT_RETRYING, why);
			if (stopping)
				break;
			wait_ms(sh, SHIPPER_READY_MS * 5);
			continue;
		}
		if (!sh->opt.ops->ready(sh->opt.sink, why, sizeof(why))) {
			set_state(sh, EXPORT_RETRYING, why);
			if (stopping)
				break;
			wait_ms(sh, SHIPPER_READY_MS);
			continue;
		}
		set_state(sh, EXPORT_CONNECTED, NULL);
		if (room > 0 && more) {
			if (ship_batch(sh, room) > 0)
				sh->backoff_ms = SHIPPER_BACKOFF_MS;
			continue;
		}
		/* Idle: wake for an acknowledgement, or for new events. */
		if (count > 0 || stopping)
			wait_ms(sh, 50);
		else
			store_wait_sequence(sh->opt.store, read_pos, 500);
	}
	save_cursor(sh, 1);
	return NULL;
}

int
shipper_start(struct shipper **out, const struct shipper_options *opt, char *err, size_t errlen)
{
	struct shipper *sh = calloc(1, sizeof(*sh));
	pthread_condattr_t ca;

	*out = NULL;
	if (sh == NULL || opt->window == 0) {
		free(sh);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sh->opt = *opt;
	sh->backoff_ms = SHIPPER_BACKOFF_MS;
	sh->state = EXPORT_RETRYING; /* until the sink is first ready */
	sh->down_since_us = clock_wall_us();
	snprintf(sh->last_error, sizeof(sh->last_error), "starting");
	pthread_mutex_init(&sh->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sh->wake, &ca);
	pthread_condattr_destroy(&ca);
	sh->seqs = calloc(opt->window, sizeof(*sh->seqs));
	sh->done = calloc(opt->window, 1);
	if (sh->seqs == NULL || sh->done == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (outbox_open(opt->db_path, opt->ops->name, &sh->ob, err, errlen) != 0)
		goto fail;
	if (load_cursor(sh) != 0)
		log_warnx("export %s: cannot read its cursor yet: %s", opt->ops->name,
		    outbox_errmsg(sh->ob));
	if (opt->ops->attach != NULL)
		opt->ops->attach(opt->sink, sh);
	if (pthread_create(&sh->thread, NULL, shipper_main, sh) != 0) {
		snprintf(err, errlen, "cannot start the %s export thread", opt->ops->name);
		goto fail;
	}
	sh->running = 1;
	*out = sh;
	return 0;
fail:
	outbox_close(sh->ob);
	free(sh->seqs);
	free(sh->done);
	pthread_cond_destroy(&sh->wake);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
	return -1;
}

void
shipper_stop(struct shipper *sh, unsigned timeout_ms)
{
	if (sh == NULL)
		return;
	pthread_mutex_lock(&sh->lock);
	sh->stopping = 1;
	sh->stop_deadline_us = clock_wall_us() + (int64_t)timeout_ms * 1000;
	pthread_cond_signal(&sh->wake);
	pthread_mutex_unlock(&sh->lock);
	if (sh->running)
		pthread_join(sh->thread, NULL);
	if (sh->opt.ops->close != NULL)
		sh->opt.ops->close(sh->opt.sink);
	outbox_close(sh->ob);
	free(sh->seqs);
	free(sh->done);
	pthread_cond_destroy(&sh->wake);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}

void
shipper_get_stats(struct shipper *sh, struct export_sink_stats *out)
{
	uint64_t head = store_last_sequence(sh->opt.store);

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", sh->opt.ops->name);
	pthread_mutex_lock(&sh->lock);
	out->state = sh->state;
	out->acked = sh->cursor;
	out->pending = head > sh->cursor ? head - sh->cursor : 0;
	out->oldest_pending_us = out->pending > 0 ? sh->oldest_pending_us : 0;
	out->shipped = sh->shipped;
	out->lost = sh->lost;
	out->down_since_us = sh->down_since_us;
	snprintf(out->last_error, sizeof(out->last_error), "%s", sh->last_error);
	pthread_mutex_unlock(&sh->lock);
}
