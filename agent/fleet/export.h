/*
 * export.h: shipping every connection out of the agent, exactly once per
 * sink: to NATS JetStream (sink_nats.c) and to a rotated file of ECS JSON
 * lines (sink_file.c).
 *
 * Each sink has a thread of its own (shipper.c) that reads the committed
 * event log (db/outbox.h) after its cursor, formats each event a sink ships
 * as ECS JSON (ecs.h), hands it over, and advances its cursor, stored in
 * SQLite, only over what the sink acknowledged. A restart resumes after the
 * cursor; what was handed over but not yet acknowledged is handed over
 * again, and each sink makes a second copy harmless (the stream's
 * Nats-Msg-Id de-duplication; the file's own last line). Shipping never
 * blocks the event loops or the database writer: it only reads.
 */
#ifndef RA_EXPORT_H
#define RA_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ecs.h"

struct config;
struct store;
struct fleet;
struct exporter;

/* A sink's state, as GetStats and redirectctl stats show it. */
enum export_state {
	EXPORT_OFF,       /* not configured */
	EXPORT_CONNECTED, /* shipping (or idle with nothing to ship) */
	EXPORT_RETRYING,  /* cannot ship now: last_error says why; it retries */
};

struct export_sink_stats {
	char name[16]; /* "nats", "ecs_file" */
	enum export_state state;
	uint64_t acked;            /* the cursor: every event up to it is shipped */
	uint64_t pending;          /* events committed after the cursor */
	int64_t oldest_pending_us; /* when the first of them was committed; 0: none */
	uint64_t shipped;          /* records acknowledged since start */
	uint64_t lost;             /* final events retention dropped before they were shipped */
	int64_t down_since_us;     /* retrying since (wall clock); 0 when connected */
	char last_error[256];      /* the latest failure, "" when none */
};

/* The sinks [export] and [fleet] configure, by name, for store_options.sinks. */
size_t export_sink_names(const struct config *cfg, const char **names, size_t max);

/*
 * Start a thread per configured sink. agent says who writes the records;
 * fleet is the NATS connection (NULL when [fleet] servers is empty). A sink
 * that cannot connect yet is not an error: it retries, and says why in its
 * stats. Returns 0 with *out set (NULL when no sink is configured), or -1
 * with err set.
 */
int export_start(struct exporter **out, const struct config *cfg, struct store *store,
    const struct ecs_agent *agent, struct fleet *fleet, char *err, size_t errlen);

/*
 * Stop every sink: what was handed over gets up to timeout_ms to be
 * acknowledged, the cursors are stored, the threads joined, ex freed.
 * NULL is ignored.
 */
void export_stop(struct exporter *ex, unsigned timeout_ms);

/* The sinks' stats, up to max of them. Returns how many. Thread-safe. */
size_t export_get_stats(struct exporter *ex, struct export_sink_stats *out, size_t max);

#endif
