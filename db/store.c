#include "store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "platform.h"
#include "retention.h"
#include "schema.h"

#define STORE_BATCH_MAX         4096
#define STORE_INDEX_SLOTS       8192 /* power of two, >= 2 * STORE_BATCH_MAX */
#define STORE_LINGER_MS         25   /* least time between commits while busy */
#define STORE_YIELD_EVERY       16   /* rows written between yields to the event loops */
#define STORE_PRUNE_INTERVAL_MS 60000
#define STORE_PRUNE_BATCH       1000
#define STORE_CHECK_MS          1000 /* the file still there? writable again? */

struct store {
	struct store_options opt; /* path and machine_id: copies, owned */
	char machine_id[128];
	sqlite3
	    *db; /* used by the writer thread only, once it runs; NULL: none (see open_or_renew) */
	struct platform_file_id file_id; /* the file db is open on */
	int opened_once;                 /* numbering and identity come from a file */
	sqlite3_stmt *upsert;
	sqlite3_stmt *event;
	_Atomic uint64_t last_seq; /* the newest committed event */
	pthread_t writer;
	int writer_running;
	struct retention_policy retention; /* days and max_rows: the two below */
	_Atomic unsigned retention_days;   /* a reload may change them */
	_Atomic uint64_t retention_max_rows;
	unsigned prune_interval_ms;

	_Atomic uint64_t next_id;
	char uuid[STORE_UUID_LEN + 1];

	/* The queue: a ring of whole records under one short-held lock. */
	pthread_mutex_t lock;
	pthread_cond_t wake;      /* writer: work or stop */
	pthread_cond_t committed; /* store_flush waiters */
	struct conn_record *ring;
	unsigned cap, head, count;
	/* The writer's own: allocated by store_open, so the thread never runs out. */
	struct conn_record *batch;
	unsigned char *latest;
	int32_t *slots;
	int stopping;
	int writer_idle; /* the writer sleeps on an empty queue: wake it */
	/* Counted refusals waiting for the next commit (under lock), and the writer's copy. */
	struct store_refusal *refusals, *refusals_w;
	size_t n_refusals;
	sqlite3_stmt *refusal;

	/* Counters; those the writer alone changes are still read by others. */
	uint64_t submitted;  /* under lock */
	uint64_t settled;    /* committed or dropped, under lock */
	uint64_t dropped;    /* under lock */
	uint64_t high_water; /* under lock */
	_Atomic uint64_t rows_written;
	_Atomic uint64_t batches;
	_Atomic uint64_t rows_pruned;
	uint64_t interrupted_at_start;
	time_t last_drop_log;
	time_t last_lost_log; /* the writer's */
	/* What health reports, under lock: */
	char incident[STORE_PROBLEM_LEN];    /* a database lost: until the agent restarts */
	char write_error[STORE_PROBLEM_LEN]; /* cannot write now: until a commit succeeds */
};

static const char upsert_sql[] =
    "INSERT INTO connections (id, opened_at_us, closed_at_us, family, client_addr, client_port,"
    " orig_dst_addr, orig_dst_port, orig_dst_bin, upstream_local_addr, upstream_local_port,"
    " redirect_state, records_mark, verdict, state, bytes_up, bytes_down, connect_us,"
    " close_reason, error, uid, pid, redirect_records, redirect_context, policy_version,"
    " rule_id, server_name, exe, server_name_source)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
    " ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)"
    " ON CONFLICT (id) DO UPDATE SET"
    " closed_at_us = excluded.closed_at_us,"
    " upstream_local_addr = excluded.upstream_local_addr,"
    " upstream_local_port = excluded.upstream_local_port,"
    " verdict = excluded.verdict, state = excluded.state,"
    " bytes_up = excluded.bytes_up, bytes_down = excluded.bytes_down,"
    " connect_us = excluded.connect_us, close_reason = excluded.close_reason,"
    " error = excluded.error,"
    " redirect_records = coalesce(excluded.redirect_records, redirect_records),"
    " redirect_context = coalesce(excluded.redirect_context, redirect_context),"
    " policy_version = coalesce(excluded.policy_version, policy_version),"
    " rule_id = coalesce(excluded.rule_id, rule_id),"
    " server_name = coalesce(excluded.server_name, server_name),"
    " server_name_source = coalesce(excluded.server_name_source, server_name_source),"
    " exe = coalesce(excluded.exe, exe),"
    " uid = excluded.uid, pid = excluded.pid";

static const char refusal_sql[] =
    "INSERT INTO refused_connections (at_us, uid, reason, count) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (at_us, uid, reason) DO UPDATE SET count = count + excluded.count";

static const char event_sql[] =
    "INSERT INTO connection_events (conn_id, at_us, state, closed_at_us, upstream_local_addr,"
    " upstream_local_port, verdict, bytes_up, bytes_down, connect_us, close_reason, error)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

