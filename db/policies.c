/*
 * policies.c: the policy history (policies.h).
 */
#include "policies.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "platform.h"
#include "schema.h"

#define BACKUP_SUFFIX ".policy.json"
#define BACKUP_MAX    (64u << 20) /* larger than any document the API accepts */

struct policy_store {
	struct db_handle h; /* read-write, the policies table only */
	char *backup;       /* the newest version, outside the database */
	unsigned keep;      /* versions kept; 0: all */
};

void
policy_row_free(struct policy_row *r)
{
	free(r->document);
	free(r->author);
	memset(r, 0, sizeof(*r));
}

void
policies_sha256(const char *text, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	out[0] = '\0';
	if (EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return;
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int
policies_open(const char *path, struct policy_store **out, char *err, size_t errlen)
{
	struct policy_store *ps = calloc(1, sizeof(*ps));

	*out = NULL;
	if (ps == NULL || db_handle_init(&ps->h, path, 0, 5000) != 0 ||
	    (ps->backup = policies_backup_path(path)) == NULL) {
		policies_close(ps);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*out = ps;
	return 0;
}

void
policies_close(struct policy_store *ps)
{
	if (ps == NULL)
		return;
	db_handle_fini(&ps->h);
	free(ps->backup);
	free(ps);
}

const char *
policies_errmsg(struct policy_store *ps)
{
	return db_handle_errmsg(&ps->h);
}

/* ---- the backup: the newest version, in its own file ---- */

char *
policies_backup_path(const char *db_path)
{
	size_t n = strlen(db_path) + sizeof(BACKUP_SUFFIX);
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s%s", db_path, BACKUP_SUFFIX);
	return p;
}

/* Replace the backup with r: a new file, flushed, renamed over the old. */
static int
backup_write(const char *path, const struct policy_row *r)
{
	json_t *j = json_pack("{s:I, s:s, s:I, s:s, s:s}", "version", (json_int_t)r->version,
	    "document", r->document, "set_at_us", (json_int_t)r->set_at_us, "author", r->author,
	    "sha256", r->sha256);
	size_t n = strlen(path) + 5;
	char *tmp = malloc(n);
	int rc = -1;
	FILE *f;

	if (j == NULL || tmp == NULL)
		goto out;
	snprintf(tmp, n, "%s.new", path);
	if ((f = fopen(tmp, "we")) == NULL)
		goto out;
#ifndef _WIN32
	(void)fchmod(fileno(f), 0640);
#endif
	rc = json_dumpf(j, f, JSON_COMPACT) == 0 && fflush(f) == 0 && platform_fsync(f) == 0 ? 0
											     : -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0)
		(void)remove(tmp);
out:
	if (rc != 0)
		log_warnx("policy: cannot write its backup %s: %s", path, err_str(errno));
	json_decref(j);
	free(tmp);
	return rc;
}

int
policies_read_backup(const char *path, struct policy_row *out)
{
	json_error_t e;
	json_t *j;
	json_int_t version = 0, at = 0;
	const char *doc = NULL, *author = "", *sha = "";
	FILE *f;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : -1;
	if ((j = json_loadf(f, 0, &e)) == NULL) {
		log_warnx("policy: the backup %s is not readable JSON (%s): ignored", path, e.text);
		fclose(f);
		return -1;
	}
	fclose(f);
	if (json_unpack_ex(j, &e, 0, "{s:I, s:s, s?I, s?s, s?s}", "version", &version, "document",
		&doc, "set_at_us", &at, "author", &author, "sha256", &sha) != 0 ||
	    version <= 0 || strlen(doc) > BACKUP_MAX) {
		log_warnx(
		    "policy: the backup %s is not a policy version (%s): ignored", path, e.text);
		goto out;
	}
	out->version = (uint64_t)version;
	out->set_at_us = (int64_t)at;
	out->document = strdup(doc);
	out->author = strdup(author);
	snprintf(out->sha256, sizeof(out->sha256), "%s", sha);
	if (out->document == NULL || out->author == NULL) {
		policy_row_free(out);
		goto out;
	}
	rc = 1;
out:
	json_decref(j);
	return rc;
}

static int
row_from(sqlite3_stmt *st, struct policy_row *r)
{
	const char *doc = (const char *)sqlite3_column_text(st, 1);
	const char *author = (const char *)sqlite3_column_text(st, 3);
	const char *sha = (const char *)sqlite3_column_text(st, 4);

	memset(r, 0, sizeof(*r));
	r->version = (uint64_t)sqlite3_column_int64(st, 0);
	r->set_at_us = sqlite3_column_int64(st, 2);
	r->document = strdup(doc != NULL ? doc : "");
	r->author = strdup(author != NULL ? author : "");
	snprintf(r->sha256, sizeof(r->sha256), "%s", sha != NULL ? sha : "");
	if (r->document == NULL || r->author == NULL) {
		policy_row_free(r);
		return -1;
	}
	return 0;
}

#define COLUMNS "version, document, set_at_us, author, sha256"

static int
one_row(sqlite3 *db, const char *sql, int64_t arg, struct policy_row *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (arg >= 0)
		sqlite3_bind_int64(st, 1, arg);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = row_from(st, out) == 0 ? 1 : -1;
	else
		rc = rc == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

/* Put the backup's version into an empty database. */
static void
restore_backup(struct policy_store *ps, sqlite3 *db, const struct policy_row *b)
{
	sqlite3_stmt *st;
	int rc = SQLITE_ERROR;

	if (sqlite3_prepare_v2(db,
		"INSERT INTO policies (version, document, set_at_us, author, sha256)"
		" VALUES (?1, ?2, ?3, ?4, ?5)",
		-1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)b->version);
		sqlite3_bind_text(st, 2, b->document, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, b->set_at_us);
		sqlite3_bind_text(st, 4, b->author, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, b->sha256, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_DONE)
		log_warnx("policy: the database held none: version %llu restored from %s",
		    (unsigned long long)b->version, ps->backup);
	else
		log_warnx("policy: cannot restore version %llu from %s into the database: %s",
		    (unsigned long long)b->version, ps->backup, sqlite3_errmsg(db));
}

int
policies_latest(struct policy_store *ps, struct policy_row *out)
{
	sqlite3 *db = db_handle_get(&ps->h);
	int rc = db != NULL
		     ? one_row(db, "SELECT " COLUMNS " FROM policies ORDER BY version DESC LIMIT 1",
			   -1, out)
		     : -1;
	int b;

	if (rc == 1)
		return 1;
	/* None in the database (a new file), or no database: the backup. */
	if ((b = policies_read_backup(ps->backup, out)) != 1)
		return rc == 0 && b == 0 ? 0 : -1;
	if (rc == 0)
		restore_backup(ps, db, out);
	else
		log_warnx("policy: the database cannot be read (%s): version %llu from %s",
		    policies_errmsg(ps), (unsigned long long)out->version, ps->backup);
	return 1;
}

int
policies_get(struct policy_store *ps, uint64_t version, struct policy_row *out)
{
	sqlite3 *db = db_handle_get(&ps->h);
	int rc = db != NULL ? one_row(db, "SELECT " COLUMNS " FROM policies WHERE version = ?1",
				  (int64_t)version, out)
			    : -1;

	if (rc == 1)
		return 1;
	/* The newest version is in the backup too, whatever became of the database. */
	if (policies_read_backup(ps->backup, out) == 1) {
		if (out->version == version)
			return 1;
		policy_row_free(out);
	}
	return rc;
}

void
policies_keep_backup(struct policy_store *ps, const struct policy_row *r)
{
	struct policy_row b;
	int found = policies_read_backup(ps->backup, &b);
	int same = found == 1 && b.version == r->version && strcmp(b.sha256, r->sha256) == 0;

	if (found == 1)
		policy_row_free(&b);
	if (!same)
		(void)backup_write(ps->backup, r);
}

int64_t
policies_append(struct policy_store *ps, const char *document, const char *author, int64_t at_us)
{
	sqlite3 *db = db_handle_get(&ps->h);
	sqlite3_stmt *st = NULL;
	int64_t version = -1;
	char sha[65];

	/* IMMEDIATE: take the write lock before reading the newest version. */
	if (db == NULL || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	policies_sha256(document, sha);
	if (sqlite3_prepare_v2(db,
		"INSERT INTO policies (version, document, set_at_us, author, sha256)"
		" SELECT coalesce(max(version), 0) + 1, ?1, ?2, ?3, ?4 FROM policies"
		" RETURNING version",
		-1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, document, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, at_us);
	sqlite3_bind_text(st, 3, author, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, sha, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	version = sqlite3_column_int64(st, 0);
	if (sqlite3_step(st) != SQLITE_DONE)
		version = -1;
	sqlite3_finalize(st);
	st = NULL;
	/* History is kept by count: the oldest go in the same transaction. */
	if (version > 0 && ps->keep > 0 && version > (int64_t)ps->keep) {
		char sql[96];

		snprintf(sql, sizeof(sql), "DELETE FROM policies WHERE version <= %lld",
		    (long long)(version - ps->keep));
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			version = -1;
	}
out:
	sqlite3_finalize(st);
	if (version > 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
		struct policy_row r = {
		    (uint64_t)version, (char *)document, at_us, (char *)author, ""};

		memcpy(r.sha256, sha, sizeof(sha));
		(void)backup_write(ps->backup, &r);
		return version;
	}
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
policies_history(struct policy_store *ps, uint64_t below, unsigned limit,
    int (*fn)(void *arg, const struct policy_row *r), void *arg)
{
	sqlite3 *db = db_handle_get(&ps->h);
	sqlite3_stmt *st;
	int rc, failed = 0;

	if (db == NULL || sqlite3_prepare_v2(db,
			      "SELECT " COLUMNS " FROM policies WHERE ?1 = 0 OR version < ?1"
			      " ORDER BY version DESC LIMIT ?2",
			      -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)below);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct policy_row r;

		if (row_from(st, &r) != 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		rc = fn(arg, &r);
		policy_row_free(&r);
		if (rc != 0) {
			/* Stopping early is fine; the callback failing is not. */
			failed = rc < 0;
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE && !failed ? 0 : -1;
}

void
policies_set_keep(struct policy_store *ps, unsigned keep)
{
	ps->keep = keep;
}
