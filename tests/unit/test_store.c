/* Unit tests: schema migrations, batched writes, crash recovery, retention, a full queue (db/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "outbox.h"
#include "policies.h"
#include "retention.h"
#include "schema.h"
#include "store.h"

static char dir[] = "/tmp/ra-store-XXXXXX";
static char path[256];

static int
setup(void **state)
{
	(void)state;
	memcpy(dir, "/tmp/ra-store-XXXXXX", sizeof(dir));
	if (mkdtemp(dir) == NULL)
		return -1;
	/* a directory that does not exist yet: store_open creates it */
	snprintf(path, sizeof(path), "%s/sub/agent.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct store *
open_store(unsigned queue_size, unsigned retention_days, uint64_t max_rows)
{
	struct store_options o = {.path = path,
	    .queue_size = queue_size,
	    .retention_days = retention_days,
	    .max_rows = max_rows};
	struct store *st = NULL;
	char err[256];

	if (store_open(&st, &o, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	return st;
}

static sqlite3 *
open_db(void)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static int64_t
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static struct conn_record
record(uint64_t id, enum conn_state state, int64_t opened_us)
{
	struct conn_record r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.opened_at_us = opened_us;
	r.client.family = AF_INET;
	r.client.port = 40000;
	inet_pton(AF_INET, "10.0.0.1", r.client.addr);
	r.orig_dst.family = AF_INET;
	r.orig_dst.port = 443;
	inet_pton(AF_INET, "192.0.2.10", r.orig_dst.addr);
	r.redirect_state = REDIRECT_NONE;
	r.verdict = VERDICT_ALLOW;
	r.state = state;
	r.connect_us = -1;
	r.uid = -1;
	r.pid = -1;
	return r;
}

static void
test_migrations(void **state)
{
	struct store *st = open_store(0, 0, 0);
	sqlite3 *db;
	char err[256];

	(void)state;
	store_close(st);
	db = open_db();
	assert_int_equal(schema_version(db), schema_latest_version());
	assert_int_equal(
	    query_int(db, "SELECT count(*) FROM pragma_table_info('connections')"
			  " WHERE name IN ('id','opened_at_us','closed_at_us','family',"
			  "'client_addr','client_port','orig_dst_addr','orig_dst_port',"
			  "'upstream_local_addr','upstream_local_port','redirect_state',"
			  "'redirect_records','redirect_context','records_mark','verdict',"
			  "'state','bytes_up','bytes_down','connect_us','close_reason',"
			  "'error','uid','pid','exe')"),
	    24);
	assert_int_equal(query_int(db, "SELECT count(*) FROM pragma_index_list('connections')"
				       " WHERE name LIKE 'connections_%'"),
	    3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM pragma_journal_mode WHERE "
				       "journal_mode = 'wal'"),
	    1);
	/* the state CHECK holds for every writer, the agent's too */
	assert_int_equal(sqlite3_exec(db,
			     "INSERT INTO connections (id, opened_at_us, family, client_addr,"
			     " client_port, redirect_state, verdict, state)"
			     " VALUES (1, 1, 4, '10.0.0.1', 1, 'none', 'allow', 'bogus')",
			     NULL, NULL, NULL),
	    SQLITE_CONSTRAINT);
	/* running the migrations again changes nothing */
	assert_int_equal(schema_migrate(db, err, sizeof(err)), 0);
	assert_int_equal(schema_version(db), schema_latest_version());

	/* a database from a newer agent is not touched: the store runs without
	 * one, and says why */
	assert_int_equal(
	    sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	{
		struct store_options o = {.path = path};
		struct store *s2 = NULL;
		struct store_stats ss;
		struct conn_record r;

		assert_int_equal(store_open(&s2, &o, err, sizeof(err)), 0);
		r = record(store_next_id(s2), CONN_OPEN, 1000);
		store_submit(s2, &r);
		assert_int_equal(store_flush(s2, 5000), 0);
		store_get_stats(s2, &ss);
		assert_non_null(strstr(ss.write_error, "newer than this agent"));
		assert_int_equal(ss.events_dropped, 1);
		assert_int_equal(ss.rows_written, 0);
		store_close(s2);
	}
	db = open_db();
	assert_int_equal(schema_version(db), 999);
	sqlite3_close(db);
}

/* Open then close 2000 connections: every event committed, in far fewer transactions. */
static void
test_batching(void **state)
{
	struct store *st = open_store(0, 0, 0);
	struct store_stats s;
	sqlite3 *db;
	enum { N = 2000 };

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		struct conn_record r = record(store_next_id(st), CONN_OPEN, 1000 + i);

		store_submit(st, &r);
		r.state = CONN_CLOSED;
		r.closed_at_us = 2000 + i;
		r.bytes_up = i;
		r.bytes_down = 2 * i;
		r.close_reason = "completed";
		store_submit(st, &r);
	}
	assert_int_equal(store_flush(st, 10000), 0);
	store_get_stats(st, &s);
	assert_int_equal(s.submitted, 2 * N);
	assert_int_equal(s.rows_written, 2 * N);
	assert_int_equal(s.events_dropped, 0);
	assert_true(s.batches >= 1 && s.batches < N);
	store_close(st);

	db = open_db();
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections"), N);
	assert_int_equal(
	    query_int(db, "SELECT count(*) FROM connections WHERE state = 'closed'"
			  " AND bytes_down = 2 * bytes_up AND closed_at_us - opened_at_us"
			  " = 1000 AND close_reason = 'completed'"),
	    N);
	assert_int_equal(
	    query_int(db, "SELECT count(*) FROM connections WHERE orig_dst_addr ="
			  " '192.0.2.10' AND orig_dst_port = 443 AND hex(orig_dst_bin) ="
			  " 'C000020A' AND client_addr = '10.0.0.1' AND uid IS NULL"),
	    N);
	sqlite3_close(db);
}

/* A crash leaves rows open; the next start marks them interrupted and keeps ids unique. */
static void
test_recovery(void **state)
{
	struct store *st = open_store(0, 0, 0);
	struct store_stats s;
	struct conn_record r;
	sqlite3 *db;

	(void)state;
	r = record(store_next_id(st), CONN_OPEN, 1);
	store_submit(st, &r);
	r = record(store_next_id(st), CONN_RELAYING, 2);
	store_submit(st, &r);
	r = record(store_next_id(st), CONN_CLOSED, 3);
	store_submit(st, &r);
	store_close(st); /* closing the store commits: the "crash" is the missing close events */

	st = open_store(0, 0, 0);
	store_get_stats(st, &s);
	assert_int_equal(s.interrupted_at_start, 2);
	assert_int_equal(store_next_id(st), 4);
	store_close(st);

	db = open_db();
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections WHERE state ="
				       " 'interrupted' AND close_reason IS NOT NULL"),
	    2);
	assert_int_equal(query_int(db, "SELECT state = 'closed' FROM connections WHERE id = 3"), 1);
	sqlite3_close(db);
}

