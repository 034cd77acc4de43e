/*
 * retention.c: pruning rows and events in small batches (retention.h).
 */
#include "retention.h"

#include <stddef.h>

#include "conn.h"

/* The first column of the first row of sql (0 when none), with ?1 bound to a when it has one. */
static int
one_int(sqlite3 *db, const char *sql, int64_t a, int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, a);
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
		   ? sqlite3_column_int64(st, 0)
		   : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Run a DELETE with ?1..?n bound to args: the rows it deleted, or -1. */
static int
delete_where(sqlite3 *db, const char *sql, const int64_t *args, int n)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, args[i]);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? sqlite3_changes(db) : -1;
}

/*
 * The newest sequence every configured sink has acknowledged: events after
 * it are still to be shipped by one of them. INT64_MAX with no sink.
 */
static int
min_cursor(sqlite3 *db, const struct retention_policy *p, int64_t *out)
{
	*out = INT64_MAX;
	for (size_t i = 0; i < p->n_sinks; i++) {
		sqlite3_stmt *st;
		int64_t acked = 0;
		int rc;

		if (sqlite3_prepare_v2(db, "SELECT acked_seq FROM export_cursors WHERE sink = ?1",
			-1, &st, NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_text(st, 1, p->sinks[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			acked = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return -1;
		if (acked < *out)
			*out = acked;
	}
	return 0;
}

/*
 * Events up to upto are about to go although a sink has not shipped them:
 * each sink counts the final events above its cursor as lost.
 */
static int
count_lost(sqlite3 *db, const struct retention_policy *p, int64_t upto)
{
	static const char sql[] =
	    "UPDATE export_cursors SET lost = lost + (SELECT count(*) FROM connection_events"
	    " WHERE seq > export_cursors.acked_seq AND seq <= ?1 AND state IN (?3, ?4, ?5))"
	    " WHERE sink = ?2 AND acked_seq < ?1";

	for (size_t i = 0; i < p->n_sinks; i++) {
		sqlite3_stmt *st;
		int rc;

		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int64(st, 1, upto);
		sqlite3_bind_text(st, 2, p->sinks[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, conn_state_name(CONN_CLOSED), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, conn_state_name(CONN_FAILED), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, conn_state_name(CONN_INTERRUPTED), -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

/* Remember the highest connection id pruned: ids are never handed out again. */
static int
note_pruned_id(sqlite3 *db, int64_t id)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
		"INSERT INTO agent_meta (key, value) VALUES ('pruned_id', ?1)"
		" ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), ?1)",
		-1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
retention_prune_batch(sqlite3 *db, const struct retention_policy *policy, int64_t now_us)
{
	/* Closed rows outside the policy, whose events every sink has shipped:
	 * first the highest such id (kept in agent_meta), then the rows. */
#define PRUNABLE_ROWS                                                                              \
	"SELECT id FROM connections"                                                               \
	" WHERE state NOT IN (?4, ?5) AND (id <= ?1 OR opened_at_us < ?2)"                         \
	" AND NOT EXISTS (SELECT 1 FROM connection_events e"                                       \
	"  WHERE e.conn_id = connections.id AND e.seq > ?6)"                                       \
	" ORDER BY id LIMIT ?3"
	static const char *const rows_sql[] = {
	    "SELECT max(id) FROM (" PRUNABLE_ROWS ")",
	    "DELETE FROM connections WHERE id IN (" PRUNABLE_ROWS ")",
	};
#undef PRUNABLE_ROWS
	static const char ev_sql[] = "DELETE FROM connection_events WHERE seq IN ("
				     " SELECT seq FROM connection_events"
				     " WHERE ((at_us < ?1 OR seq <= ?2) AND seq <= ?4) OR seq <= ?5"
				     " ORDER BY seq LIMIT ?3)";
	int64_t batch = policy->batch > 0 ? policy->batch : 1000;
	int64_t cap_id = 0, cutoff = INT64_MIN, shipped, head = 0, forced = 0, ev_cap = 0;
	int64_t max_deleted = 0, args[5];
	sqlite3_stmt *st = NULL;
	int deleted = 0, rc;

	if (policy->days == 0 && policy->max_rows == 0 && policy->n_sinks == 0)
		return 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (min_cursor(db, policy, &shipped) != 0 ||
	    one_int(db, "SELECT coalesce(MAX(seq), 0) FROM connection_events", 0, &head) != 0)
		goto fail;
	/* Past max_backlog, the oldest unshipped events go: counted as lost. */
	if (policy->n_sinks > 0 && policy->max_backlog > 0 && shipped < INT64_MAX &&
	    head - shipped > (int64_t)policy->max_backlog) {
		forced = head - (int64_t)policy->max_backlog;
		if (forced > shipped + batch)
			forced = shipped + batch; /* one batch at a time, like the rest */
		if (count_lost(db, policy, forced) != 0)
			goto fail;
	}
	if (policy->max_rows > 0 &&
	    one_int(db, "SELECT id FROM connections ORDER BY id DESC LIMIT 1 OFFSET ?1",
		(int64_t)policy->max_rows, &cap_id) != 0)
		goto fail;
	if (policy->days > 0)
		cutoff = now_us - (int64_t)policy->days * 86400 * 1000000;

	for (size_t i = 0; i < 2 && (policy->days > 0 || policy->max_rows > 0); i++) {
		if (sqlite3_prepare_v2(db, rows_sql[i], -1, &st, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, cap_id);
		sqlite3_bind_int64(st, 2, cutoff);
		sqlite3_bind_int64(st, 3, batch);
		sqlite3_bind_text(st, 4, conn_state_name(CONN_OPEN), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, conn_state_name(CONN_RELAYING), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, shipped > forced ? shipped : forced);
		rc = sqlite3_step(st);
		if (i == 0 && rc == SQLITE_ROW)
			max_deleted = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		st = NULL;
		if (rc != (i == 0 ? SQLITE_ROW : SQLITE_DONE))
			goto fail;
		if (i == 1)
			deleted += sqlite3_changes(db);
	}
	if (max_deleted > 0 && note_pruned_id(db, max_deleted) != 0)
		goto fail;

	/* The watch stream's events age out with the same policy: by age, and
	 * at most three per kept row (opened, relaying, closed). */
	if (policy->max_rows > 0)
		ev_cap = head - 3 * (int64_t)policy->max_rows;
	args[0] = policy->days > 0 ? cutoff : INT64_MIN;
	args[1] = ev_cap;
	args[2] = batch;
	args[3] = shipped;
	args[4] = forced;
	if ((rc = delete_where(db, ev_sql, args, 5)) < 0)
		goto fail;
	deleted += rc;

	/* The refusal counts (one row per second, uid and reason) age out with
	 * the rows, and are capped at max_rows rows too. */
	if (policy->days > 0 || policy->max_rows > 0) {
		int64_t cap_at = INT64_MIN;

		if (policy->max_rows > 0 && one_int(db,
						"SELECT at_us FROM refused_connections ORDER BY "
						"at_us DESC LIMIT 1 OFFSET ?1",
						(int64_t)policy->max_rows, &cap_at) != 0)
			goto fail;
		if (cap_at == 0)
			cap_at = INT64_MIN; /* fewer rows than the cap */
		args[0] = cutoff;
		args[1] = cap_at;
		args[2] = batch;
		if ((rc = delete_where(db,
			 "DELETE FROM refused_connections WHERE (at_us, uid, reason) IN ("
			 " SELECT at_us, uid, reason FROM refused_connections"
			 " WHERE at_us < ?1 OR at_us <= ?2 ORDER BY at_us LIMIT ?3)",
			 args, 3)) < 0)
			goto fail;
		deleted += rc;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return deleted;
fail:
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