static void
bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void
bind_blob_or_null(sqlite3_stmt *st, int i, const void *p, size_t len)
{
	if (len > 0)
		sqlite3_bind_blob(st, i, p, (int)len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/*
 * buf must outlive the statement's step: the text is bound without a copy
 * (SQLITE_STATIC), which spares a malloc and a free per address.
 */
static void
bind_endpoint(sqlite3_stmt *st, int iaddr, int iport, const struct endpoint *e, char *buf)
{
	if (e->family == 0) {
		sqlite3_bind_null(st, iaddr);
		sqlite3_bind_null(st, iport);
		return;
	}
	sqlite3_bind_text(st, iaddr, endpoint_format_addr(e, buf, ADDR_STRLEN), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, iport, e->port);
}

static int
write_one(struct store *s, const struct conn_record *r)
{
	const struct conn_detail *d = r->detail;
	sqlite3_stmt *st = s->upsert;
	char client[ADDR_STRLEN], dst[ADDR_STRLEN], local[ADDR_STRLEN];
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->id);
	sqlite3_bind_int64(st, 2, r->opened_at_us);
	if (r->closed_at_us != 0)
		sqlite3_bind_int64(st, 3, r->closed_at_us);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int(st, 4, r->client.family == AF_INET6 ? 6 : 4);
	bind_endpoint(st, 5, 6, &r->client, client);
	bind_endpoint(st, 7, 8, &r->orig_dst, dst);
	if (r->orig_dst.family != 0)
		sqlite3_bind_blob(
		    st, 9, r->orig_dst.addr, r->orig_dst.family == AF_INET ? 4 : 16, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 9);
	bind_endpoint(st, 10, 11, &r->upstream_local, local);
	sqlite3_bind_text(st, 12, redirect_state_name(r->redirect_state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 13, r->records_mark);
	sqlite3_bind_text(st, 14, conn_verdict_name(r->verdict), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 15, conn_state_name(r->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 16, (sqlite3_int64)r->bytes_up);
	sqlite3_bind_int64(st, 17, (sqlite3_int64)r->bytes_down);
	if (r->connect_us >= 0)
		sqlite3_bind_int64(st, 18, r->connect_us);
	else
		sqlite3_bind_null(st, 18);
	bind_text_or_null(st, 19, r->close_reason);
	bind_text_or_null(st, 20, r->error);
	if (r->uid >= 0)
		sqlite3_bind_int(st, 21, r->uid);
	else
		sqlite3_bind_null(st, 21);
	if (r->pid >= 0)
		sqlite3_bind_int(st, 22, r->pid);
	else
		sqlite3_bind_null(st, 22);
	if (d != NULL) {
		bind_blob_or_null(st, 23, d->records, d->records_len);
		bind_blob_or_null(st, 24, d->context, d->context_len);
		if (d->policy_version != 0)
			sqlite3_bind_int64(st, 25, (sqlite3_int64)d->policy_version);
		bind_text_or_null(st, 26, d->rule_id);
		bind_text_or_null(st, 27, d->server_name);
		bind_text_or_null(st, 28, d->exe);
		bind_text_or_null(st, 29, d->server_name_source);
	}
	rc = sqlite3_step(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The committed state as a watch-stream event; its rowid is the sequence number. */
static int
write_event(struct store *s, const struct conn_record *r, int64_t at_us)
{
	sqlite3_stmt *st = s->event;
	char local[ADDR_STRLEN];
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->id);
	sqlite3_bind_int64(st, 2, at_us);
	sqlite3_bind_text(st, 3, conn_state_name(r->state), -1, SQLITE_STATIC);
	if (r->closed_at_us != 0)
		sqlite3_bind_int64(st, 4, r->closed_at_us);
	else
		sqlite3_bind_null(st, 4);
	bind_endpoint(st, 5, 6, &r->upstream_local, local);
	sqlite3_bind_text(st, 7, conn_verdict_name(r->verdict), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)r->bytes_up);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)r->bytes_down);
	if (r->connect_us >= 0)
		sqlite3_bind_int64(st, 10, r->connect_us);
	else
		sqlite3_bind_null(st, 10);
	bind_text_or_null(st, 11, r->close_reason);
	bind_text_or_null(st, 12, r->error);
	rc = sqlite3_step(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Every event carries the whole record, so when a batch holds several events
 * of one connection (opened, relaying, closed within a few milliseconds) only
 * the last needs writing. latest[] maps a batch index to whether it is the
 * last event of its id: an open-addressing table keyed by id.
 */
struct conn_detail *
conn_detail_new(void)
{
	return calloc(1, sizeof(struct conn_detail));
}

void
conn_detail_free(struct conn_detail *d)
{
	if (d == NULL)
		return;
	free(d->rule_id);
	free(d->server_name);
	free(d->exe);
	free(d);
}

/* Move what older knows and newer does not into newer; older is freed. */
static void
detail_merge(struct conn_detail **newer, struct conn_detail *older)
{
	struct conn_detail *n = *newer;

	if (n == NULL) {
		*newer = older;
		return;
	}
	if (n->records_len == 0 && older->records_len > 0) {
		memcpy(n->records, older->records, older->records_len);
		n->records_len = older->records_len;
	}
	if (n->context_len == 0 && older->context_len > 0) {
		memcpy(n->context, older->context, older->context_len);
		n->context_len = older->context_len;
	}
	if (n->policy_version == 0)
		n->policy_version = older->policy_version;
#define TAKE(f)                                                                                    \
	if (n->f == NULL) {                                                                        \
		n->f = older->f;                                                                   \
		older->f = NULL;                                                                   \
	}
	TAKE(rule_id)
	TAKE(server_name)
	TAKE(exe)
#undef TAKE
	if (n->server_name_source == NULL)
		n->server_name_source = older->server_name_source;
	conn_detail_free(older);
}

static void
mark_latest(struct conn_record *recs, unsigned n, unsigned char *latest, int32_t *slots)
{
	for (unsigned i = 0; i < STORE_INDEX_SLOTS; i++)
		slots[i] = -1;
	for (unsigned i = 0; i < n; i++) {
		unsigned h =
		    (unsigned)(recs[i].id * 0x9E3779B97F4A7C15ull >> 51) & (STORE_INDEX_SLOTS - 1);

		while (slots[h] >= 0 && recs[slots[h]].id != recs[i].id)
			h = (h + 1) & (STORE_INDEX_SLOTS - 1);
		if (slots[h] >= 0) {
			/* Only the last event is written: it takes the earlier's detail. */
			latest[slots[h]] = 0;
			if (recs[slots[h]].detail != NULL) {
				detail_merge(&recs[i].detail, recs[slots[h]].detail);
				recs[slots[h]].detail = NULL;
			}
		}
		slots[h] = (int32_t)i;
		latest[i] = 1;
	}
}

/* A database SQLite cannot read as one: moved aside for forensics, never used again. */
static int
is_damage(int code)
{
	code &= 0xff;
	return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

/* What health reports (which: incident or write_error); "" clears. Thread-safe. */
static void
set_problem(struct store *s, char *which, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->lock);
	va_start(ap, fmt);
	vsnprintf(which, STORE_PROBLEM_LEN, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&s->lock);
}

/* Events the writer could not commit: said at most once a second. */
static void
log_drop(struct store *s, unsigned n, const char *why)
{
	time_t now = time(NULL);

	if (now == s->last_lost_log)
		return;
	s->last_lost_log = now;
	log_warnx("store: %u events not recorded: %s", n, why);
}

/* The file's life, below with store_open: the writer calls them. */
static void damaged(struct store *s);
static void open_or_renew(struct store *s, int at_start);
static void check_file(struct store *s);

/* The counted refusals, in the batch's transaction. */
static int
write_refusals(struct store *s, const struct store_refusal *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st = s->refusal;

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, r[i].at_us);
		sqlite3_bind_int(st, 2, r[i].uid);
		sqlite3_bind_text(st, 3, r[i].reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)r[i].count);
		if (sqlite3_step(st) != SQLITE_DONE)
			return -1;
	}
	return 0;
}

