#include "retention.h"

#include <stddef.h>

/* The highest id that the row cap pushes out, or 0 when the cap is not reached. */
static int64_t
cap_threshold(sqlite3 *db, uint64_t max_rows)
{
	sqlite3_stmt *st;
	int64_t id = 0;

	if (sqlite3_prepare_v2(db, "SELECT id FROM connections ORDER BY id DESC LIMIT 1 OFFSET ?1",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max_rows);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

int
retention_prune_batch(sqlite3 *db, const struct retention_policy *policy, int64_t now_us)
{
	static const char sql[] =
	    "DELETE FROM connections WHERE id IN ("
	    " SELECT id FROM connections"
	    " WHERE state NOT IN ('open', 'relaying') AND (id <= ?1 OR opened_at_us < ?2)"
	    " ORDER BY id LIMIT ?3)";
	sqlite3_stmt *st;
	int64_t cap_id = 0, cutoff = INT64_MIN;
	int deleted = -1;

	if (policy->days == 0 && policy->max_rows == 0)
		return 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (policy->max_rows > 0 && (cap_id = cap_threshold(db, policy->max_rows)) < 0)
		goto out;
	if (policy->days > 0)
		cutoff = now_us - (int64_t)policy->days * 86400 * 1000000;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, cap_id);
	sqlite3_bind_int64(st, 2, cutoff);
	sqlite3_bind_int64(st, 3, policy->batch > 0 ? policy->batch : 1000);
	if (sqlite3_step(st) == SQLITE_DONE)
		deleted = sqlite3_changes(db);
	sqlite3_finalize(st);
out:
	if (deleted >= 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return deleted;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
