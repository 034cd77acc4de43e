/* Unit tests: the API's queries and page tokens (db/query.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"
#include "store.h"

static char dir[] = "/tmp/ra-query-XXXXXX";
static char path[256];
static struct store *st;
static struct query *db;

static void
add(unsigned n, const char *dst, uint16_t port, enum conn_state state)
{
	for (unsigned i = 0; i < n; i++) {
		struct conn_record r;

		memset(&r, 0, sizeof(r));
		r.id = store_next_id(st);
		r.opened_at_us = (int64_t)r.id * 1000;
		r.client.family = AF_INET;
		inet_pton(AF_INET, "10.0.0.1", r.client.addr);
		if (strchr(dst, ':') != NULL) {
			r.orig_dst.family = AF_INET6;
			inet_pton(AF_INET6, dst, r.orig_dst.addr);
		} else {
			r.orig_dst.family = AF_INET;
			inet_pton(AF_INET, dst, r.orig_dst.addr);
		}
		r.orig_dst.port = port;
		r.redirect_state = REDIRECT_NONE;
		r.verdict = VERDICT_ALLOW;
		r.state = state;
		r.connect_us = -1;
		r.uid = r.pid = -1;
		store_submit(st, &r);
	}
	assert_int_equal(store_flush(st, 10000), 0);
}

static int
setup(void **state)
{
	struct store_options o = {0};
	char err[256];

	(void)state;
	memcpy(dir, "/tmp/ra-query-XXXXXX", sizeof(dir));
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/agent.db", dir);
	o.path = path;
	if (store_open(&st, &o, err, sizeof(err)) != 0)
		return -1;
	return query_open(path, &db, err, sizeof(err));
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	query_close(db);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

struct seen {
	uint64_t ids[4096];
	size_t n;
};

static int
collect(void *arg, const struct conn_row *r)
{
	struct seen *s = arg;

	s->ids[s->n++] = r->id;
	return 0;
}

static void
test_tokens(void **state)
{
	struct conn_filter f, g;
	char tok[QUERY_TOKEN_LEN + 1];
	uint64_t id;

	(void)state;
	memset(&f, 0, sizeof(f));
	query_token_encode(&f, 12345, tok);
	assert_int_equal(strlen(tok), QUERY_TOKEN_LEN);
	assert_int_equal(query_token_decode(&f, tok, &id), 0);
	assert_int_equal(id, 12345);

	/* a token continues only the query that made it */
	g = f;
	g.dst_port = 443;
	assert_int_equal(query_token_decode(&g, tok, &id), -EINVAL);
	g = f;
	snprintf(g.state, sizeof(g.state), "closed");
	assert_int_equal(query_token_decode(&g, tok, &id), -EINVAL);

	static const char *const bad[] = {"", "zz", "01",
	    "0g00000000000030390000000000000000000000",
	    "020000000000003039000000000000000000000000", "02000000000000303900000000000000000000"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(query_token_decode(&f, bad[i], &id), -EINVAL);
	/* The id is a position, not a secret: an edited one decodes to another position. */
	tok[17] = tok[17] == '1' ? '2' : '1';
	assert_int_equal(query_token_decode(&f, tok, &id), 0);
	assert_int_not_equal(id, 12345);
}

/* Keyset pages: every row once, newest first, unmoved by rows added meanwhile. */
static void
test_pagination(void **state)
{
	struct conn_filter f;
	struct seen s = {.n = 0};
	char tok[QUERY_TOKEN_LEN + 1] = "", next[QUERY_TOKEN_LEN + 1], err[128];
	int n, pages = 0;

	(void)state;
	add(250, "192.0.2.1", 443, CONN_CLOSED);
	memset(&f, 0, sizeof(f));
	do {
		n = query_list_connections(db, &f, 100, tok, next, collect, &s, err, sizeof(err));
		assert_true(n >= 0);
		pages++;
		if (pages == 1)
			add(30, "192.0.2.1", 443, CONN_CLOSED); /* arrive between pages */
		memcpy(tok, next, sizeof(tok));
	} while (tok[0] != '\0');
	assert_int_equal(pages, 3);
	assert_int_equal(s.n, 250);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(s.ids[i], 250 - i);

	/* a page that ends exactly at the last row says so */
	s.n = 0;
	n = query_list_connections(db, &f, 280, "", next, collect, &s, err, sizeof(err));
	assert_int_equal(n, 280);
	assert_string_equal(next, "");

	assert_int_equal(
	    query_list_connections(db, &f, 10, "nonsense", next, collect, &s, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "page_token"));
}

static void
test_filters(void **state)
{
	struct conn_filter f;
	struct seen s;
	char next[QUERY_TOKEN_LEN + 1], err[128];

	(void)state;
	add(5, "10.1.2.3", 80, CONN_CLOSED);
	add(3, "10.2.0.1", 80, CONN_FAILED);
	add(4, "fd00::5", 8443, CONN_RELAYING);
	add(2, "11.0.0.1", 80, CONN_CLOSED);

#define COUNT(setup_f)                                                                             \
	(memset(&f, 0, sizeof(f)), setup_f, s.n = 0,                                               \
	    query_list_connections(db, &f, 1000, "", next, collect, &s, err, sizeof(err)))
	assert_int_equal(COUNT((void)0), 14);
	assert_int_equal(
	    COUNT((f.has_cidr = 1, addr_parse_cidr("10.0.0.0/8", &f.dst, NULL, 0))), 8);
	assert_int_equal(
	    COUNT((f.has_cidr = 1, addr_parse_cidr("10.1.0.0/16", &f.dst, NULL, 0))), 5);
	assert_int_equal(COUNT((f.has_cidr = 1, addr_parse_cidr("fd00::/8", &f.dst, NULL, 0))), 4);
	assert_int_equal(
	    COUNT((f.has_cidr = 1, addr_parse_cidr("0.0.0.0/0", &f.dst, NULL, 0))), 10);
	assert_int_equal(COUNT(f.dst_port = 80), 10);
	assert_int_equal(COUNT(snprintf(f.state, sizeof(f.state), "failed")), 3);
	assert_int_equal(COUNT((f.dst_port = 80, snprintf(f.state, sizeof(f.state), "closed"))), 7);
	assert_int_equal(COUNT(f.since_us = 13 * 1000), 2);
	assert_int_equal(COUNT((f.since_us = 3000, f.until_us = 6000)), 3);
#undef COUNT
}

static void
test_get(void **state)
{
	struct seen s = {.n = 0};

	(void)state;
	add(3, "192.0.2.9", 22, CONN_CLOSED);
	assert_int_equal(query_get_connection(db, 2, collect, &s), 1);
	assert_int_equal(s.ids[0], 2);
	assert_int_equal(query_get_connection(db, 999, collect, &s), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tokens),
	    cmocka_unit_test_setup_teardown(test_pagination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
