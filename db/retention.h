/*
 * retention.h: pruning old connection rows in small batches.
 *
 * Rows of connections still open (or relaying) are never pruned, whatever
 * their age: their close event must find them.
 */
#ifndef RA_RETENTION_H
#define RA_RETENTION_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define RETENTION_MAX_SINKS 4

struct retention_policy {
	unsigned days;     /* prune rows opened longer ago than this; 0: no age limit */
	uint64_t max_rows; /* keep at most this many rows (newest); 0: no cap */
	unsigned batch;    /* rows deleted per call, at most */
	/* The export sinks (export_cursors.sink) whose cursors hold events back. */
	const char *sinks[RETENTION_MAX_SINKS];
	size_t n_sinks;
	uint64_t max_backlog; /* events behind the newest kept for them, at most; 0: no cap */
};

/*
 * Delete at most policy->batch connection rows, as many watch events and as
 * many refusal counts (refused_connections) that fall outside the policy,
 * oldest first, in one transaction. An event no
 * configured sink has acknowledged stays, and so does its connection's row,
 * unless it is more than max_backlog events behind the newest: then the
 * oldest go, and each sink's export_cursors.lost counts the final events it
 * never had. Returns the number of rows deleted from both (0: nothing left
 * to do), or -1 on a database error.
 */
int retention_prune_batch(sqlite3 *db, const struct retention_policy *policy, int64_t now_us);

#endif
