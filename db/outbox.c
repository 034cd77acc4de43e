/*
 * outbox.c: one export sink's view of the event log (outbox.h).
 */
#include "outbox.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

struct outbox {
	struct query *q;    /* the events, read-only */
	struct db_handle h; /* the cursor, read-write */
	char sink[32];
};

int
outbox_open(const char *path, const char *sink, struct outbox **out, char *err, size_t errlen)
{
	struct outbox *o = calloc(1, sizeof(*o));

	*out = NULL;
	if (o == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(o->sink, sizeof(o->sink), "%s", sink);
	if (query_open(path, &o->q, err, errlen) != 0 ||
	    db_handle_init(&o->h, path, 0, 5000) != 0) {
		outbox_close(o);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

void
outbox_close(struct outbox *o)
{
	if (o == NULL)
		return;
	query_close(o->q);
	db_handle_fini(&o->h);
	free(o);
}

int
outbox_cursor(struct outbox *o, uint64_t *acked, uint64_t *lost)
{
	sqlite3_stmt *st;
	int rc;
	sqlite3 *db = db_handle_get(&o->h);

	*acked = *lost = 0;
	if (db == NULL ||
	    sqlite3_prepare_v2(db, "SELECT acked_seq, lost FROM export_cursors WHERE sink = ?1", -1,
		&st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, o->sink, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*acked = (uint64_t)sqlite3_column_int64(st, 0);
		*lost = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

int
outbox_set_cursor(struct outbox *o, uint64_t acked)
{
	sqlite3_stmt *st;
	int rc;
	sqlite3 *db = db_handle_get(&o->h);

	/* Never backwards: a cursor is the sink's acknowledgement. */
	if (db == NULL ||
	    sqlite3_prepare_v2(db,
		"INSERT INTO export_cursors (sink, acked_seq) VALUES (?1, ?2)"
		" ON CONFLICT (sink) DO UPDATE SET acked_seq = max(acked_seq, excluded.acked_seq)",
		-1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, o->sink, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)acked);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int
outbox_read(struct outbox *o, uint64_t after, unsigned limit, conn_row_cb cb, void *arg)
{
	return query_events_after(o->q, after, limit, cb, arg);
}

int
outbox_first_after(struct outbox *o, uint64_t seq, int64_t *at_us)
{
	sqlite3_stmt *st;
	int rc;
	sqlite3 *db = db_handle_get(&o->h);

	*at_us = 0;
	if (db == NULL ||
	    sqlite3_prepare_v2(db,
		"SELECT at_us FROM connection_events WHERE seq > ?1 ORDER BY seq LIMIT 1", -1, &st,
		NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*at_us = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

const char *
outbox_errmsg(struct outbox *o)
{
	return db_handle_errmsg(&o->h);
}