static void
test_retention(void **state)
{
	struct store *st = open_store(0, 0, 0);
	struct retention_policy p = {.days = 1, .max_rows = 0, .batch = 7};
	int64_t now = (int64_t)1800000000 * 1000000;
	int64_t day = (int64_t)86400 * 1000000;
	sqlite3 *db;
	int d, total = 0;

	(void)state;
	/* 20 old closed rows, 1 old row still open, 10 fresh closed rows */
	for (unsigned i = 0; i < 20; i++) {
		struct conn_record r = record(store_next_id(st), CONN_CLOSED, now - 2 * day);

		store_submit(st, &r);
	}
	{
		struct conn_record r = record(store_next_id(st), CONN_RELAYING, now - 3 * day);

		store_submit(st, &r);
	}
	for (unsigned i = 0; i < 10; i++) {
		struct conn_record r = record(store_next_id(st), CONN_CLOSED, now - 60000000);

		store_submit(st, &r);
	}
	store_close(st);

	db = open_db();
	/* small batches (at most 7 rows of each table), then nothing */
	assert_int_equal(query_int(db, "SELECT count(*) FROM connection_events"), 31);
	while ((d = retention_prune_batch(db, &p, now)) > 0) {
		assert_true(d <= 14);
		total += d;
	}
	assert_int_equal(d, 0);
	/* 20 old rows, and every event (all committed before "now" minus a day) */
	assert_int_equal(total, 20 + 31);
	assert_int_equal(query_int(db, "SELECT count(*) FROM connection_events"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections"), 11);
	assert_int_equal(
	    query_int(db, "SELECT count(*) FROM connections WHERE state = 'relaying'"), 1);

	/* the row cap keeps the newest rows, and never prunes an open one (id 21) */
	p = (struct retention_policy){.days = 0, .max_rows = 4, .batch = 100};
	assert_int_equal(retention_prune_batch(db, &p, now), 6);
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections"), 5);
	assert_int_equal(
	    query_int(db, "SELECT min(id) FROM connections WHERE state = 'closed'"), 28);
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections WHERE id = 21"), 1);
	assert_int_equal(retention_prune_batch(db, &p, now), 0);

	p = (struct retention_policy){.days = 0, .max_rows = 0, .batch = 100};
	assert_int_equal(retention_prune_batch(db, &p, now), 0);

	/* The refusal counts: by age, then capped at max_rows (the newest seconds kept). */
	assert_int_equal(sqlite3_exec(db,
			     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
			     " WHERE i < 30) INSERT INTO refused_connections (at_us, uid, reason,"
			     " count) SELECT 1800000000000000 - i * 3600000000, 1000,"
			     " 'not redirected', i FROM n",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	/* 30 hourly rows: 6 are over a day old */
	p = (struct retention_policy){.days = 1, .max_rows = 0, .batch = 100};
	assert_int_equal(retention_prune_batch(db, &p, now), 6);
	assert_int_equal(query_int(db, "SELECT count(*) FROM refused_connections"), 24);
	p = (struct retention_policy){.days = 0, .max_rows = 10, .batch = 4};
	while (retention_prune_batch(db, &p, now) > 0)
		;
	assert_int_equal(query_int(db, "SELECT count(*) FROM refused_connections"), 10);
	assert_int_equal(query_int(db, "SELECT max(count) FROM refused_connections"), 10);
	sqlite3_close(db);
}

/*
 * With the database locked, a small queue fills. Events that open a
 * connection are dropped (counted) once 7/8 of it is taken; final events
 * take the rest, and beyond it are handed back (-EAGAIN), never dropped.
 */
static void
test_queue_full(void **state)
{
	struct store *st = open_store(16, 0, 0);
	struct store_stats s;
	sqlite3 *locker;
	unsigned queued = 0, dropped = 0, finals = 0, again = 0;
	enum { N = 100 };

	(void)state;
	locker = open_db();
	assert_int_equal(sqlite3_exec(locker, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	usleep(100000); /* the writer takes what it can, then waits on the lock */
	for (unsigned i = 0; i < N; i++) {
		struct conn_record r = record(store_next_id(st), CONN_OPEN, i + 1);
		int rc = store_submit(st, &r);

		assert_true(rc == 0 || rc == -ENOSPC);
		queued += rc == 0;
		dropped += rc == -ENOSPC;
	}
	for (unsigned i = 0; i < 10; i++) {
		struct conn_record r = record(store_next_id(st), CONN_CLOSED, 1000 + i);
		int rc = store_submit(st, &r);

		assert_true(rc == 0 || rc == -EAGAIN);
		finals += rc == 0;
		again += rc == -EAGAIN;
	}
	store_get_stats(st, &s);
	assert_true(dropped > 0);
	assert_int_equal(s.events_dropped, dropped);
	assert_true(s.queue_high_water <= 16);
	assert_int_equal(finals, 2); /* the eighth kept for them */
	assert_int_equal(again, 8);  /* handed back, not counted as dropped */
	assert_int_equal(sqlite3_exec(locker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(locker);

	assert_int_equal(store_flush(st, 10000), 0);
	store_get_stats(st, &s);
	assert_int_equal(s.submitted, N + finals);
	assert_int_equal(s.rows_written + s.events_dropped, N + finals);
	{ /* room again: a handed-back final goes in */
		struct conn_record r = record(store_next_id(st), CONN_CLOSED, 2000);

		assert_int_equal(store_submit(st, &r), 0);
		assert_int_equal(store_flush(st, 10000), 0);
	}
	store_close(st);

	locker = open_db();
	assert_int_equal(
	    query_int(locker, "SELECT count(*) FROM connections"), (int64_t)s.rows_written + 1);
	sqlite3_close(locker);
}

/* A database made by the first schema version is upgraded in place, data intact. */
static void
test_upgrade_from_v1(void **state)
{
	struct store *st;
	struct store_stats stats;
	sqlite3 *db;
	char err[256], cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/sub'", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(schema_migrate_to(db, 1, err, sizeof(err)), 0);
	assert_int_equal(schema_version(db), 1);
	/* rows as version 1 wrote them: one closed, one left open by a crash */
	assert_int_equal(
	    sqlite3_exec(db,
		"INSERT INTO connections (id, opened_at_us, closed_at_us, family,"
		" client_addr, client_port, orig_dst_addr, orig_dst_port, orig_dst_bin,"
		" redirect_state, verdict, state, bytes_up, bytes_down, close_reason)"
		" VALUES (7, 100, 200, 4, '10.0.0.1', 4000, '192.0.2.1', 443,"
		" X'C0000201', 'none', 'allow', 'closed', 11, 22, 'completed'),"
		" (8, 300, NULL, 4, '10.0.0.1', 4001, '192.0.2.2', 80, X'C0000202',"
		" 'none', 'allow', 'relaying', 0, 0, NULL)",
		NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	st = open_store(0, 0, 0); /* the current code: migrates, recovers */
	store_get_stats(st, &stats);
	assert_int_equal(stats.interrupted_at_start, 1);
	assert_int_equal(store_next_id(st), 9);
	assert_int_equal(store_last_sequence(st), 1); /* the interrupted row's event */
	assert_int_equal(strlen(store_agent_uuid(st)), STORE_UUID_LEN);
	store_close(st);

	db = open_db();
	assert_int_equal(schema_version(db), schema_latest_version());
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections WHERE id = 7 AND"
				       " bytes_up = 11 AND bytes_down = 22 AND orig_dst_addr ="
				       " '192.0.2.1' AND state = 'closed'"),
	    1);
	assert_int_equal(
	    query_int(db, "SELECT state = 'interrupted' FROM connections WHERE id = 8"), 1);
	/* The crash's victim ends like any connection: an event the export ships. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM connection_events WHERE conn_id = 8"
				       " AND state = 'interrupted'"),
	    1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM connection_events"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM pragma_integrity_check"
				       " WHERE integrity_check = 'ok'"),
	    1);
	sqlite3_close(db);
}

/*
 * Details travel with one event each and are never overwritten by events
 * without them, even when events of one connection are folded in a batch.
 */
static void
test_details(void **state)
{
	struct store *st = open_store(0, 0, 0);
	struct conn_record r;
	struct conn_detail *d;
	sqlite3 *db;
	enum { N = 300 };

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		r = record(store_next_id(st), CONN_OPEN, 1000 + i);
		/* first event: records and a rule */
		d = r.detail = conn_detail_new();
		assert_non_null(d);
		d->records_len = 2;
		d->records[0] = 0xab;
		d->records[1] = (uint8_t)i;
		d->policy_version = 7;
		d->rule_id = strdup("r1");
		store_submit(st, &r);
		/* second: nothing new */
		r.detail = NULL;
		r.state = CONN_RELAYING;
		store_submit(st, &r);
		/* third: only a server name, which must not erase the rule */
		d = r.detail = conn_detail_new();
		d->server_name = strdup("example.org");
		r.state = CONN_CLOSED;
		r.closed_at_us = 5000;
		r.close_reason = "completed";
		store_submit(st, &r);
		if (i == N / 2) /* half of them across two batches */
			assert_int_equal(store_flush(st, 10000), 0);
	}
	assert_int_equal(store_flush(st, 10000), 0);
	store_close(st);
	db = open_db();
	assert_int_equal(
	    query_int(db, "SELECT count(*) FROM connections WHERE state = 'closed'"
			  " AND policy_version = 7 AND rule_id = 'r1'"
			  " AND server_name = 'example.org' AND length(redirect_records) = 2"
			  " AND substr(hex(redirect_records), 1, 2) = 'AB'"),
	    N);
	sqlite3_close(db);
}

/* The policy history: versions, sha256 (db/policies.c). */
static uint64_t last_collected;

static int
collect_version(void *arg, const struct policy_row *r)
{
	(*(size_t *)arg)++;
	last_collected = r->version;
	return 0;
}

static void
test_policies_append(void **state)
{
	struct store *st = open_store(64, 0, 0); /* creates the schema */
	struct policy_row row;
	struct policy_store *a, *b;
	char err[256], sha[65];

	(void)state;
	assert_int_equal(policies_open(path, &a, err, sizeof(err)), 0);
	assert_int_equal(policies_open(path, &b, err, sizeof(err)), 0);
	assert_int_equal(policies_latest(a, &row), 0); /* none yet */
	assert_int_equal(policies_append(a, "{\"rules\":[]}", "alice", 1000), 1);
	/* the next version, whichever connection writes it */
	assert_int_equal(policies_append(b, "{}", "bob", 2000), 2);
	assert_int_equal(policies_latest(a, &row), 1);
	assert_int_equal(row.version, 2);
	assert_string_equal(row.author, "bob");
	assert_int_equal(row.set_at_us, 2000);
	policies_sha256("{}", sha);
	assert_string_equal(row.sha256, sha);
	/* sha256("{}") is well known */
	assert_string_equal(
	    sha, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
	policy_row_free(&row);
	assert_int_equal(policies_get(a, 1, &row), 1);
	assert_string_equal(row.document, "{\"rules\":[]}");
	policy_row_free(&row);
	assert_int_equal(policies_get(a, 7, &row), 0);

	/* history by pages, newest first; kept by count */
	for (int i = 3; i <= 7; i++)
		assert_int_equal(policies_append(a, "{}", "carol", 3000 + i), i);
	{
		size_t n = 0;

		assert_int_equal(policies_history(a, 0, 3, collect_version, &n), 0);
		assert_int_equal(n, 3);
		assert_int_equal(last_collected, 5); /* 7, 6, 5 */
		n = 0;
		assert_int_equal(policies_history(a, 5, 3, collect_version, &n), 0);
		assert_int_equal(n, 3);
		assert_int_equal(last_collected, 2); /* 4, 3, 2 */
	}
	policies_set_keep(b, 3);
	assert_int_equal(policies_append(b, "{}", "dave", 9000), 8);
	assert_int_equal(policies_get(a, 5, &row), 0); /* pruned: 6, 7, 8 kept */
	assert_int_equal(policies_get(a, 6, &row), 1);
	policy_row_free(&row);
	policies_close(a);
	policies_close(b);
	store_close(st);
}

/* Submit n closed connections and wait for them. */
static void
add_closed(struct store *st, unsigned n, int64_t opened_us)
{
	for (unsigned i = 0; i < n; i++) {
		struct conn_record r = record(store_next_id(st), CONN_CLOSED, opened_us + i);

		r.closed_at_us = opened_us + i + 1;
		r.close_reason = "completed";
		store_submit(st, &r);
	}
	assert_int_equal(store_flush(st, 10000), 0);
}

/*
 * Sequence numbers and connection ids are never handed out twice, even
 * when retention empties both tables: a watcher or a sink resuming from a
 * number would otherwise wait forever for it.
 */
static void
test_numbers_never_repeat(void **state)
{
	/* A day's retention, two days later: everything goes. */
	struct retention_policy keep_none = {.days = 1, .batch = 1000};
	struct store *st = open_store(0, 0, 0);
	uint64_t seq, id;
	sqlite3 *db;

	(void)state;
	add_closed(st, 10, 1000);
	seq = store_last_sequence(st);
	id = store_next_id(st) - 1; /* the highest written */
	assert_int_equal(seq, 10);
	store_close(st);

	db = open_db();
	while (
	    retention_prune_batch(db, &keep_none, ((int64_t)time(NULL) + 2 * 86400) * 1000000) > 0)
		;
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM connection_events"), 0);
	sqlite3_close(db);

	st = open_store(0, 0, 0);
	assert_int_equal(store_last_sequence(st), seq);
	assert_true(store_next_id(st) > id);
	add_closed(st, 1, 5000);
	assert_int_equal(store_last_sequence(st), seq + 1);
	store_close(st);
}

/* The agent's UUID: made once, kept; a new one on another machine (a cloned image). */
static void
test_identity(void **state)
{
	struct store_options o = {.path = path, .machine_id = "machine-a"};
	struct store *st;
	char err[256], first[STORE_UUID_LEN + 1];

	(void)state;
	assert_int_equal(store_open(&st, &o, err, sizeof(err)), 0);
	snprintf(first, sizeof(first), "%s", store_agent_uuid(st));
	assert_int_equal(strlen(first), 36);
	assert_int_equal(first[14], '4'); /* version 4 */
	assert_non_null(strchr("89ab", first[19]));
	store_close(st);

	assert_int_equal(store_open(&st, &o, err, sizeof(err)), 0);
	assert_string_equal(store_agent_uuid(st), first);
	store_close(st);

	o.machine_id = "machine-b";
	assert_int_equal(store_open(&st, &o, err, sizeof(err)), 0);
	assert_string_not_equal(store_agent_uuid(st), first);
	store_close(st);
}

/*
 * Export: retention keeps what a sink has not acknowledged (events and
 * their rows); past max_backlog the oldest go, counted as lost; the cursor
 * never moves back.
 */
static void
test_export_retention(void **state)
{
	struct store_options o = {.path = path, .sinks = {"nats"}, .n_sinks = 1};
	struct retention_policy rp = {
	    .max_rows = 5, .batch = 1000, .sinks = {"nats"}, .n_sinks = 1, .max_backlog = 100};
	struct outbox *ob;
	struct store *st;
	uint64_t acked, lost;
	char err[256];
	sqlite3 *db;

	(void)state;
	assert_int_equal(store_open(&st, &o, err, sizeof(err)), 0);
	add_closed(st, 50, 1000);
	store_close(st);
	db = open_db();
	assert_int_equal(outbox_open(path, "nats", &ob, err, sizeof(err)), 0);

	/* Nothing acknowledged: max_rows = 5 prunes nothing. */
	while (retention_prune_batch(db, &rp, 0) > 0)
		;
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections"), 50);
	assert_int_equal(query_int(db, "SELECT count(*) FROM connection_events"), 50);

	/* 30 acknowledged: those may go (rows beyond the newest 5 too). */
	assert_int_equal(outbox_set_cursor(ob, 30), 0);
	assert_int_equal(outbox_set_cursor(ob, 20), 0); /* never backwards */
	assert_int_equal(outbox_cursor(ob, &acked, &lost), 0);
	assert_int_equal(acked, 30);
	while (retention_prune_batch(db, &rp, 0) > 0)
		;
	assert_int_equal(query_int(db, "SELECT min(seq) FROM connection_events"), 31);
	assert_int_equal(query_int(db, "SELECT count(*) FROM connections"), 20);

	/* A backlog past max_backlog: the oldest unshipped go, counted. */
	rp.max_backlog = 8;
	while (retention_prune_batch(db, &rp, 0) > 0)
		;
	assert_int_equal(query_int(db, "SELECT count(*) FROM connection_events"), 8);
	assert_int_equal(outbox_cursor(ob, &acked, &lost), 0);
	assert_int_equal(lost, 12);
	outbox_close(ob);
	sqlite3_close(db);
}

/* The state CHECK of the schema accepts exactly the words of conn.h. */
static void
test_state_words(void **state)
{
	struct store *st = open_store(0, 0, 0);
	sqlite3 *db;

	(void)state;
	store_close(st);
	db = open_db();
	for (unsigned i = 0; conn_state_names[i] != NULL; i++) {
		char sql[512];

		snprintf(sql, sizeof(sql),
		    "INSERT INTO connections (id, opened_at_us, family, client_addr, client_port,"
		    " redirect_state, verdict, state) VALUES (%u, 1, 4, 'a', 1, 'none', 'allow', "
		    "'%s')",
		    1000 + i, conn_state_names[i]);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	}
	assert_int_not_equal(sqlite3_exec(db,
				 "INSERT INTO connections (id, opened_at_us, family, client_addr,"
				 " client_port, redirect_state, verdict, state)"
				 " VALUES (2000, 1, 4, 'a', 1, 'none', 'allow', 'opened')",
				 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
}

/* Wait (5 s at most) until the store reports an incident; returns it. */
static const char *
wait_incident(struct store *st, struct store_stats *ss)
{
	for (int i = 0; i < 500; i++) {
		store_get_stats(st, ss);
		if (ss->incident[0] != '\0')
			return ss->incident;
		usleep(10000);
	}
	fail_msg("no incident reported");
	return NULL;
}

/* The one file "<path>.broken-*" next to path, its name in out. */
static void
find_broken(char *out, size_t len)
{
	char cmd[600];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls -d '%s'.broken-* | grep -v -- '-wal$\\|-shm$'", path);
	assert_non_null(f = popen(cmd, "r"));
	assert_non_null(fgets(out, (int)len, f));
	out[strcspn(out, "\n")] = '\0';
	assert_null(fgets(cmd, sizeof(cmd), f)); /* only one */
	pclose(f);
}

/*
 * The database never stops the store: a damaged file, or a directory, is
 * moved aside (kept) and a new one started; a file deleted while running is
 * noticed and replaced, the numbering and the UUID continued.
 */
static void
test_file_lost(void **state)
{
	struct store_options o = {.path = path, .machine_id = "m"};
	struct store_stats ss;
	struct store *st;
	char err[256], aside[600], uuid[STORE_UUID_LEN + 1], buf[64];
	sqlite3 *db;
	uint64_t seq;
	FILE *f;

	(void)state;
	/* damaged: garbage where the database should be */
	assert_int_equal(store_open(&st, &o, err, sizeof(err)), 0);
	store_close(st);
	assert_non_null(f = fopen(path, "w"));
	fputs("this is not an SQLite database, and it is long enough to look like a header", f);
	fclose(f);
	/* the old file's WAL (kept: SQLITE_FCNTL_PERSIST_WAL) would make it look whole */
	{
		char wal[300];

		snprintf(wal, sizeof(wal), "%s-wal", path);
		unlink(wal);
		snprintf(wal, sizeof(wal), "%s-shm", path);
		unlink(wal);
	}
	assert_int_equal(store_open(&st, &o, err, sizeof(err)), 0);
	store_get_stats(st, &ss);
	assert_non_null(strstr(ss.incident, "could not be read"));
	assert_non_null(strstr(ss.incident, "moved to"));
	add_closed(st, 3, 1000);
	store_get_stats(st, &ss);
	assert_int_equal(ss.rows_written, 3);
	assert_int_equal(store_last_sequence(st), 3);
	store_close(st);
	find_broken(aside, sizeof(aside));
	assert_non_null(f = fopen(aside, "r")); /* kept as it was */
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_int_equal(strncmp(buf, "this is not an SQLite", 21), 0);
	fclose(f);
	remove(aside);

	/* deleted while running: noticed, a new file, the numbers go on */
	assert_int_equal(store_open(&st, &o, err, sizeof(err)), 0);
	snprintf(uuid, sizeof(uuid), "%s", store_agent_uuid(st));
	seq = store_last_sequence(st);
	assert_int_equal(unlink(path), 0);
	assert_non_null(strstr(wait_incident(st, &ss), "was deleted"));
	add_closed(st, 2, 2000);
	assert_int_equal(store_last_sequence(st), seq + 2);
	assert_string_equal(store_agent_uuid(st), uuid);
	db = open_db();
	assert_int_equal(query_int(db, "SELECT count(*) FROM connection_events"), 2);
	assert_int_equal(query_int(db, "SELECT min(seq) FROM connection_events"), (int64_t)seq + 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM agent_meta WHERE key = 'uuid' AND "
				       "value = (SELECT value FROM agent_meta WHERE key = 'uuid')"),
	    1);
	sqlite3_close(db);
	store_close(st);
	db = open_db();
	{
		sqlite3_stmt *q;

		assert_int_equal(
		    sqlite3_prepare_v2(
			db, "SELECT value FROM agent_meta WHERE key = 'uuid'", -1, &q, NULL),
		    SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(q, 0), uuid);
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
}

/* No file can be made (the directory is a file): events are counted, then recorded once it can. */
static void
test_file_unwritable(void **state)
{
	struct store_options o = {.path = path};
	struct store_stats ss;
	struct store *st;
	char parent[300], err[256];
	FILE *f;

	(void)state;
	snprintf(parent, sizeof(parent), "%s/sub", dir);
	assert_non_null(f = fopen(parent, "w")); /* where the directory should be */
	fclose(f);
	assert_int_equal(store_open(&st, &o, err, sizeof(err)), 0);
	store_get_stats(st, &ss);
	assert_non_null(strstr(ss.write_error, "cannot be written"));
	add_closed(st, 4, 1000);
	store_get_stats(st, &ss);
	assert_int_equal(ss.events_dropped, 4);
	assert_int_equal(strlen(store_agent_uuid(st)), STORE_UUID_LEN);
	/* the cause removed: within a second or two, recording again */
	assert_int_equal(unlink(parent), 0);
	for (int i = 0; i < 500; i++) {
		store_get_stats(st, &ss);
		if (ss.write_error[0] == '\0')
			break;
		usleep(10000);
	}
	assert_string_equal(ss.write_error, "");
	add_closed(st, 2, 2000);
	store_get_stats(st, &ss);
	assert_int_equal(ss.rows_written, 2);
	store_close(st);
}

/*
 * The newest policy is kept outside the database too: a new, empty
 * database gets it back; without any database it is still read.
 */
static void
test_policy_backup(void **state)
{
	struct store *st = open_store(64, 0, 0);
	struct policy_store *ps;
	struct policy_row row;
	char err[256], *backup = policies_backup_path(path);

	(void)state;
	assert_int_equal(policies_open(path, &ps, err, sizeof(err)), 0);
	assert_int_equal(policies_append(ps, "{\"default\":\"block\"}", "alice", 1000), 1);
	assert_int_equal(policies_append(ps, "{\"default\":\"allow\"}", "bob", 2000), 2);
	assert_int_equal(policies_read_backup(backup, &row), 1);
	assert_int_equal(row.version, 2);
	assert_string_equal(row.document, "{\"default\":\"allow\"}");
	assert_string_equal(row.author, "bob");
	policy_row_free(&row);
	policies_close(ps);
	store_close(st);

	/* the database gone: a new one, and the newest version restored into it */
	unlink(path);
	st = open_store(64, 0, 0);
	assert_int_equal(policies_open(path, &ps, err, sizeof(err)), 0);
	assert_int_equal(policies_latest(ps, &row), 1);
	assert_int_equal(row.version, 2);
	assert_string_equal(row.author, "bob");
	policy_row_free(&row);
	assert_int_equal(policies_append(ps, "{}", "carol", 3000), 3); /* numbering goes on */
	policies_close(ps);
	store_close(st);

	/* no database at all: still read from the backup */
	unlink(path);
	assert_int_equal(policies_open(path, &ps, err, sizeof(err)), 0);
	assert_int_equal(policies_latest(ps, &row), 1);
	assert_int_equal(row.version, 3);
	policy_row_free(&row);
	assert_int_equal(policies_get(ps, 3, &row), 1);
	policy_row_free(&row);
	assert_int_equal(policies_get(ps, 2, &row), -1); /* only the newest is kept */
	policies_close(ps);

	/* a hostile backup is refused, not half-used */
	{
		FILE *f = fopen(backup, "w");

		assert_non_null(f);
		fputs("{\"version\": -3, \"document\": \"{}\"}", f);
		fclose(f);
		assert_int_equal(policies_read_backup(backup, &row), -1);
		assert_non_null(f = fopen(backup, "w"));
		fputs("{\"version\": 4, \"document\": \"a\\u0000b\"}", f);
		fclose(f);
		assert_int_equal(policies_read_backup(backup, &row), -1);
	}
	free(backup);
}

/*
 * The README documents the database: "The record" lists every column of
 * connections, and "Data and privacy" every table. The names in the first
 * cell of each row under header (in backquotes, several per cell) go into
 * names; returns how many, or -1 if the README has no such table.
 */
#define README_MAX_NAMES 64

static int
readme_names(const char *header, char names[][64])
{
	FILE *f = fopen(SRCDIR "/README.md", "r");
	char line[2048];
	int n = 0, in = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (!in) {
			in = strncmp(line, header, strlen(header)) == 0;
			continue;
		}
		if (line[0] != '|')
			break;
		if (strncmp(line, "| ---", 5) == 0)
			continue;
		/* the first cell: up to the next " |" */
		char *end = strstr(line + 1, " |"), *q = line + 1;

		assert_non_null(end);
		*end = '\0';
		while ((q = strchr(q, '`')) != NULL) {
			char *close = strchr(q + 1, '`');

			assert_non_null(close);
			assert_true(n < README_MAX_NAMES);
			snprintf(names[n++], 64, "%.*s", (int)(close - q - 1), q + 1);
			q = close + 1;
		}
	}
	fclose(f);
	return in ? n : -1;
}

/* Whether name is among names[0..n). */
static int
listed(char names[][64], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

/* Every column the README lists exists, and every column is listed. */
static void
test_readme_record_table(void **state)
{
	char names[README_MAX_NAMES][64];
	int n = readme_names("| column | meaning |", names), cols = 0;
	struct store *st = open_store(0, 0, 0);
	sqlite3 *db;
	sqlite3_stmt *q;

	(void)state;
	store_close(st);
	assert_true(n > 0);
	db = open_db();
	assert_int_equal(sqlite3_prepare_v2(
			     db, "SELECT name FROM pragma_table_info('connections')", -1, &q, NULL),
	    SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(q, 0);

		if (!listed(names, n, col))
			fail_msg("README, \"The record\": column %s is not described", col);
		cols++;
	}
	sqlite3_finalize(q);
	for (int i = 0; i < n; i++) {
		char sql[256];

		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM pragma_table_info('connections') WHERE name = '%.63s'",
		    names[i]);
		if (query_int(db, sql) != 1)
			fail_msg("README, \"The record\": %s is not a column", names[i]);
	}
	assert_int_equal(n, cols);
	sqlite3_close(db);
}

/* "Data and privacy" names every table of the database, and no other. */
static void
test_readme_data_table(void **state)
{
	char names[README_MAX_NAMES][64];
	int n = readme_names("| table or file | holds | kept |", names), tables = 0;
	struct store *st = open_store(0, 0, 0);
	sqlite3 *db;
	sqlite3_stmt *q;

	(void)state;
	store_close(st);
	assert_true(n > 0);
	db = open_db();
	assert_int_equal(sqlite3_prepare_v2(db,
			     "SELECT name FROM sqlite_master WHERE type = 'table'"
			     " AND name NOT LIKE 'sqlite_%'",
			     -1, &q, NULL),
	    SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(q, 0);

		if (!listed(names, n, t))
			fail_msg("README, \"Data and privacy\": table %s has no retention row", t);
		tables++;
	}
	sqlite3_finalize(q);
	assert_true(tables >= 6);
	sqlite3_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_details, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_policies_append, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_numbers_never_repeat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_export_retention, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_words, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_lost, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_unwritable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_policy_backup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readme_record_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readme_data_table, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
