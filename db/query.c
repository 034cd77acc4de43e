/*
 * query.c: reading the connection record (query.h).
 */
#include "query.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "schema.h"

struct query {
	struct db_handle h; /* read-only */
};

#define TOKEN_VERSION 1

static const char row_columns[] =
    "id, opened_at_us, closed_at_us, family, client_addr, client_port, orig_dst_addr,"
    " orig_dst_port, upstream_local_addr, upstream_local_port, redirect_state,"
    " redirect_records, redirect_context, records_mark, verdict, state, bytes_up, bytes_down,"
    " connect_us, close_reason, error, uid, pid, exe, policy_version, rule_id, server_name,"
    " server_name_source";

int
query_filter_check(const struct conn_filter *f, char *err, size_t errlen)
{
	enum conn_state st;
	enum conn_verdict v;
	enum redirect_state rs;
	char names[128];

	if (f->state[0] != '\0' && conn_state_parse(f->state, &st) != 0) {
		snprintf(err, errlen, "state: '%s' is not one of %s", f->state,
		    conn_names_join(conn_state_names, names, sizeof(names)));
		return -EINVAL;
	}
	if (f->verdict[0] != '\0' && conn_verdict_parse(f->verdict, &v) != 0) {
		snprintf(err, errlen, "verdict: '%s' is not one of %s", f->verdict,
		    conn_names_join(conn_verdict_names, names, sizeof(names)));
		return -EINVAL;
	}
	if (f->redirect_state[0] != '\0' && redirect_state_parse(f->redirect_state, &rs) != 0) {
		snprintf(err, errlen, "redirect_state: '%s' is not one of %s", f->redirect_state,
		    conn_names_join(redirect_state_names, names, sizeof(names)));
		return -EINVAL;
	}
	if (f->until_us != 0 && f->since_us > f->until_us) {
		snprintf(err, errlen, "since is after until");
		return -EINVAL;
	}
	return 0;
}

int
query_open(const char *path, struct query **out, char *err, size_t errlen)
{
	struct query *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (q == NULL || db_handle_init(&q->h, path, 1, 2000) != 0) {
		free(q);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*out = q;
	return 0;
}

void
query_close(struct query *q)
{
	if (q == NULL)
		return;
	db_handle_fini(&q->h);
	free(q);
}

const char *
query_errmsg(struct query *q)
{
	return db_handle_errmsg(&q->h);
}

static uint32_t
fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

/* FNV-1a over the filter's fields: a token only continues the query that made it. */
static uint32_t
filter_hash(const struct conn_filter *f)
{
	uint32_t h = 2166136261u;

	h = fnv(h, &f->since_us, sizeof(f->since_us));
	h = fnv(h, &f->until_us, sizeof(f->until_us));
	if (f->has_cidr) {
		h = fnv(h, &f->dst.family, sizeof(f->dst.family));
		h = fnv(h, f->dst.addr, sizeof(f->dst.addr));
		h = fnv(h, &f->dst.prefix, sizeof(f->dst.prefix));
	}
	h = fnv(h, &f->dst_port, sizeof(f->dst_port));
	h = fnv(h, f->state, strlen(f->state) + 1);
	h = fnv(h, f->verdict, strlen(f->verdict) + 1);
	return fnv(h, f->redirect_state, strlen(f->redirect_state) + 1);
}

void
query_token_encode(const struct conn_filter *f, uint64_t last_id, char out[QUERY_TOKEN_LEN + 1])
{
	snprintf(out, QUERY_TOKEN_LEN + 1, "%02x%016" PRIx64 "%08" PRIx32 "%014x", TOKEN_VERSION,
	    last_id, filter_hash(f), 0u);
}

int
query_token_decode(const struct conn_filter *f, const char *token, uint64_t *last_id)
{
	unsigned version;
	uint64_t id;
	uint32_t hash;
	char tail[15];

	if (strlen(token) != QUERY_TOKEN_LEN ||
	    strspn(token, "0123456789abcdef") != QUERY_TOKEN_LEN)
		return -EINVAL;
	if (sscanf(token, "%2x%16" SCNx64 "%8" SCNx32 "%14s", &version, &id, &hash, tail) != 4 ||
	    version != TOKEN_VERSION || hash != filter_hash(f) || id == 0)
		return -EINVAL;
	*last_id = id;
	return 0;
}

static const char *
text_or_empty(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

static int64_t
int_or(sqlite3_stmt *st, int i, int64_t dflt)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? dflt : sqlite3_column_int64(st, i);
}

static void
read_row(sqlite3_stmt *st, struct conn_row *r)
{
	r->seq = 0;
	r->id = (uint64_t)sqlite3_column_int64(st, 0);
	r->opened_at_us = sqlite3_column_int64(st, 1);
	r->closed_at_us = int_or(st, 2, 0);
	r->family = (unsigned)sqlite3_column_int(st, 3);
	r->client_addr = text_or_empty(st, 4);
	r->client_port = (unsigned)sqlite3_column_int(st, 5);
	r->orig_dst_addr = text_or_empty(st, 6);
	r->orig_dst_port = (unsigned)sqlite3_column_int(st, 7);
	r->upstream_local_addr = text_or_empty(st, 8);
	r->upstream_local_port = (unsigned)sqlite3_column_int(st, 9);
	r->redirect_state = text_or_empty(st, 10);
	r->redirect_records = sqlite3_column_blob(st, 11);
	r->redirect_records_len = (size_t)sqlite3_column_bytes(st, 11);
	r->redirect_context = sqlite3_column_blob(st, 12);
	r->redirect_context_len = (size_t)sqlite3_column_bytes(st, 12);
	r->records_mark = (uint32_t)sqlite3_column_int64(st, 13);
	r->verdict = text_or_empty(st, 14);
	r->state = text_or_empty(st, 15);
	r->bytes_up = (uint64_t)sqlite3_column_int64(st, 16);
	r->bytes_down = (uint64_t)sqlite3_column_int64(st, 17);
	r->connect_us = int_or(st, 18, -1);
	r->close_reason = text_or_empty(st, 19);
	r->error = text_or_empty(st, 20);
	r->uid = int_or(st, 21, -1);
	r->pid = int_or(st, 22, -1);
	r->exe = text_or_empty(st, 23);
	r->policy_version = (uint64_t)int_or(st, 24, 0);
	r->rule_id = text_or_empty(st, 25);
	r->server_name = text_or_empty(st, 26);
	r->server_name_source = text_or_empty(st, 27);
	r->at_us = 0;
}

/* The first and last address of a CIDR block, as stored in orig_dst_bin. */
static size_t
cidr_bounds(const struct cidr *c, uint8_t lo[16], uint8_t hi[16])
{
	size_t len = c->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < len; i++) {
		unsigned bits = c->prefix > i * 8 ? c->prefix - (unsigned)(i * 8) : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00u >> bits);

		lo[i] = c->addr[i] & mask;
		hi[i] = (uint8_t)(c->addr[i] | ~mask);
	}
	return len;
}

