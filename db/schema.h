/*
 * schema.h: the database file (db/ only): opening it, and its schema, created
 * and upgraded by numbered migrations.
 *
 * PRAGMA user_version holds the number of migrations applied. Each migration
 * runs in its own transaction, so a failure leaves the database at the last
 * good version.
 */
#ifndef RA_SCHEMA_H
#define RA_SCHEMA_H

#include <sqlite3.h>
#include <stddef.h>

/*
 * Open the database file at path for one thread: read-only, or read-write
 * (and created when create is set), waiting up to busy_ms for a lock.
 * Returns 0 with *out set, or -1 with "PATH: reason" in err (nothing open).
 */
int db_open(const char *path, int readonly, int create, int busy_ms, sqlite3 **out, char *err,
    size_t errlen);

/*
 * A reader's connection that follows the database file. The writer (store)
 * may start a new file while the agent runs (the old one was deleted,
 * replaced or unreadable): it then calls db_file_renewed(), and every handle
 * reopens on its next use. A handle whose file cannot be opened yet tries
 * again on each use, so a reader never needs the database at start.
 */
struct db_handle {
	sqlite3 *db; /* NULL: not open (db_handle_get() opens) */
	char *path;
	int readonly, busy_ms;
	unsigned generation; /* of the file db is open on */
	char err[256];       /* why the last open failed */
};

/* Set up h for path (nothing is opened yet). Returns 0 or -ENOMEM. */
int db_handle_init(struct db_handle *h, const char *path, int readonly, int busy_ms);

/* The connection to use now, or NULL (the reason in db_handle_errmsg()). */
sqlite3 *db_handle_get(struct db_handle *h);

/* The reason of the last failure on h: the open's, else SQLite's. */
const char *db_handle_errmsg(struct db_handle *h);

void db_handle_fini(struct db_handle *h);

/* The writer started a new database file: every handle reopens. Thread-safe. */
void db_file_renewed(void);

/* The version this build creates and understands. */
int schema_latest_version(void);

/*
 * Bring db up to the latest version. A database newer than this build is an
 * error (never downgraded). Returns 0 or -1 with err set.
 */
int schema_migrate(sqlite3 *db, char *err, size_t errlen);

/* Apply migrations up to version `target` only (tests build old databases with it). */
int schema_migrate_to(sqlite3 *db, int target, char *err, size_t errlen);

/* The current PRAGMA user_version, or -1 on error. */
int schema_version(sqlite3 *db);

#endif
