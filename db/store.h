/*
 * store.h: the connection record, kept in SQLite by one writer thread.
 *
 * The proxy calls store_submit() from its event loops: it copies the record
 * into a bounded queue and never blocks on the database. The writer thread
 * drains the queue and commits in batched transactions (WAL). Every event
 * carries the whole record and is written as an UPSERT, so the row exists
 * from the first event and the last one leaves the final bytes and reason.
 */
#ifndef RA_STORE_H
#define RA_STORE_H

#include <stdint.h>

#include "addr.h"
#include "conn.h"
#include "records.h"

struct store;

#define STORE_UUID_LEN    36 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define STORE_PROBLEM_LEN 640
#define STORE_MAX_SINKS   4

/*
 * What is learnt once per connection and written once (the redirect records,
 * the policy's verdict, the client's owner and server name). It travels
 * outside the queue's fixed-size events, so that those stay small: an event
 * that carries one owns it (the store writes then frees it), and fields left
 * NULL (or a zero length) never overwrite what an earlier detail wrote.
 */
struct conn_detail {
	uint8_t records_len, context_len;
	uint8_t records[RECORDS_V1_LEN];
	uint8_t context[CONTEXT_V1_MAXLEN];
	uint64_t policy_version; /* 0: not set by this detail */
	char *rule_id;           /* NULL: none (the default action) */
	char *server_name;
	const char *server_name_source; /* "sni" or "host" (a literal); NULL: none */
	char *exe;
};

/* A new, empty detail (NULL when out of memory), and its release. */
struct conn_detail *conn_detail_new(void);
void conn_detail_free(struct conn_detail *d);

/*
 * One connection as the proxy knows it at the moment of an event. String
 * members must point at storage that outlives the agent (string literals,
 * err_str()): the queue copies the struct, not the strings.
 */
struct conn_record {
	uint64_t id;
	int64_t opened_at_us; /* wall clock, microseconds since the epoch */
	int64_t closed_at_us; /* 0 until closed */
	struct endpoint client;
	struct endpoint orig_dst;
	struct endpoint upstream_local; /* family 0 until connected */
	enum redirect_state redirect_state;
	uint32_t records_mark;
	struct conn_detail *detail; /* NULL, or owned by this event (above) */
	enum conn_verdict verdict;
	enum conn_state state;
	uint64_t bytes_up;   /* client to destination */
	uint64_t bytes_down; /* destination to client */
	int64_t connect_us;  /* -1 until connected */
	const char *close_reason;
	const char *error;
	int32_t uid, pid; /* -1 when unknown */
};

struct store_options {
	const char *path;
	unsigned queue_size;        /* events the queue holds before it drops */
	unsigned retention_days;    /* 0: no age limit */
	uint64_t max_rows;          /* 0: no cap */
	unsigned prune_interval_ms; /* 0: default (60 s) */
	const char *machine_id;     /* this machine's id (host.h); "" or NULL: unknown */
	/*
	 * The export sinks configured ("nats", "ecs_file"): retention keeps the
	 * events (and their rows) none has acknowledged yet, up to max_backlog
	 * events behind the newest; past that the oldest go, counted as lost.
	 */
	const char *sinks[STORE_MAX_SINKS];
	size_t n_sinks;
	uint64_t max_backlog;
};

struct store_stats {
	uint64_t submitted;      /* events handed to store_submit */
	uint64_t rows_written;   /* events committed */
	uint64_t batches;        /* transactions committed */
	uint64_t events_dropped; /* queue full or write failed */
	uint64_t queue_depth;
	uint64_t queue_high_water;
	uint64_t interrupted_at_start; /* rows recovery marked 'interrupted' */
	uint64_t rows_pruned;
	/* What is wrong with the database ("" when nothing), for health: */
	char incident[STORE_PROBLEM_LEN];    /* a file lost (damaged, deleted): until restart */
	char write_error[STORE_PROBLEM_LEN]; /* no file can be written now */
};

/*
 * Open (creating if needed, with its directory) the database, bring the
 * schema up to date, mark rows a crash left open as interrupted, and start
 * the writer thread. Returns 0 with *out set, or -1 with err set when out
 * of memory or threads.
 *
 * The database never stops the agent. A damaged file (or a directory in its
 * place) is moved to "<path>.broken-<time>" and a new one started; one that
 * cannot be opened or written (a full or read-only disk, a schema from a
 * newer agent) leaves the store without a file: events are dropped and
 * counted, and the writer tries again every second. A file deleted or
 * replaced while the agent runs is noticed within a second and a new one
 * started, continuing the numbering and the agent's UUID. Each of these is
 * in store_get_stats()'s incident or write_error.
 */
int store_open(struct store **out, const struct store_options *opt, char *err, size_t errlen);

/*
 * The sequence number of the newest committed connection event (the watch
 * stream's head); 0 when there is none. Thread-safe, lock-free.
 */
uint64_t store_last_sequence(struct store *st);

/*
 * Wait until an event with a sequence number above seq is committed, at
 * most timeout_ms. Returns the newest sequence (<= seq on a timeout).
 */
uint64_t store_wait_sequence(struct store *st, uint64_t seq, unsigned timeout_ms);

/* The agent's UUID (made at its first start, kept in the database). */
const char *store_agent_uuid(struct store *st);

/* A fresh connection id, unique in this database. Thread-safe, lock-free. */
uint64_t store_next_id(struct store *st);

/*
 * Queue one event, taking its detail (if any). Never blocks on I/O. The last
 * eighth of the queue is kept for final events (closed, failed,
 * interrupted), so that a connection whose opening was recorded is not left
 * open for want of room:
 * - 0: queued;
 * - -ENOSPC: a non-final event past that point: dropped (its detail freed),
 *   counted in events_dropped and logged (rate-limited);
 * - -EAGAIN: a final event, and the queue is full: nothing taken (the detail
 *   stays the caller's), to be submitted again once there is room.
 * Thread-safe.
 */
int store_submit(struct store *st, const struct conn_record *rec);

/* Drop a final event store_submit could not take (shutting down): counted, detail freed. */
void store_drop(struct store *st, const struct conn_record *rec);

/*
 * Refused connections, counted: for the second starting at at_us, count
 * connections of uid (-1: unknown) refused for reason (a string literal).
 * Written with the next commit, added to what the row already counts.
 */
struct store_refusal {
	int64_t at_us;
	int32_t uid;
	const char *reason;
	uint64_t count;
};

/* Hand over counted refusals. Never blocks; past STORE_REFUSALS_MAX pending, counted as dropped. */
void store_submit_refusals(struct store *st, const struct store_refusal *r, size_t n);

#define STORE_REFUSALS_MAX 4096

/*
 * Wait until every event submitted before the call is committed (or
 * dropped), at most timeout_ms. Returns 0, or -ETIMEDOUT.
 */
int store_flush(struct store *st, unsigned timeout_ms);

void store_get_stats(struct store *st, struct store_stats *out);

/* A reload's [db] retention_days and max_rows: the writer's next prune uses them. */
void store_set_retention(struct store *st, unsigned days, uint64_t max_rows);

/* Commit everything queued, stop the writer and close the database. st is freed. */
void store_close(struct store *st);

#endif
