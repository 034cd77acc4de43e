/*
 * schema.h: the database schema, created and upgraded by numbered migrations.
 *
 * PRAGMA user_version holds the number of migrations applied. Each migration
 * runs in its own transaction, so a failure leaves the database at the last
 * good version.
 */
#ifndef RA_SCHEMA_H
#define RA_SCHEMA_H

#include <sqlite3.h>
#include <stddef.h>

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
