/*
 * redirect_test.c: a test-only redirect backend for Windows (redirect.h),
 * linked into redirect-agent-test.exe in place of the WFP one, never into
 * the shipped agent. Without the callout driver nothing on wine (or on a
 * test machine) redirects a connection and supplies its original
 * destination; this backend does the latter, so that the real event loop,
 * sessions, relay, timeouts, half-close and recording run under wine.
 *
 * The original destination comes from the client's source port, through a
 * table in the environment, read at start:
 *
 *   RA_TEST_REDIRECT="41000-41999=127.0.0.1:25101,43000-43099=[::1]:25103"
 *
 * A client port outside every range counts as a direct connection to the
 * listener (not redirected). Everything else is as on Windows: the records
 * and context the row keeps, by_self for a connection from one of the
 * agent's own upstream sockets, no rules to install or remove.
 *
 * It defines every function of redirect_win.c, so the linker never takes
 * redirect_win.o (or redirect_wfp.o) from libra_os.a; if it ever did, the
 * duplicate symbols would fail the link.
 */
#include "redirect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse.h"

#define TEST_RANGES_MAX 16

struct range {
	uint16_t lo, hi;
	struct endpoint dst;
};

/* Set once in redirect_setup, before any loop runs; read-only after. */
static struct range ranges[TEST_RANGES_MAX];
static size_t n_ranges;

struct redirect {
	int unused;
};

/* "LO-HI=HOST:PORT" into r. */
static int
parse_range(const char *item, struct range *r, char *err, size_t errlen)
{
	char lo[16], host[64];
	const char *dash = strchr(item, '-'), *eq = strchr(item, '=');
	struct port_range pr;
	struct sockaddr_storage ss;
	uint16_t port;

	if (dash == NULL || eq == NULL || dash > eq || (size_t)(eq - item) >= sizeof(lo)) {
		snprintf(err, errlen, "RA_TEST_REDIRECT: '%s' is not LO-HI=HOST:PORT", item);
		return -1;
	}
	snprintf(lo, sizeof(lo), "%.*s", (int)(eq - item), item);
	if (parse_port_range(lo, &pr) != 0 ||
	    parse_host_port(eq + 1, host, sizeof(host), &port) != 0 ||
	    addr_parse_sockaddr(host, port, &ss) != 0 ||
	    endpoint_from_sockaddr(&r->dst, (struct sockaddr *)&ss) != 0) {
		snprintf(err, errlen, "RA_TEST_REDIRECT: '%s' is not LO-HI=ADDRESS:PORT", item);
		return -1;
	}
	r->lo = pr.lo;
	r->hi = pr.hi;
	return 0;
}

int
redirect_setup(const struct config *cfg, struct redirect **out, char *err, size_t errlen)
{
	const char *table = getenv("RA_TEST_REDIRECT");
	char buf[1024], *item, *next;

	(void)cfg;
	if (table == NULL || table[0] == '\0' || strlen(table) >= sizeof(buf)) {
		snprintf(err, errlen, "test backend: set RA_TEST_REDIRECT (LO-HI=HOST:PORT,...)");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", table);
	n_ranges = 0;
	for (item = buf; item != NULL; item = next) {
		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		if (n_ranges == TEST_RANGES_MAX) {
			snprintf(
			    err, errlen, "RA_TEST_REDIRECT: more than %d ranges", TEST_RANGES_MAX);
			return -EINVAL;
		}
		if (parse_range(item, &ranges[n_ranges], err, errlen) != 0)
			return -EINVAL;
		n_ranges++;
	}
	if ((*out = calloc(1, sizeof(**out))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	log_warnx("TEST BUILD: original destinations from RA_TEST_REDIRECT (%zu ranges), not WFP",
	    n_ranges);
	return 0;
}

void
redirect_teardown(struct redirect *r)
{
	free(r);
}

int
redirect_cleanup(const struct config *cfg, int force, char *msg, size_t msglen)
{
	(void)cfg, (void)force;
	snprintf(msg, msglen, "nothing to remove: the test backend installs no rules");
	return 0;
}

int
redirect_rules_present(struct redirect *r)
{
	(void)r;
	return 1;
}

int
redirect_prepare_listener(sock_t fd, int family, const struct config *cfg)
{
	(void)fd, (void)family, (void)cfg;
	return 0;
}

int
redirect_query(sock_t fd, const struct endpoint *local, const struct endpoint *peer,
    const struct config *cfg, struct redirect_info *out)
{
	(void)fd;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n_ranges; i++) {
		if (peer->port < ranges[i].lo || peer->port > ranges[i].hi)
			continue;
		out->orig_dst = ranges[i].dst;
		out->state = redirect_from_own_upstream(peer) ? REDIRECT_BY_SELF : REDIRECT_NONE;
		redirect_info_encode(out, cfg, peer);
		return 0;
	}
	out->orig_dst = *local; /* straight to the listener */
	return -ENOENT;
}

int
redirect_prepare_upstream(sock_t fd, const struct config *cfg, uint32_t records_mark,
    enum redirect_state state, const void *pass_on, size_t pass_on_len)
{
	(void)fd, (void)cfg, (void)records_mark, (void)state, (void)pass_on, (void)pass_on_len;
	return 0;
}

int
redirect_apply_bypass(struct redirect *r, const struct policy *p, char *err, size_t errlen)
{
	(void)r, (void)p, (void)err, (void)errlen;
	return 0;
}

/* The test backend takes the destination from the source port: nothing to reload. */
int
redirect_reload(struct redirect *r, const struct policy *p, char *err, size_t errlen)
{
	(void)r, (void)p, (void)err, (void)errlen;
	return 0;
}
