/*
 * shipper.h: one export sink's thread (shipper.c), and what a sink gives it
 * (sink_file.c, sink_nats.c). Private to fleet/.
 *
 * The shipper reads the events after its read position, formats those the
 * sink ships, and hands each over with send(). A sink acknowledges them
 * later, from any thread, with shipper_ack() (one record: NATS's per-message
 * acknowledgements) or shipper_ack_upto() (everything up to a sequence: the
 * file, once flushed). The cursor advances over the longest run of
 * acknowledged (or skipped) events; it is stored at most every
 * SHIPPER_SAVE_MS. A failure, shipper_fail(), rewinds to the cursor: what
 * followed is handed over again after a pause, and the sink's
 * de-duplication makes the second copies harmless. At most window records
 * are handed over and unacknowledged at once.
 */
#ifndef RA_SHIPPER_H
#define RA_SHIPPER_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

struct shipper;
struct store;

struct sink_ops {
	const char *name; /* "nats", "ecs_file": its cursor's name too */
	/* 1 when the sink can take records now; else 0 with why set. */
	int (*ready)(void *sink, char *why, size_t whylen);
	/* Hand over one record (a JSON object, no newline). 0, or < 0 when it
	 * cannot (the shipper rewinds and retries later). */
	int (*send)(void *sink, uint64_t seq, const char *rec, size_t len);
	/* After a batch of sends: push them out (NULL: nothing to do). 0 or < 0. */
	int (*flush)(void *sink);
	/* At start: the newest sequence the sink already holds (0: unknown). */
	uint64_t (*recover)(void *sink);
	/* Told its shipper before the thread starts (NULL: not needed). */
	void (*attach)(void *sink, struct shipper *sh);
	/* Free the sink, once the thread is gone (NULL: nothing to free). */
	void (*close)(void *sink);
};

struct shipper_options {
	const struct sink_ops *ops;
	void *sink;
	unsigned window;  /* records handed over and not yet acknowledged, at most */
	int include_open; /* ship openings too (ecs_ships) */
	const char *db_path;
	struct store *store;
	const struct ecs_agent *agent;
};

/* Start the sink's thread. Returns 0 with *out set, or -1 with err set. */
int shipper_start(
    struct shipper **out, const struct shipper_options *opt, char *err, size_t errlen);

/*
 * Stop: give what is handed over up to timeout_ms to be acknowledged, store
 * the cursor, join the thread, close the sink (ops->close), free sh.
 */
void shipper_stop(struct shipper *sh, unsigned timeout_ms);

/* The sink acknowledged one record, or every record up to seq. Any thread. */
void shipper_ack(struct shipper *sh, uint64_t seq);
void shipper_ack_upto(struct shipper *sh, uint64_t seq);

/* The sink could not ship seq (why: for the stats and the log). Any thread. */
void shipper_fail(struct shipper *sh, uint64_t seq, const char *why);

/* The sink's stats. Thread-safe. */
void shipper_get_stats(struct shipper *sh, struct export_sink_stats *out);

#endif
