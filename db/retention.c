#include "retention.h"

#include <stddef.h>

#include "conn.h"

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
	static const char sql[] = "DELETE FROM connections WHERE id IN ("
				  " SELECT id FROM connections"
				  " WHERE state NOT IN (?4, ?5) AND (id <= ?1 OR opened_at_us < ?2)"
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
	sqlite3_bind_text(st, 4, conn_state_name(CONN_OPEN), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, conn_state_name(CONN_RELAYING), -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		deleted = sqlite3_changes(db);
	sqlite3_finalize(st);
	/* The watch stream's events age out with the same policy: by age, and
	 * at most three per kept row (opened, relaying, closed). */
	if (deleted >= 0) {
		static const char ev_sql[] =
		    "DELETE FROM connection_events WHERE seq IN ("
		    " SELECT seq FROM connection_events WHERE at_us < ?1 OR seq <= ?2"
		    " ORDER BY seq LIMIT ?3)";
		int64_t ev_cap = 0;

		if (policy->max_rows > 0) {
			sqlite3_stmt *mx;

			if (sqlite3_prepare_v2(db,
				"SELECT coalesce(MAX(seq), 0) FROM connection_events", -1, &mx,
				NULL) == SQLITE_OK &&
			    sqlite3_step(mx) == SQLITE_ROW)
				ev_cap =
				    sqlite3_column_int64(mx, 0) - 3 * (int64_t)policy->max_rows;
			sqlite3_finalize(mx);
		}
		if (sqlite3_prepare_v2(db, ev_sql, -1, &st, NULL) != SQLITE_OK) {
			deleted = -1;
			goto out;
		}
		sqlite3_bind_int64(st, 1, cutoff);
		sqlite3_bind_int64(st, 2, ev_cap);
		sqlite3_bind_int64(st, 3, policy->batch > 0 ? policy->batch : 1000);
		if (sqlite3_step(st) == SQLITE_DONE)
			deleted += sqlite3_changes(db);
		else
			deleted = -1;
		sqlite3_finalize(st);
	}
out:
	if (deleted >= 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return deleted;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