/* Commit one batch. On a database error the whole batch counts as dropped. */
static void
write_batch(struct store *s, struct conn_record *recs, unsigned n, unsigned char *latest,
    int32_t *slots, size_t n_refusals)
{
	int ok = s->db != NULL && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	int64_t at = clock_wall_us();
	uint64_t seq = 0;

	if (ok && n_refusals > 0)
		ok = write_refusals(s, s->refusals_w, n_refusals) == 0;
	mark_latest(recs, n, latest, slots);
	for (unsigned i = 0, written = 0; ok && i < n; i++) {
		if (!latest[i])
			continue;
		ok = write_one(s, &recs[i]) == 0 && write_event(s, &recs[i], at) == 0;
		/* Sharing a core with an event loop, let it run between slices of a
		 * large batch rather than wait for the whole of it. */
		if (++written % STORE_YIELD_EVERY == 0)
			sched_yield();
	}
	if (ok && n > 0)
		seq = (uint64_t)sqlite3_last_insert_rowid(s->db);
	if (ok)
		ok = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
	if (ok && n > 0)
		atomic_store_explicit(&s->last_seq, seq, memory_order_release);
	for (unsigned i = 0; i < n; i++) {
		conn_detail_free(recs[i].detail);
		recs[i].detail = NULL;
	}

	/* Counters first, then settled: a store_flush() that returns sees them. */
	if (ok) {
		atomic_fetch_add_explicit(&s->rows_written, n, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->batches, 1, memory_order_relaxed);
	}
	pthread_mutex_lock(&s->lock);
	s->settled += n;
	if (!ok)
		s->dropped += n;
	pthread_cond_broadcast(&s->committed);
	pthread_mutex_unlock(&s->lock);

	if (ok && s->write_error[0] != '\0') {
		log_info("store: the database can be written again");
		set_problem(s, s->write_error, "%s", "");
	}
	if (!ok && s->db != NULL) {
		int code = sqlite3_extended_errcode(s->db);

		log_drop(s, n, sqlite3_errmsg(s->db));
		set_problem(s, s->write_error, "the database cannot be written: %.300s",
		    sqlite3_errmsg(s->db));
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		if (is_damage(code)) /* damaged under us: aside, and a new one */
			damaged(s);
	} else if (!ok) {
		log_drop(s, n, s->write_error);
	}
}

/* The retention policy as it is now (store_set_retention may change it). */
static struct retention_policy
retention_now(struct store *s)
{
	struct retention_policy p = s->retention;

	p.days = atomic_load_explicit(&s->retention_days, memory_order_relaxed);
	p.max_rows = atomic_load_explicit(&s->retention_max_rows, memory_order_relaxed);
	return p;
}

/* How many events between two prunes under load, for max_rows. */
static uint64_t
prune_every_for(uint64_t max_rows)
{
	/* Often enough to hold the caps, seldom enough that finding the cap's
	 * row (a walk of max_rows index entries) costs little. */
	return max_rows / 100 > STORE_PRUNE_BATCH ? max_rows / 100 : STORE_PRUNE_BATCH;
}

/*
 * The writer: take everything queued (up to a batch) under the lock, write it
 * outside the lock, repeat. The first event after a quiet spell is committed
 * at once; while busy, commits are at least STORE_LINGER_MS apart (unless the
 * queue is half full), so one transaction carries many events instead of one
 * each. Pruning runs one small batch at a time, only when no event waits.
 */
