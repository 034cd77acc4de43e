/*
 * query.h: reading the connection record (the API's queries).
 *
 * A struct query is one read-only connection to the database, never the
 * writer's; one thread uses it at a time (the API's thread, the watch
 * thread: each opens its own). Every value from outside is bound as a
 * parameter.
 * Pagination is by key (id), newest first, so a page stays stable while new
 * rows arrive; the page token is opaque to clients and bound to its filter.
 */
#ifndef RA_QUERY_H
#define RA_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define QUERY_PAGE_DEFAULT 50
#define QUERY_PAGE_MAX     1000
#define QUERY_TOKEN_LEN    40 /* hex characters, plus NUL below */

struct conn_filter {
	int64_t since_us, until_us; /* 0: no bound */
	int has_cidr;
	struct cidr dst;
	uint16_t dst_port; /* 0: any */
	char state[16];    /* "": any */
	char verdict[16];
	char redirect_state[24];
};

/* One row; strings and blobs belong to SQLite and last until the callback returns. */
struct conn_row {
	uint64_t seq; /* the event's sequence number; 0 outside query_events_after */
	uint64_t id;
	int64_t opened_at_us, closed_at_us;
	unsigned family;
	const char *client_addr;
	unsigned client_port;
	const char *orig_dst_addr;
	unsigned orig_dst_port;
	const char *upstream_local_addr;
	unsigned upstream_local_port;
	const char *redirect_state;
	const void *redirect_records;
	size_t redirect_records_len;
	const void *redirect_context;
	size_t redirect_context_len;
	uint32_t records_mark;
	const char *verdict, *state;
	uint64_t bytes_up, bytes_down;
	int64_t connect_us;
	const char *close_reason, *error, *exe;
	int64_t uid, pid;
	uint64_t policy_version; /* 0: judged by no stored policy */
	const char *rule_id;     /* "": the default action */
	const char *server_name;
	const char *server_name_source; /* "sni", "host", or "" */
	int64_t at_us;                  /* the event's time; 0 outside query_events_after */
};

typedef int (*conn_row_cb)(void *arg, const struct conn_row *row);

struct query;

/*
 * A read-only reader of path. The file is opened on first use, and again
 * when the writer starts a new one, so this needs no database: each call
 * fails (query_errmsg() says why) while the file cannot be opened. Returns
 * 0 with *out set, or -ENOMEM with err set.
 */
int query_open(const char *path, struct query **out, char *err, size_t errlen);

/* Close q. NULL is ignored. */
void query_close(struct query *q);

/* The last database error on q, for logs. */
const char *query_errmsg(struct query *q);

/*
 * Check a filter's words (state, verdict, redirect_state) against the values
 * the record can hold. Returns 0 or -EINVAL with the reason in err.
 */
int query_filter_check(const struct conn_filter *f, char *err, size_t errlen);

/*
 * Call cb for up to page_size rows matching f, newest first, after the
 * position in token ("" or NULL: the first page). next_token receives the
 * token of the following page, or "" when this was the last. Returns the
 * number of rows, -EINVAL for a malformed or foreign token (err says so), or
 * -EIO on a database error (err says so). A non-zero return from cb stops
 * the walk and is returned.
 */
int query_list_connections(struct query *q, const struct conn_filter *f, unsigned page_size,
    const char *token, char next_token[QUERY_TOKEN_LEN + 1], conn_row_cb cb, void *arg, char *err,
    size_t errlen);

/* Call cb for the row with this id. Returns 1 (found), 0 (no such row) or -EIO. */
int query_get_connection(struct query *q, uint64_t id, conn_row_cb cb, void *arg);

/*
 * Call cb for up to limit watch events with a sequence number above after,
 * in order: each the connection as it stood at that event. Returns the
 * number of events, or -EIO.
 */
int query_events_after(struct query *q, uint64_t after, unsigned limit, conn_row_cb cb, void *arg);

/* The oldest event still kept (0: none). Resuming before it would miss events. */
int64_t query_oldest_event(struct query *q);

/*
 * Call cb for the last connections (at most last, newest first) that a
 * policy judged: redirect state none or by_other, verdict allow, block,
 * bypass or forward. Only id, family, orig_dst_addr/port, redirect_state,
 * verdict, server_name, uid and exe are filled (a simulation's inputs).
 * Returns how many, or -EIO.
 */
int query_judged(struct query *q, unsigned last, conn_row_cb cb, void *arg);

/* Token helpers, exposed for tests: encode the position after last_id under f. */
void query_token_encode(
    const struct conn_filter *f, uint64_t last_id, char out[QUERY_TOKEN_LEN + 1]);
int query_token_decode(const struct conn_filter *f, const char *token, uint64_t *last_id);

#endif
