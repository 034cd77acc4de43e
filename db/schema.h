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