static void *
writer_main(void *arg)
{
	struct store *s = arg;
	struct conn_record *batch = s->batch;
	unsigned char *latest = s->latest;
	int32_t *slots = s->slots;
	struct timespec next_prune, next_commit, next_check;
	int pruning = 1; /* prune once at start */
	uint64_t since_prune = 0;

	platform_thread_name("ra-db-writer");
	/*
	 * Where the writer shares a core with an event loop, the loop should win:
	 * a commit can wait some milliseconds, a client's packet should not.
	 */
	if (platform_thread_lower_priority() != 0)
		log_warn("store: cannot lower the writer thread's priority");
	clock_deadline_ms(&next_prune, s->prune_interval_ms);
	clock_deadline_ms(&next_commit, 0);
	clock_deadline_ms(&next_check, STORE_CHECK_MS);

	for (;;) {
		unsigned n = 0;
		size_t n_refusals;
		int stop;

		pthread_mutex_lock(&s->lock);
		for (;;) {
			if (s->stopping || s->count >= s->cap / 2)
				break;
			if (s->count > 0 || s->n_refusals > 0) {
				if (clock_deadline_passed(&next_commit))
					break;
				pthread_cond_timedwait(&s->wake, &s->lock, &next_commit);
				continue;
			}
			if (pruning || clock_deadline_passed(&next_check))
				break;
			s->writer_idle = 1;
			int r = pthread_cond_timedwait(&s->wake, &s->lock,
			    clock_before(&next_check, &next_prune) ? &next_check : &next_prune);
			s->writer_idle = 0;
			if (r == ETIMEDOUT)
				break;
		}
		while (n < STORE_BATCH_MAX && s->count > 0) {
			batch[n++] = s->ring[s->head];
			s->head = (s->head + 1) % s->cap;
			s->count--;
		}
		/* The refusals counted so far go with this batch. */
		n_refusals = s->n_refusals;
		if (n_refusals > 0) {
			struct store_refusal *t = s->refusals_w;

			s->refusals_w = s->refusals;
			s->refusals = t;
			s->n_refusals = 0;
		}
		stop = s->stopping && s->count == 0;
		pthread_mutex_unlock(&s->lock);

		if (clock_deadline_passed(&next_check)) {
			if (s->db == NULL)
				open_or_renew(s, 0);
			else
				check_file(s);
			clock_deadline_ms(&next_check, STORE_CHECK_MS);
		}
		if (n > 0 || n_refusals > 0) {
			clock_deadline_ms(&next_commit, STORE_LINGER_MS);
			write_batch(s, batch, n, latest, slots, n_refusals);
			/*
			 * Under load the writer is never idle: prune as it inserts,
			 * three times the events written since the last prune, so
			 * that the caps hold whatever the rate (not only in quiet
			 * moments; max_rows = 1000 once grew to 599,561 rows).
			 */
			since_prune += n;
			if (since_prune >= prune_every_for(atomic_load_explicit(
					       &s->retention_max_rows, memory_order_relaxed)) &&
			    s->db != NULL) {
				struct retention_policy p = retention_now(s);
				int d;

				p.batch = (unsigned)(3 * since_prune);
				if ((d = retention_prune_batch(s->db, &p, clock_wall_us())) > 0)
					atomic_fetch_add_explicit(
					    &s->rows_pruned, (uint64_t)d, memory_order_relaxed);
				since_prune = 0;
			}
		} else if (!stop) {
			if (!pruning && clock_deadline_passed(&next_prune))
				pruning = 1;
			if (pruning && s->db == NULL)
				pruning = 0;
			if (pruning) {
				struct retention_policy p = retention_now(s);
				int d = retention_prune_batch(s->db, &p, clock_wall_us());

				if (d > 0)
					atomic_fetch_add_explicit(
					    &s->rows_pruned, (uint64_t)d, memory_order_relaxed);
				else if (d < 0)
					log_warnx(
					    "store: pruning failed: %s", sqlite3_errmsg(s->db));
				if (d <= 0) {
					pruning = 0;
					clock_deadline_ms(&next_prune, s->prune_interval_ms);
				}
			}
		}
		if (stop && n == 0 && n_refusals == 0)
			break;
	}
	return NULL;
}

static int
make_parent_dir(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = NULL;
	for (char *p = dir; *p != '\0'; p++)
		if (strchr(PLATFORM_PATH_SEPS, *p) != NULL)
			slash = p;
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p != '\0'; p++) {
		char sep = *p;

		if (strchr(PLATFORM_PATH_SEPS, sep) == NULL)
			continue;
		*p = '\0';
		if (platform_mkdir(dir, 0755) != 0 && errno != EEXIST)
			goto fail;
		*p = sep;
	}
	if (platform_mkdir(dir, 0750) != 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot create %.300s: %s", dir, err_str(errno));
	return -1;
}

