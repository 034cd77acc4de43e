#include "schema.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Migration N takes the schema from version N-1 to N. Append only: a
 * released migration is never edited, since databases in the field ran it.
 */
static const char *const migrations[] = {
    /* 1: connections */
    "CREATE TABLE connections (\n"
    "  id                  INTEGER PRIMARY KEY,\n"
    "  opened_at_us        INTEGER NOT NULL,\n"
    "  closed_at_us        INTEGER,\n"
    "  family              INTEGER NOT NULL,          -- 4 or 6\n"
    "  client_addr         TEXT NOT NULL,\n"
    "  client_port         INTEGER NOT NULL,\n"
    "  orig_dst_addr       TEXT,\n"
    "  orig_dst_port       INTEGER,\n"
    "  orig_dst_bin        BLOB,                      -- 4 or 16 bytes, for CIDR ranges\n"
    "  upstream_local_addr TEXT,\n"
    "  upstream_local_port INTEGER,\n"
    "  redirect_state      TEXT NOT NULL,\n"
    "  redirect_records    BLOB,\n"
    "  redirect_context    BLOB,\n"
    "  records_mark        INTEGER,\n"
    "  verdict             TEXT NOT NULL,\n"
    "  state               TEXT NOT NULL CHECK (state IN\n"
    "                        ('open','relaying','closed','failed','interrupted')),\n"
    "  bytes_up            INTEGER NOT NULL DEFAULT 0,\n"
    "  bytes_down          INTEGER NOT NULL DEFAULT 0,\n"
    "  connect_us          INTEGER,\n"
    "  close_reason        TEXT,\n"
    "  error               TEXT,\n"
    "  uid                 INTEGER,\n"
    "  pid                 INTEGER,\n"
    "  exe                 TEXT\n"
    ");\n"
    "CREATE INDEX connections_opened ON connections (opened_at_us);\n"
    "CREATE INDEX connections_dst ON connections (orig_dst_bin, orig_dst_port);\n"
    "CREATE INDEX connections_state ON connections (state, id);\n",

    /* 2: the committed states of each connection, in commit order: the watch stream */
    "CREATE TABLE connection_events (\n"
    "  seq                 INTEGER PRIMARY KEY,       -- the stream's sequence number\n"
    "  conn_id             INTEGER NOT NULL,\n"
    "  at_us               INTEGER NOT NULL,\n"
    "  state               TEXT NOT NULL,\n"
    "  closed_at_us        INTEGER,\n"
    "  upstream_local_addr TEXT,\n"
    "  upstream_local_port INTEGER,\n"
    "  verdict             TEXT NOT NULL,\n"
    "  bytes_up            INTEGER NOT NULL,\n"
    "  bytes_down          INTEGER NOT NULL,\n"
    "  connect_us          INTEGER,\n"
    "  close_reason        TEXT,\n"
    "  error               TEXT\n"
    ");\n"
    "CREATE INDEX connection_events_at ON connection_events (at_us);\n",

    /* 3: versioned policies, and which version and rule judged each connection */
    "CREATE TABLE policies (\n"
    "  version             INTEGER PRIMARY KEY,       -- 1, 2, ...: assigned by the agent\n"
    "  document            TEXT NOT NULL,             -- normalized JSON\n"
    "  set_at_us           INTEGER NOT NULL,\n"
    "  author              TEXT NOT NULL,             -- the caller's identity\n"
    "  sha256              TEXT NOT NULL              -- of document, hex\n"
    ");\n"
    "ALTER TABLE connections ADD COLUMN policy_version INTEGER;\n"
    "ALTER TABLE connections ADD COLUMN rule_id TEXT;   -- NULL: the default action\n"
    "ALTER TABLE connections ADD COLUMN server_name TEXT;\n",
    /*
     * 4: the same table with the state CHECK written as comparisons. SQLite
     * codes "state IN (five names)" in a CHECK with a temporary b-tree built
     * and freed for every row written, twice per upsert: half the writer's
     * CPU (tests/bench/bench_store). A CHECK cannot be altered, so the table
     * is rebuilt: every row is copied once, at the upgrade.
     */
    "CREATE TABLE connections_v4 (\n"
    "  id                  INTEGER PRIMARY KEY,\n"
    "  opened_at_us        INTEGER NOT NULL,\n"
    "  closed_at_us        INTEGER,\n"
    "  family              INTEGER NOT NULL,          -- 4 or 6\n"
    "  client_addr         TEXT NOT NULL,\n"
    "  client_port         INTEGER NOT NULL,\n"
    "  orig_dst_addr       TEXT,\n"
    "  orig_dst_port       INTEGER,\n"
    "  orig_dst_bin        BLOB,                      -- 4 or 16 bytes, for CIDR ranges\n"
    "  upstream_local_addr TEXT,\n"
    "  upstream_local_port INTEGER,\n"
    "  redirect_state      TEXT NOT NULL,\n"
    "  redirect_records    BLOB,\n"
    "  redirect_context    BLOB,\n"
    "  records_mark        INTEGER,\n"
    "  verdict             TEXT NOT NULL,\n"
    "  state               TEXT NOT NULL CHECK (state = 'open' OR state = 'relaying' OR\n"
    "                        state = 'closed' OR state = 'failed' OR state = 'interrupted'),\n"
    "  bytes_up            INTEGER NOT NULL DEFAULT 0,\n"
    "  bytes_down          INTEGER NOT NULL DEFAULT 0,\n"
    "  connect_us          INTEGER,\n"
    "  close_reason        TEXT,\n"
    "  error               TEXT,\n"
    "  uid                 INTEGER,\n"
    "  pid                 INTEGER,\n"
    "  exe                 TEXT,\n"
    "  policy_version      INTEGER,\n"
    "  rule_id             TEXT,                      -- NULL: the default action\n"
    "  server_name         TEXT\n"
    ");\n"
    "INSERT INTO connections_v4 (id, opened_at_us, closed_at_us, family, client_addr,\n"
    "  client_port, orig_dst_addr, orig_dst_port, orig_dst_bin, upstream_local_addr,\n"
    "  upstream_local_port, redirect_state, redirect_records, redirect_context, records_mark,\n"
    "  verdict, state, bytes_up, bytes_down, connect_us, close_reason, error, uid, pid, exe,\n"
    "  policy_version, rule_id, server_name)\n"
    "SELECT id, opened_at_us, closed_at_us, family, client_addr,\n"
    "  client_port, orig_dst_addr, orig_dst_port, orig_dst_bin, upstream_local_addr,\n"
    "  upstream_local_port, redirect_state, redirect_records, redirect_context, records_mark,\n"
    "  verdict, state, bytes_up, bytes_down, connect_us, close_reason, error, uid, pid, exe,\n"
    "  policy_version, rule_id, server_name FROM connections;\n"
    "DROP TABLE connections;\n"
    "ALTER TABLE connections_v4 RENAME TO connections;\n"
    "CREATE INDEX connections_opened ON connections (opened_at_us);\n"
    "CREATE INDEX connections_dst ON connections (orig_dst_bin, orig_dst_port);\n"
    "CREATE INDEX connections_state ON connections (state, id);\n",

    /*
     * 5: fleet export.
     * - agent_meta: the agent's identity (its UUID, and the machine it was
     *   made on, so a cloned disk image gets a new one).
     * - connection_events' sequence is AUTOINCREMENT: a number once given is
     *   never given again, even after retention empties the table, so a
     *   watcher or a sink resuming from it never waits for a number that
     *   was reused. The events are copied once.
     * - export_cursors: per sink, the newest sequence it acknowledged
     *   (every event up to it is shipped) and how many final events
     *   retention had to drop before it could ship them.
     * - server_name_source: whether server_name came from the TLS SNI or an
     *   HTTP Host header.
     */
    "CREATE TABLE agent_meta (\n"
    "  key                 TEXT PRIMARY KEY,\n"
    "  value               TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE connection_events_v5 (\n"
    "  seq                 INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  conn_id             INTEGER NOT NULL,\n"
    "  at_us               INTEGER NOT NULL,\n"
    "  state               TEXT NOT NULL,\n"
    "  closed_at_us        INTEGER,\n"
    "  upstream_local_addr TEXT,\n"
    "  upstream_local_port INTEGER,\n"
    "  verdict             TEXT NOT NULL,\n"
    "  bytes_up            INTEGER NOT NULL,\n"
    "  bytes_down          INTEGER NOT NULL,\n"
    "  connect_us          INTEGER,\n"
    "  close_reason        TEXT,\n"
    "  error               TEXT\n"
    ");\n"
    "INSERT INTO connection_events_v5 SELECT seq, conn_id, at_us, state, closed_at_us,\n"
    "  upstream_local_addr, upstream_local_port, verdict, bytes_up, bytes_down, connect_us,\n"
    "  close_reason, error FROM connection_events;\n"
    "DROP TABLE connection_events;\n"
    "ALTER TABLE connection_events_v5 RENAME TO connection_events;\n"
    "CREATE INDEX connection_events_at ON connection_events (at_us);\n"
    "CREATE INDEX connection_events_conn ON connection_events (conn_id);\n"
    "CREATE TABLE export_cursors (\n"
    "  sink                TEXT PRIMARY KEY,          -- 'nats', 'ecs_file'\n"
    "  acked_seq           INTEGER NOT NULL DEFAULT 0,\n"
    "  lost                INTEGER NOT NULL DEFAULT 0 -- final events pruned unshipped\n"
    ");\n"
    "ALTER TABLE connections ADD COLUMN server_name_source TEXT; -- 'sni' or 'host'\n",
    /*
     * 6: refused connections counted, not one row each: a flood of direct
     * connections to the listener (or of connections over a user's limit)
     * took most of the writer queue, and other users' connections went
     * unrecorded meanwhile. One row per second, client uid and reason.
     */
    "CREATE TABLE refused_connections (\n"
    "  at_us               INTEGER NOT NULL,          -- the second it counts (start)\n"
    "  uid                 INTEGER NOT NULL,          -- the client's owner; -1: unknown\n"
    "  reason              TEXT NOT NULL,\n"
    "  count               INTEGER NOT NULL,\n"
    "  PRIMARY KEY (at_us, uid, reason)\n"
    ") WITHOUT ROWID;\n",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int
db_open(const char *path, int readonly, int create, int busy_ms, sqlite3 **out, char *err,
    size_t errlen)
{
	int persist = 1;
	int flags = SQLITE_OPEN_NOMUTEX |
		    (readonly ? SQLITE_OPEN_READONLY
			      : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0));

	*out = NULL;
	if (sqlite3_open_v2(path, out, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
		    *out != NULL ? sqlite3_errmsg(*out) : "cannot open");
		sqlite3_close(*out);
		*out = NULL;
		return -1;
	}
	sqlite3_busy_timeout(*out, busy_ms);
	/*
	 * Never delete the -wal and -shm files by name on close. A connection
	 * to a file deleted while the agent runs would otherwise, on its last
	 * close, delete the WAL of the new file the writer made at that path.
	 */
	(void)sqlite3_file_control(*out, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	return 0;
}

static _Atomic unsigned file_generation = 1;

void
db_file_renewed(void)
{
	atomic_fetch_add(&file_generation, 1);
}

int
db_handle_init(struct db_handle *h, const char *path, int readonly, int busy_ms)
{
	memset(h, 0, sizeof(*h));
	h->readonly = readonly;
	h->busy_ms = busy_ms;
	if ((h->path = strdup(path)) == NULL)
		return -ENOMEM;
	return 0;
}

sqlite3 *
db_handle_get(struct db_handle *h)
{
	unsigned gen = atomic_load(&file_generation);

	if (h->db != NULL && h->generation == gen)
		return h->db;
	sqlite3_close(h->db);
	h->db = NULL;
	if (db_open(h->path, h->readonly, 0, h->busy_ms, &h->db, h->err, sizeof(h->err)) != 0)
		return NULL;
	h->generation = gen;
	h->err[0] = '\0';
	return h->db;
}

const char *
db_handle_errmsg(struct db_handle *h)
{
	if (h->db == NULL)
		return h->err[0] != '\0' ? h->err : "the database is not open";
	return sqlite3_errmsg(h->db);
}

void
db_handle_fini(struct db_handle *h)
{
	sqlite3_close(h->db);
	free(h->path);
	memset(h, 0, sizeof(*h));
}

int
schema_latest_version(void)
{
	return N_MIGRATIONS;
}

int
schema_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
schema_migrate_to(sqlite3 *db, int target, char *err, size_t errlen)
{
	int v = schema_version(db);

	if (v < 0) {
		snprintf(err, errlen, "cannot read schema version: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (v > N_MIGRATIONS) {
		snprintf(err, errlen,
		    "database schema version %d is newer than this agent understands (%d); "
		    "refusing to touch it",
		    v, N_MIGRATIONS);
		return -1;
	}
	for (; v < target && v < N_MIGRATIONS; v++) {
		char sql[64];
		char *msg = NULL;

		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
			goto fail;
		if (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK)
			goto rollback;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
			goto rollback;
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
			goto rollback;
		continue;
	rollback:
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	fail:
		snprintf(err, errlen, "migration %d failed: %s", v + 1,
		    msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
schema_migrate(sqlite3 *db, char *err, size_t errlen)
{
	return schema_migrate_to(db, N_MIGRATIONS, err, errlen);
}
