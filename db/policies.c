/*
 * policies.c: the policy history (policies.h).
 */
#include "policies.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

struct policy_store {
	sqlite3 *db; /* read-write, the policies table only */
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
	if (ps == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* The record's writer commits every few ms: wait for it, briefly. */
	if (db_open(path, 0, 0, 5000, &ps->db, err, errlen) != 0) {
		free(ps);
		return -EIO;
	}
	*out = ps;
	return 0;
}

void
policies_close(struct policy_store *ps)
{
	if (ps == NULL)
		return;
	sqlite3_close(ps->db);
	free(ps);
}

const char *
policies_errmsg(struct policy_store *ps)
{
	return sqlite3_errmsg(ps->db);
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

int
policies_latest(struct policy_store *ps, struct policy_row *out)
{
	return one_row(
	    ps->db, "SELECT " COLUMNS " FROM policies ORDER BY version DESC LIMIT 1", -1, out);
}

int
policies_get(struct policy_store *ps, uint64_t version, struct policy_row *out)
{
	return one_row(
	    ps->db, "SELECT " COLUMNS " FROM policies WHERE version = ?1", (int64_t)version, out);
}

int64_t
policies_append(struct policy_store *ps, const char *document, const char *author, int64_t at_us)
{
	sqlite3 *db = ps->db;
	sqlite3_stmt *st = NULL;
	int64_t version = -1;
	char sha[65];

	/* IMMEDIATE: take the write lock before reading the newest version. */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
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
out:
	sqlite3_finalize(st);
	if (version > 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return version;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
policies_history(
    struct policy_store *ps, int (*fn)(void *arg, const struct policy_row *r), void *arg)
{
	sqlite3_stmt *st;
	int rc, failed = 0;

	if (sqlite3_prepare_v2(ps->db, "SELECT " COLUMNS " FROM policies ORDER BY version DESC", -1,
		&st, NULL) != SQLITE_OK)
		return -1;
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