static int
exec_or_err(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "%s: %s", sql, msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

/*
 * Rows a crash left open: their process is gone, so are their sockets.
 * Each becomes interrupted, with an event of its own, so that the watch
 * stream and the export see the connection's end like any other.
 */
static int
recover_interrupted(struct store *s, char *err, size_t errlen)
{
	static const char *const sql[] = {
	    "INSERT INTO connection_events (conn_id, at_us, state, closed_at_us,"
	    " upstream_local_addr, upstream_local_port, verdict, bytes_up, bytes_down, connect_us,"
	    " close_reason, error)"
	    " SELECT id, ?4, ?1, closed_at_us, upstream_local_addr, upstream_local_port, verdict,"
	    " bytes_up, bytes_down, connect_us, ?5, error"
	    " FROM connections WHERE state IN (?2, ?3) ORDER BY id",
	    "UPDATE connections SET state = ?1, close_reason = ?5 WHERE state IN (?2, ?3)",
	};
	int64_t now = clock_wall_us();

	if (exec_or_err(s->db, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *st;
		int rc;

		if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, conn_state_name(CONN_INTERRUPTED), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, conn_state_name(CONN_OPEN), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, conn_state_name(CONN_RELAYING), -1, SQLITE_STATIC);
		if (i == 0)
			sqlite3_bind_int64(st, 4, now);
		sqlite3_bind_text(
		    st, 5, "agent stopped before the connection closed", -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			goto fail;
		if (i == 1)
			s->interrupted_at_start = (uint64_t)sqlite3_changes(s->db);
	}
	return exec_or_err(s->db, "COMMIT", err, errlen);
fail:
	snprintf(err, errlen, "recovering interrupted rows: %s", sqlite3_errmsg(s->db));
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* One integer from a query with no parameters; dflt when it has no row or is NULL. */
static int
query_int(sqlite3 *db, const char *sql, int64_t dflt, int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
		   ? sqlite3_column_int64(st, 0)
		   : dflt;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Where numbering goes on: connection ids after the highest ever used
 * (retention keeps the highest it pruned in agent_meta), sequences after
 * the highest ever given (AUTOINCREMENT keeps it in sqlite_sequence).
 * Neither is ever handed out twice, however much retention prunes, nor
 * when a new file replaces a lost one: it continues from the old numbers.
 */
static int
load_numbering(struct store *s, char *err, size_t errlen)
{
	int64_t max_id, pruned, seq;
	uint64_t next, last = atomic_load(&s->last_seq);

	if (query_int(s->db, "SELECT MAX(id) FROM connections", 0, &max_id) != 0 ||
	    query_int(s->db,
		"SELECT CAST(value AS INTEGER) FROM agent_meta WHERE key = 'pruned_id'", 0,
		&pruned) != 0 ||
	    query_int(s->db, "SELECT seq FROM sqlite_sequence WHERE name = 'connection_events'", 0,
		&seq) != 0)
		goto dberr;
	next = (uint64_t)(max_id > pruned ? max_id : pruned) + 1;
	if (next > atomic_load(&s->next_id))
		atomic_store(&s->next_id, next);
	if ((uint64_t)seq >= last) {
		atomic_store(&s->last_seq, (uint64_t)seq);
		return 0;
	}
	/* A file newer than the numbers: its first sequence follows the old file's last. */
	{
		char sql[160];

		snprintf(sql, sizeof(sql),
		    "DELETE FROM sqlite_sequence WHERE name = 'connection_events';"
		    " INSERT INTO sqlite_sequence (name, seq) VALUES ('connection_events', %llu)",
		    (unsigned long long)last);
		if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto dberr;
	}
	return 0;
dberr:
	snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
	return -1;
}

/* A version 4 UUID from SQLite's randomness (the OS's: /dev/urandom, BCryptGenRandom). */
static void
new_uuid(char out[STORE_UUID_LEN + 1])
{
	uint8_t b[16];

	sqlite3_randomness(sizeof(b), b);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, STORE_UUID_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	    b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
	    b[15]);
}

static int
meta_get(sqlite3 *db, const char *key, char *out, size_t len)
{
	sqlite3_stmt *st;
	int rc;

	out[0] = '\0';
	if (sqlite3_prepare_v2(db, "SELECT value FROM agent_meta WHERE key = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
meta_set(sqlite3 *db, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
		"INSERT INTO agent_meta (key, value) VALUES (?1, ?2)"
		" ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * The agent's UUID: made at the first start and kept. It is bound to the
 * machine id it was made on: a disk image cloned to another machine (whose
 * machine id the imaging tool reset) gets a new one at its first start. A
 * file started while the agent runs (the old one lost) is given the UUID in
 * use: the agent stays the same agent.
 */
static int
load_identity(struct store *s, char *err, size_t errlen)
{
	const char *machine_id = s->opt.machine_id;
	char stored[STORE_UUID_LEN + 1], made_on[128];

	if (meta_get(s->db, "uuid", stored, sizeof(stored)) != 0 ||
	    meta_get(s->db, "machine_id", made_on, sizeof(made_on)) != 0)
		goto dberr;
	if (s->uuid[0] != '\0') { /* in use already */
		if (strcmp(stored, s->uuid) != 0 &&
		    (meta_set(s->db, "uuid", s->uuid) != 0 ||
			meta_set(s->db, "machine_id", machine_id) != 0))
			goto dberr;
		return 0;
	}
	if (stored[0] != '\0' && (machine_id[0] == '\0' || strcmp(made_on, machine_id) == 0)) {
		memcpy(s->uuid, stored, sizeof(s->uuid));
		return 0;
	}
	if (stored[0] != '\0')
		log_warnx("this machine's id is not the one agent %s was made on (a cloned "
			  "image?): taking a new agent UUID",
		    stored);
	new_uuid(stored);
	if (meta_set(s->db, "uuid", stored) != 0 || meta_set(s->db, "machine_id", machine_id) != 0)
		goto dberr;
	memcpy(s->uuid, stored, sizeof(s->uuid));
	log_info("agent UUID %s (new)", s->uuid);
	return 0;
dberr:
	snprintf(err, errlen, "agent identity: %s", sqlite3_errmsg(s->db));
	return -1;
}

/*
 * With no database to read it from, the UUID of the file that cannot be
 * written (read-only, it may still be readable), else a new one for now.
 */
static void
identity_without_file(struct store *s)
{
	sqlite3 *db;
	char err[256];

	if (db_open(s->opt.path, 1, 0, 1000, &db, err, sizeof(err)) == 0) {
		(void)meta_get(db, "uuid", s->uuid, sizeof(s->uuid));
		sqlite3_close(db);
	}
	if (strlen(s->uuid) != STORE_UUID_LEN) {
		new_uuid(s->uuid);
		log_warnx("agent UUID %s, for now: the database cannot be read", s->uuid);
	}
}

/* Every configured sink has a cursor row, so retention never prunes before it exists. */
static int
create_cursors(struct store *s, char *err, size_t errlen)
{
	const struct store_options *opt = &s->opt;

	for (size_t i = 0; i < opt->n_sinks; i++) {
		sqlite3_stmt *st;
		int rc;

		if (sqlite3_prepare_v2(s->db,
			"INSERT OR IGNORE INTO export_cursors (sink) VALUES (?1)", -1, &st,
			NULL) != SQLITE_OK) {
			snprintf(err, errlen, "export cursors: %s", sqlite3_errmsg(s->db));
			return -1;
		}
		sqlite3_bind_text(st, 1, opt->sinks[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			snprintf(err, errlen, "export cursors: %s", sqlite3_errmsg(s->db));
			return -1;
		}
	}
	return 0;
}

/* Something other than a regular file (a directory, a device) at path. */
static int
not_a_file(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && !S_ISREG(sb.st_mode);
}

/*
 * Move the database at path (and its -wal, -shm) to "<path>.broken-<UTC
 * time>", kept for whoever wants to know what happened. Returns 0, or -1.
 */
static int
move_aside(const char *path, char *to, size_t tolen)
{
	static const char *const parts[] = {"", "-wal", "-shm"};
	char stamp[32], from[PATH_MAX + 8], dst[PATH_MAX + 48];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(to, tolen, "%s.broken-%s", path, stamp);
	for (size_t i = 0; i < 3; i++) {
		snprintf(from, sizeof(from), "%s%s", path, parts[i]);
		snprintf(dst, sizeof(dst), "%s%s", to, parts[i]);
		if (rename(from, dst) != 0 && (i == 0 || errno != ENOENT))
			return -1;
	}
	return 0;
}

/* Close the writer's connection (its statements first). */
static void
close_file(struct store *s)
{
	sqlite3_finalize(s->upsert);
	sqlite3_finalize(s->event);
	sqlite3_finalize(s->refusal);
	s->upsert = s->event = s->refusal = NULL;
	sqlite3_close(s->db);
	s->db = NULL;
}

/*
 * Open the file at path for writing, create or upgrade its schema, and
 * prepare the writer's statements. The first database opened also gives
 * the numbering and the agent's identity (rows a crash left open become
 * interrupted); a later one (the first was deleted, replaced, or never
 * opened) continues them: no connection id, no sequence, no UUID changes.
 * Returns 0, or an SQLite error code with err set (nothing left open).
 */
static int
open_file(struct store *s, char *err, size_t errlen)
{
	char serr[256];
	int code;

	if (db_open(s->opt.path, 0, 1, 5000, &s->db, err, errlen) != 0)
		return SQLITE_CANTOPEN;
#ifndef _WIN32
	(void)chmod(s->opt.path, 0640);
#endif
	if (exec_or_err(s->db, "PRAGMA journal_mode = WAL", serr, sizeof(serr)) != 0 ||
	    exec_or_err(s->db, "PRAGMA synchronous = NORMAL", serr, sizeof(serr)) != 0 ||
	    /* The WAL is kept between runs (db_open): not at its largest. */
	    exec_or_err(s->db, "PRAGMA journal_size_limit = 4194304", serr, sizeof(serr)) != 0 ||
	    schema_migrate(s->db, serr, sizeof(serr)) != 0 ||
	    (!s->opened_once && recover_interrupted(s, serr, sizeof(serr)) != 0) ||
	    load_numbering(s, serr, sizeof(serr)) != 0 ||
	    load_identity(s, serr, sizeof(serr)) != 0 || create_cursors(s, serr, sizeof(serr)) != 0)
		goto fail;
	if (sqlite3_prepare_v3(
		s->db, upsert_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->upsert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, event_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->event, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, refusal_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->refusal,
		NULL) != SQLITE_OK) {
		snprintf(serr, sizeof(serr), "%s", sqlite3_errmsg(s->db));
		goto fail;
	}
	s->file_id = platform_file_id(s->opt.path);
	s->opened_once = 1;
	return 0;
fail:
	code = sqlite3_extended_errcode(s->db);
	snprintf(err, errlen, "%s: %s", s->opt.path, serr);
	close_file(s);
	return code != SQLITE_OK ? code : SQLITE_ERROR;
}

/*
 * Open the database at start, or as soon as it can be. A damaged file (or
 * a directory in its place) is moved aside and a new one started. A file
 * that cannot be opened or written (a full or read-only disk) leaves the
 * store without one: events are counted as dropped, and the writer tries
 * again every STORE_CHECK_MS. Nothing here stops the agent.
 */
static void
open_or_renew(struct store *s, int at_start)
{
	char err[512], aside[PATH_MAX + 40];
	int code = SQLITE_CANTOPEN;

	if (make_parent_dir(s->opt.path, err, sizeof(err)) == 0)
		code = open_file(s, err, sizeof(err));
	if (code != SQLITE_OK && (is_damage(code) || not_a_file(s->opt.path))) {
		if (move_aside(s->opt.path, aside, sizeof(aside)) == 0) {
			log_warnx("store: %s: the database cannot be read: moved to %s; a new one "
				  "is started",
			    err, aside);
			set_problem(s, s->incident,
			    "the database could not be read (%.200s): it was moved to %.200s and "
			    "a new one started",
			    err, aside);
			code = open_file(s, err, sizeof(err));
		} else {
			log_warnx("store: %s: the database cannot be read, nor moved aside: %s",
			    err, err_str(errno));
		}
	}
	if (code == SQLITE_OK) {
		set_problem(s, s->write_error, "%s", "");
		db_file_renewed();
		if (!at_start)
			log_info("store: recording again, in %s", s->opt.path);
		return;
	}
	if (at_start || s->write_error[0] == '\0')
		log_warnx("store: %s: connections are relayed and the policy enforced, but not "
			  "recorded until the database can be written (tried every %d s)",
		    err, STORE_CHECK_MS / 1000);
	set_problem(s, s->write_error, "the database cannot be written: %.300s", err);
}

/* The file at the path is no longer the one open (deleted, replaced): start a new one. */
static void
check_file(struct store *s)
{
	struct platform_file_id now = platform_file_id(s->opt.path);
	char when[32];
	time_t t = time(NULL);
	struct tm tm;

	if (platform_file_id_equal(&now, &s->file_id))
		return;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	log_warnx("store: the database file %s was %s: a new one is started; what the old one "
		  "held is not in it",
	    s->opt.path, now.valid ? "replaced" : "deleted");
	set_problem(s, s->incident,
	    "the database file was %s at %s: a new one was started, without what the old one held",
	    now.valid ? "replaced" : "deleted", when);
	close_file(s);
	/* The old file's -wal and -shm are not the new one's. */
	for (size_t i = 0; i < 2; i++) {
		char p[PATH_MAX + 8];

		snprintf(p, sizeof(p), "%s%s", s->opt.path, i == 0 ? "-wal" : "-shm");
		(void)remove(p);
	}
	open_or_renew(s, 0);
}

/* A write found the file damaged: aside with it, and a new one. */
static void
damaged(struct store *s)
{
	char aside[PATH_MAX + 40];

	close_file(s);
	if (move_aside(s->opt.path, aside, sizeof(aside)) == 0) {
		log_warnx("store: the database %s is damaged: moved to %s; a new one is started",
		    s->opt.path, aside);
		set_problem(s, s->incident,
		    "the database was found damaged: it was moved to %.200s and a new one started",
		    aside);
	}
	open_or_renew(s, 0);
}

int
store_open(struct store **out, const struct store_options *opt, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	*out = NULL;
	if (s == NULL || (s->opt.path = strdup(opt->path)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(s->machine_id, sizeof(s->machine_id), "%s",
	    opt->machine_id != NULL ? opt->machine_id : "");
	s->opt.machine_id = s->machine_id;
	for (size_t i = 0; i < opt->n_sinks && i < STORE_MAX_SINKS; i++)
		s->opt.sinks[s->opt.n_sinks++] = opt->sinks[i];
	s->cap = opt->queue_size > 0 ? opt->queue_size : 65536;
	s->ring = malloc(sizeof(*s->ring) * s->cap);
	s->batch = malloc(sizeof(*s->batch) * STORE_BATCH_MAX);
	s->latest = malloc(STORE_BATCH_MAX);
	s->slots = malloc(sizeof(*s->slots) * STORE_INDEX_SLOTS);
	s->refusals = malloc(sizeof(*s->refusals) * STORE_REFUSALS_MAX);
	s->refusals_w = malloc(sizeof(*s->refusals_w) * STORE_REFUSALS_MAX);
	s->retention = (struct retention_policy){
	    .days = opt->retention_days,
	    .max_rows = opt->max_rows,
	    .batch = STORE_PRUNE_BATCH,
	    .n_sinks = opt->n_sinks,
	    .max_backlog = opt->max_backlog,
	};
	atomic_init(&s->retention_days, opt->retention_days);
	atomic_init(&s->retention_max_rows, opt->max_rows);
	for (size_t i = 0; i < opt->n_sinks && i < STORE_MAX_SINKS; i++)
		s->retention.sinks[i] = opt->sinks[i];
	s->prune_interval_ms =
	    opt->prune_interval_ms > 0 ? opt->prune_interval_ms : STORE_PRUNE_INTERVAL_MS;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_cond_init(&s->committed, &ca);
	pthread_condattr_destroy(&ca);
	if (s->ring == NULL || s->batch == NULL || s->latest == NULL || s->slots == NULL ||
	    s->refusals == NULL || s->refusals_w == NULL) {
		snprintf(err, errlen, "out of memory for a queue of %u events", s->cap);
		goto fail;
	}

	/*
	 * No memory statistics: with them every sqlite3_malloc takes a global
	 * mutex, a few per row written. Only possible before SQLite initialises
	 * (the agent opens the store first); later it fails harmlessly.
	 */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	open_or_renew(s, 1);
	if (s->db == NULL)
		identity_without_file(s);
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		snprintf(err, errlen, "cannot start the database writer thread");
		goto fail;
	}
	s->writer_running = 1;
	*out = s;
	return 0;
fail:
	store_close(s);
	return -1;
}

uint64_t
store_last_sequence(struct store *s)
{
	return atomic_load_explicit(&s->last_seq, memory_order_acquire);
}

uint64_t
store_wait_sequence(struct store *s, uint64_t seq, unsigned timeout_ms)
{
	struct timespec deadline;
	uint64_t now;

	if ((now = store_last_sequence(s)) > seq || timeout_ms == 0)
		return now;
	clock_deadline_ms(&deadline, timeout_ms);
	pthread_mutex_lock(&s->lock);
	while ((now = store_last_sequence(s)) <= seq && !s->stopping)
		if (pthread_cond_timedwait(&s->committed, &s->lock, &deadline) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&s->lock);
	return store_last_sequence(s);
}

const char *
store_agent_uuid(struct store *s)
{
	return s->uuid;
}

uint64_t
store_next_id(struct store *s)
{
	return atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed);
}

static int
is_final(enum conn_state st)
{
	return st == CONN_CLOSED || st == CONN_FAILED || st == CONN_INTERRUPTED;
}

/* One event dropped: counted by the caller, its detail freed, said at most once a second. */
static void
dropped(struct store *s, const struct conn_record *rec, uint64_t total, int log_it)
{
	conn_detail_free(rec->detail);
	if (log_it)
		log_warnx("store: event queue full (%u events): connection %llu's event dropped, "
			  "%llu dropped so far",
		    s->cap, (unsigned long long)rec->id, (unsigned long long)total);
}

int
store_submit(struct store *s, const struct conn_record *rec)
{
	/* Non-final events leave the last eighth of the queue to final ones. */
	unsigned room = is_final(rec->state) ? s->cap : s->cap - s->cap / 8;
	uint64_t total = 0;
	int rc = 0, log_it = 0;

	pthread_mutex_lock(&s->lock);
	if (s->count >= room && is_final(rec->state)) {
		rc = -EAGAIN; /* the caller keeps it and tries again */
	} else if (s->count >= room) {
		time_t now = time(NULL);

		s->submitted++;
		s->dropped++;
		s->settled++;
		total = s->dropped;
		rc = -ENOSPC;
		if (now != s->last_drop_log) {
			s->last_drop_log = now;
			log_it = 1;
		}
	} else {
		s->submitted++;
		s->ring[(s->head + s->count) % s->cap] = *rec;
		s->count++;
		/* A lingering writer wakes by its own timer: no futex call per event. */
		if (s->writer_idle || s->count >= s->cap / 2)
			pthread_cond_signal(&s->wake);
		if (s->count > s->high_water)
			s->high_water = s->count;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc == -ENOSPC)
		dropped(s, rec, total, log_it);
	return rc;
}

void
store_drop(struct store *s, const struct conn_record *rec)
{
	uint64_t total;

	pthread_mutex_lock(&s->lock);
	s->submitted++;
	s->dropped++;
	s->settled++;
	total = s->dropped;
	pthread_mutex_unlock(&s->lock);
	dropped(s, rec, total, 1);
}

void
store_submit_refusals(struct store *s, const struct store_refusal *r, size_t n)
{
	size_t lost = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		if (s->n_refusals < STORE_REFUSALS_MAX)
			s->refusals[s->n_refusals++] = r[i];
		else
			lost++;
	}
	s->dropped += lost;
	if (s->writer_idle)
		pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

int
store_flush(struct store *s, unsigned timeout_ms)
{
	struct timespec deadline;
	uint64_t target;
	int rc = 0;

	clock_deadline_ms(&deadline, timeout_ms);
	pthread_mutex_lock(&s->lock);
	target = s->submitted;
	while (s->settled < target && rc == 0) {
		if (pthread_cond_timedwait(&s->committed, &s->lock, &deadline) == ETIMEDOUT)
			rc = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void
store_set_retention(struct store *st, unsigned days, uint64_t max_rows)
{
	if (st == NULL)
		return;
	atomic_store_explicit(&st->retention_days, days, memory_order_relaxed);
	atomic_store_explicit(&st->retention_max_rows, max_rows, memory_order_relaxed);
}

void
store_get_stats(struct store *s, struct store_stats *out)
{
	pthread_mutex_lock(&s->lock);
	out->submitted = s->submitted;
	out->events_dropped = s->dropped;
	out->queue_depth = s->count;
	out->queue_high_water = s->high_water;
	memcpy(out->incident, s->incident, sizeof(out->incident));
	memcpy(out->write_error, s->write_error, sizeof(out->write_error));
	pthread_mutex_unlock(&s->lock);
	out->rows_written = atomic_load_explicit(&s->rows_written, memory_order_relaxed);
	out->batches = atomic_load_explicit(&s->batches, memory_order_relaxed);
	out->rows_pruned = atomic_load_explicit(&s->rows_pruned, memory_order_relaxed);
	out->interrupted_at_start = s->interrupted_at_start;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->writer_running) {
		pthread_mutex_lock(&s->lock);
		s->stopping = 1;
		pthread_cond_signal(&s->wake);
		pthread_cond_broadcast(&s->committed); /* store_wait_sequence: stop waiting */
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->writer, NULL);
	}
	close_file(s);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->committed);
	pthread_mutex_destroy(&s->lock);
	free(s->ring);
	free(s->batch);
	free(s->latest);
	free(s->slots);
	free(s->refusals);
	free(s->refusals_w);
	free((char *)s->opt.path);
	free(s);
}
