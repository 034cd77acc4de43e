/*
 * policies.h: the policy history in SQLite (table `policies`).
 *
 * A struct policy_store is its own read-write connection, used by one
 * thread at a time (start-up, then the API's thread, the one that changes
 * the policy); the writer thread of the connection record is not involved.
 * Versions are assigned here, under a write transaction.
 *
 * The newest version is also kept outside the database, in
 * "<database>.policy.json" (written whole, flushed, renamed over the old), so
 * that a database lost to corruption, deletion or a full disk never leaves
 * the agent without its policy: a new, empty database gets that version
 * back, and while no database can be read it is read from there.
 */
#ifndef RA_POLICIES_H
#define RA_POLICIES_H

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

struct policy_store;

/*
 * The policy history of the database at path, read-write. The file is
 * opened on first use (and again when the store starts a new one): this
 * needs no database. Returns 0 with *out set, or -ENOMEM with err set.
 */
int policies_open(const char *path, struct policy_store **out, char *err, size_t errlen);

/* Close ps. NULL is ignored. */
void policies_close(struct policy_store *ps);

/* The last database error on ps, for messages. */
const char *policies_errmsg(struct policy_store *ps);

/*
 * The newest version: 1 with *out filled, 0 when there is none, -1 on error.
 * With none in the database, or no database, the backup's (restored into an
 * empty database).
 */
int policies_latest(struct policy_store *ps, struct policy_row *out);

/* One version (from the backup when the database lacks it): 1, 0 (no such version), -1. */
int policies_get(struct policy_store *ps, uint64_t version, struct policy_row *out);

/* Make the backup hold r (the version in force) unless it already does. */
void policies_keep_backup(struct policy_store *ps, const struct policy_row *r);

/* "<db_path>.policy.json", malloc'ed (NULL when out of memory). */
char *policies_backup_path(const char *db_path);

/* The backup at path: 1 with *out filled, 0 when there is none, -1 when unreadable. */
int policies_read_backup(const char *path, struct policy_row *out);

/*
 * Store document as the next version (the newest stored plus one), and in
 * the backup. Returns that version, or -1 on a database error. Compare-and-set is the caller's:
 * what a console compares against is the version in force, which is not
 * always the newest stored (one this agent could not load is skipped).
 */
int64_t policies_append(
    struct policy_store *ps, const char *document, const char *author, int64_t at_us);

/*
 * Versions below `below` (0: from the newest), newest first, at most limit.
 * fn returns 0 to go on, > 0 to stop there, or < 0 when it failed. Returns
 * 0, or -1 on a database error or when fn failed.
 */
int policies_history(struct policy_store *ps, uint64_t below, unsigned limit,
    int (*fn)(void *arg, const struct policy_row *r), void *arg);

/* Keep only the newest keep versions from now on (each append prunes). 0: all. */
void policies_set_keep(struct policy_store *ps, unsigned keep);

/* Lowercase hex SHA-256 of text (out: 65 bytes). */
void policies_sha256(const char *text, char out[65]);

#endif