int
query_list_connections(struct query *q, const struct conn_filter *f, unsigned page_size,
    const char *token, char next_token[QUERY_TOKEN_LEN + 1], conn_row_cb cb, void *arg, char *err,
    size_t errlen)
{
	char sql[1024];
	size_t off;
	sqlite3_stmt *st = NULL;
	uint64_t after = 0, last = 0;
	uint8_t lo[16], hi[16];
	size_t blen = 0;
	int n = 0, rc;
	sqlite3 *db = db_handle_get(&q->h);

	next_token[0] = '\0';
	if (db == NULL)
		goto dberr;
	if (token != NULL && token[0] != '\0' && query_token_decode(f, token, &after) != 0) {
		snprintf(err, errlen, "page_token is malformed or belongs to another query");
		return -EINVAL;
	}
	if (page_size == 0)
		page_size = QUERY_PAGE_DEFAULT;
	if (page_size > QUERY_PAGE_MAX)
		page_size = QUERY_PAGE_MAX;

	/* Fixed text with ?N placeholders: outside values are only ever bound. */
	off = (size_t)snprintf(sql, sizeof(sql), "SELECT %s FROM connections WHERE 1", row_columns);
#define ADD(clause) off += (size_t)snprintf(sql + off, sizeof(sql) - off, "%s", clause)
	if (after != 0)
		ADD(" AND id < ?1");
	if (f->since_us != 0)
		ADD(" AND opened_at_us >= ?2");
	if (f->until_us != 0)
		ADD(" AND opened_at_us < ?3");
	if (f->has_cidr)
		ADD(" AND orig_dst_bin BETWEEN ?4 AND ?5 AND length(orig_dst_bin) = ?6");
	if (f->dst_port != 0)
		ADD(" AND orig_dst_port = ?7");
	if (f->state[0] != '\0')
		ADD(" AND state = ?8");
	if (f->verdict[0] != '\0')
		ADD(" AND verdict = ?9");
	if (f->redirect_state[0] != '\0')
		ADD(" AND redirect_state = ?10");
	ADD(" ORDER BY id DESC LIMIT ?11");
#undef ADD

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	sqlite3_bind_int64(st, 2, f->since_us);
	sqlite3_bind_int64(st, 3, f->until_us);
	if (f->has_cidr) {
		blen = cidr_bounds(&f->dst, lo, hi);
		sqlite3_bind_blob(st, 4, lo, (int)blen, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, hi, (int)blen, SQLITE_STATIC);
		sqlite3_bind_int(st, 6, (int)blen);
	}
	sqlite3_bind_int(st, 7, f->dst_port);
	sqlite3_bind_text(st, 8, f->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, f->verdict, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, f->redirect_state, -1, SQLITE_STATIC);
	/* One more than the page tells whether another page follows. */
	sqlite3_bind_int(st, 11, (int)page_size + 1);

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct conn_row r;
		int c;

		if ((unsigned)n == page_size) {
			query_token_encode(f, last, next_token);
			break;
		}
		read_row(st, &r);
		last = r.id;
		n++;
		if ((c = cb(arg, &r)) != 0) {
			sqlite3_finalize(st);
			return c;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	return n;
dberr:
	snprintf(err, errlen, "database: %s", db_handle_errmsg(&q->h));
	sqlite3_finalize(st);
	return -EIO;
}

int
query_get_connection(struct query *q, uint64_t id, conn_row_cb cb, void *arg)
{
	char sql[512];
	sqlite3_stmt *st;
	int rc, found = 0;
	sqlite3 *db = db_handle_get(&q->h);

	snprintf(sql, sizeof(sql), "SELECT %s FROM connections WHERE id = ?1", row_columns);
	if (db == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct conn_row r;

		read_row(st, &r);
		found = 1;
		cb(arg, &r);
	} else if (rc != SQLITE_DONE) {
		found = -EIO;
	}
	sqlite3_finalize(st);
	return found;
}

int
query_events_after(struct query *q, uint64_t after, unsigned limit, conn_row_cb cb, void *arg)
{
	/* The columns in read_row's order: the event's own values for what
	 * changes, the connection's for what does not; then the sequence. */
	static const char sql[] =
	    "SELECT e.conn_id, c.opened_at_us, e.closed_at_us, c.family, c.client_addr,"
	    " c.client_port, c.orig_dst_addr, c.orig_dst_port, e.upstream_local_addr,"
	    " e.upstream_local_port, c.redirect_state, c.redirect_records, c.redirect_context,"
	    " c.records_mark, e.verdict, e.state, e.bytes_up, e.bytes_down, e.connect_us,"
	    " e.close_reason, e.error, c.uid, c.pid, c.exe, c.policy_version, c.rule_id,"
	    " c.server_name, c.server_name_source, e.seq, e.at_us"
	    " FROM connection_events e LEFT JOIN connections c ON c.id = e.conn_id"
	    " WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2";
	sqlite3_stmt *st;
	int n = 0, rc;
	sqlite3 *db = db_handle_get(&q->h);

	if (db == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	sqlite3_bind_int(st, 2, (int)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct conn_row r;

		read_row(st, &r);
		r.seq = (uint64_t)sqlite3_column_int64(st, 28);
		r.at_us = sqlite3_column_int64(st, 29);
		n++;
		if (cb(arg, &r) != 0)
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -EIO;
}

int64_t
query_oldest_event(struct query *q)
{
	sqlite3_stmt *st;
	int64_t seq = -1;
	sqlite3 *db = db_handle_get(&q->h);

	if (db == NULL ||
	    sqlite3_prepare_v2(db, "SELECT coalesce(MIN(seq), 0) FROM connection_events", -1, &st,
		NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return seq;
}

int
query_judged(struct query *q, unsigned last, conn_row_cb cb, void *arg)
{
	/* The connections a policy judged (a loop or a refusal was not judged):
	 * redirect state none or by_other, a verdict that is a policy action. */
	static const char sql[] =
	    "SELECT id, family, orig_dst_addr, orig_dst_port, redirect_state, verdict,"
	    " server_name, coalesce(uid, -1), exe"
	    " FROM connections WHERE verdict IN (?2, ?3, ?4, ?5) AND redirect_state IN (?6, ?7)"
	    " ORDER BY id DESC LIMIT ?1";
	sqlite3_stmt *st;
	int n = 0, rc;
	sqlite3 *db = db_handle_get(&q->h);

	if (db == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int(st, 1, (int)last);
	sqlite3_bind_text(st, 2, conn_verdict_name(VERDICT_ALLOW), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, conn_verdict_name(VERDICT_BLOCK), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, conn_verdict_name(VERDICT_BYPASS), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, conn_verdict_name(VERDICT_FORWARD), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, redirect_state_name(REDIRECT_NONE), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, redirect_state_name(REDIRECT_BY_OTHER), -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct conn_row r;

		memset(&r, 0, sizeof(r));
		r.id = (uint64_t)sqlite3_column_int64(st, 0);
		r.family = (unsigned)sqlite3_column_int(st, 1);
		r.orig_dst_addr = text_or_empty(st, 2);
		r.orig_dst_port = (unsigned)sqlite3_column_int(st, 3);
		r.redirect_state = text_or_empty(st, 4);
		r.verdict = text_or_empty(st, 5);
		r.server_name = text_or_empty(st, 6);
		r.uid = sqlite3_column_int64(st, 7);
		r.exe = text_or_empty(st, 8);
		r.client_addr = r.upstream_local_addr = r.state = r.close_reason = r.error = "";
		r.rule_id = r.server_name_source = "";
		n++;
		if (cb(arg, &r) != 0)
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -EIO;
}
