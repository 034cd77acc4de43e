/*
 * policies.h: the policy history in SQLite (table `policies`).
 *
 * Written by one thread (the API's), on its own read-write connection; the
 * writer thread of the connection record is not involved. Versions are
 * assigned here, under a write transaction.
 */
#ifndef RA_POLICIES_H
#define RA_POLICIES_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct policy_row {
	uint64_t version;
	char *document;
	int64_t set_at_us;
	char *author;
	char sha256[65];
};

void policy_row_free(struct policy_row *r);

/* Open path read-write (the schema must exist: store_open ran). */
int policies_open(const char *path, sqlite3 **out, char *err, size_t errlen);

/* The newest version: 1 with *out filled, 0 when there is none, -1 on error. */
int policies_latest(sqlite3 *db, struct policy_row *out);

/* One version: 1, 0 (no such version), -1. */
int policies_get(sqlite3 *db, uint64_t version, struct policy_row *out);

/*
 * Store document as the next version (the newest stored plus one). Returns
 * that version, or -1 on a database error. Compare-and-set is the caller's:
 * what a console compares against is the version in force, which is not
 * always the newest stored (one this agent could not load is skipped).
 */
int64_t policies_append(sqlite3 *db, const char *document, const char *author, int64_t at_us);

/* Every version, newest first; stops early when fn returns non-zero. Returns 0 or -1. */
int policies_history(sqlite3 *db, int (*fn)(void *arg, const struct policy_row *r), void *arg);

/* Lowercase hex SHA-256 of text (out: 65 bytes). */
void policies_sha256(const char *text, char out[65]);

#endif
