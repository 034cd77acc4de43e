#include "redirect.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "nft.h"
#include "policy.h"
#include "route.h"

/* From linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h, whose
 * headers clash with netinet/in.h. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define FWMARK_ACCEPT_SYSCTL "/proc/sys/net/ipv4/tcp_fwmark_accept"

static int
write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int saved;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	saved = errno;
	close(fd);
	return n < 0 ? -saved : 0;
}

/* The sysctl's value: 0, 1, or -1 when it cannot be read. */
static int
read_sysctl(const char *path)
{
	char buf[8] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	return n > 0 && (buf[0] == '0' || buf[0] == '1') ? buf[0] - '0' : -1;
}

struct redirect {
	const struct config *cfg;
	int fwmark_prev; /* tcp_fwmark_accept before the first agent set it (-1: unknown) */
	/* libnftables' context is not for two threads at once: the API's health
	 * (one thread) and SetPolicy (another) and a reload use it. */
	pthread_mutex_t lock;
	struct nft *nft;
	int routes;      /* TPROXY policy routing installed */
	size_t n_bypass; /* bypass rules installed (their sets: nft_bypass_set) */
};

/* Whether pid is a live redirect-agent (not a stale table's dead owner). */
static int
agent_alive(int pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	if (pid <= 0 || pid == getpid())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(comm, sizeof(comm), f) == NULL)
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "redirect-agent", 14) == 0;
}

/*
 * Every cooperating agent on the host needs bits of its own, or each would
 * take the other's upstream connections for its own and skip them. Refuse to
 * start beside a live agent that uses ours (or our port).
 */
static int
check_other_agents(struct redirect *r, char *err, size_t errlen)
{
	struct nft_agent others[32];
	const struct config *cfg = r->cfg;
	int n = nft_agents_list(r->nft, others, sizeof(others) / sizeof(others[0]));

	if (n < 0) {
		snprintf(err, errlen, "cannot list nft tables: %s", err_str(n));
		return n;
	}
	for (int i = 0; i < n; i++) {
		const struct nft_agent *a = &others[i];

		if (strcmp(a->agent_id, cfg->agent_id) == 0)
			continue; /* ours, left by a crash: replaced below */
		if (!agent_alive(a->pid)) {
			log_warnx("nft table of agent '%s' (pid %d) has no live agent behind it",
			    a->agent_id, a->pid);
			continue;
		}
		if ((a->mark & cfg->mark) != 0 || (a->escape_mark & cfg->mark) != 0 ||
		    (a->mark & cfg->escape_mark) != 0) {
			snprintf(err, errlen,
			    "[proxy] mark 0x%x clashes with agent '%s' (pid %d), which uses mark "
			    "0x%x and escape_mark 0x%x: give each agent its own bit",
			    cfg->mark, a->agent_id, a->pid, a->mark, a->escape_mark);
			return -EEXIST;
		}
		if (a->listen_port == cfg->listen_port) {
			snprintf(err, errlen,
			    "[proxy] listen_port %u is already used by agent '%s' (pid %d)",
			    (unsigned)cfg->listen_port, a->agent_id, a->pid);
			return -EEXIST;
		}
	}
	return 0;
}

int
redirect_setup(const struct config *cfg, struct redirect **out, char *err, size_t errlen)
{
	struct redirect *r;
	int rc;

	*out = NULL;
	/*
	 * With tcp_fwmark_accept the accepted socket inherits the SYN's mark,
	 * which is how the records (the marks of proxies already passed) reach
	 * us. It is per network namespace and left on at stop: other agents in
	 * the chain rely on it too.
	 */
	int prev = read_sysctl(FWMARK_ACCEPT_SYSCTL);

	if ((rc = write_sysctl(FWMARK_ACCEPT_SYSCTL, "1\n")) != 0) {
		snprintf(err, errlen, "cannot set %s: %s", FWMARK_ACCEPT_SYSCTL, err_str(rc));
		return rc;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->cfg = cfg;
	pthread_mutex_init(&r->lock, NULL);
	if ((r->nft = nft_open(err, errlen)) == NULL) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -ENOMEM;
	}
	if ((rc = check_other_agents(r, err, errlen)) != 0)
		goto fail;
	/* The value from before the first agent, if an agent's table knows it. */
	r->fwmark_prev = prev;
	{
		struct nft_agent t[32];
		int n = nft_agents_list(r->nft, t, sizeof(t) / sizeof(t[0]));

		for (int i = 0; i < n; i++)
			if (t[i].fwmark_prev >= 0)
				r->fwmark_prev = t[i].fwmark_prev;
	}
	if (cfg->mode == MODE_TPROXY) {
		if ((rc = route_tproxy_install(cfg, err, errlen)) != 0)
			goto fail;
		r->routes = 1;
	}
	if ((rc = nft_table_install(r->nft, cfg, r->fwmark_prev, err, errlen)) != 0)
		goto fail;
	*out = r;
	return 0;
fail:
	if (r->routes)
		(void)route_tproxy_remove(cfg);
	nft_close(r->nft);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return rc;
}

/*
 * The last agent to go puts tcp_fwmark_accept back as it found it: unless
 * another live agent's table is still there (it needs the marks), or the
 * value before is unknown.
 */
static void
restore_fwmark(struct nft *nft, int prev)
{
	struct nft_agent t[32];
	int n = nft_agents_list(nft, t, sizeof(t) / sizeof(t[0]));

	if (prev != 0 || read_sysctl(FWMARK_ACCEPT_SYSCTL) != 1)
		return;
	for (int i = 0; i < n; i++)
		if (agent_alive(t[i].pid))
			return;
	if (write_sysctl(FWMARK_ACCEPT_SYSCTL, "0\n") == 0)
		log_info("%s put back to 0, as the first agent found it", FWMARK_ACCEPT_SYSCTL);
}

void
redirect_teardown(struct redirect *r)
{
	char err[512];
	int rc;

	if (r == NULL)
		return;
	if (r->cfg->fail_mode == FAIL_CLOSED) {
		log_info("[proxy] fail_mode = closed: the redirect rules stay; connections to the "
			 "redirected ports are refused until the agent runs again");
		goto out;
	}
	if (nft_table_remove(r->nft, r->cfg, err, sizeof(err)) != 0)
		log_warnx("cannot remove nft table: %s", err);
	if (r->routes && (rc = route_tproxy_remove(r->cfg)) != 0)
		log_warnx("cannot remove the TPROXY routing rules: %s", err_str(rc));
	restore_fwmark(r->nft, r->fwmark_prev);
out:
	nft_close(r->nft);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int
redirect_cleanup(const struct config *cfg, int force, char *msg, size_t msglen)
{
	struct nft_agent agents[32];
	char table[NFT_TABLE_NAME_MAX], err[512];
	struct nft *nft;
	int n, found = 0, rc = 0, prev = -1;

	nft_table_name(cfg, table, sizeof(table));
	if ((nft = nft_open(err, sizeof(err))) == NULL) {
		snprintf(msg, msglen, "%s", err);
		return -ENOMEM;
	}
	if ((n = nft_agents_list(nft, agents, sizeof(agents) / sizeof(agents[0]))) < 0) {
		snprintf(msg, msglen, "cannot list nft tables: %s", err_str(n));
		rc = n;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(agents[i].agent_id, cfg->agent_id) != 0)
			continue;
		prev = agents[i].fwmark_prev;
		if (agent_alive(agents[i].pid)) {
			snprintf(msg, msglen,
			    "table %s belongs to a running agent (pid %d): it removes its rules "
			    "when it stops",
			    table, agents[i].pid);
			rc = -EBUSY;
			goto out;
		}
		found = 1;
	}
	if (cfg->fail_mode == FAIL_CLOSED && !force) {
		snprintf(msg, msglen,
		    "[proxy] fail_mode = closed: %s stays, and connections to the redirected ports "
		    "are refused until the agent runs again (--cleanup --force removes it)",
		    found ? table : "the table (none now)");
		goto out;
	}
	if (found && (rc = nft_table_remove(nft, cfg, err, sizeof(err))) != 0) {
		snprintf(msg, msglen, "cannot remove %s: %s", table, err);
		goto out;
	}
	/* TPROXY's rules and routes may outlive the table: removed by their marks. */
	if (cfg->mode == MODE_TPROXY && (rc = route_tproxy_remove(cfg)) != 0) {
		snprintf(msg, msglen, "cannot remove the TPROXY routing rules: %s", err_str(rc));
		goto out;
	}
	snprintf(msg, msglen,
	    found ? "removed %s, left by an agent that is gone" : "%s: nothing to remove", table);
	if (found)
		restore_fwmark(nft, prev);
out:
	nft_close(nft);
	return rc;
}

int
redirect_rules_present(struct redirect *r)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = nft_table_exists(r->nft, r->cfg);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int
redirect_reload(struct redirect *r, const struct policy *p, char *err, size_t errlen)
{
	int rc;

	/* The table again, from the config as it is now, then the policy's bypass sets. */
	pthread_mutex_lock(&r->lock);
	if ((rc = nft_table_install(r->nft, r->cfg, r->fwmark_prev, err, errlen)) == 0)
		r->n_bypass = 0; /* a new table has none */
	pthread_mutex_unlock(&r->lock);
	return rc == 0 ? redirect_apply_bypass(r, p, err, errlen) : rc;
}

int
redirect_apply_bypass(struct redirect *r, const struct policy *p, char *err, size_t errlen)
{
	size_t n = policy_bypass_list(p, NULL, 0);
	struct policy_bypass *b = n > 0 ? calloc(n, sizeof(*b)) : NULL;
	int rc;

	if (n > 0 && b == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	(void)policy_bypass_list(p, b, n);
	pthread_mutex_lock(&r->lock);
	if ((rc = nft_bypass_set(r->nft, r->cfg, b, n, r->n_bypass, err, errlen)) == 0)
		r->n_bypass = n;
	pthread_mutex_unlock(&r->lock);
	free(b);
	return rc;
}

int
redirect_prepare_listener(sock_t fd, int family, const struct config *cfg)
{
	int one = 1;

	if (cfg->mode != MODE_TPROXY)
		return 0;
	if (family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
			       : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)))
		return -errno;
	return 0;
}

static enum redirect_state
state_of(uint32_t mark, uint32_t own, const struct endpoint *peer)
{
	if ((mark & own) == 0)
		return mark != 0 ? REDIRECT_BY_OTHER : REDIRECT_NONE;
	if ((mark & ~own) != 0 && !redirect_from_own_upstream(peer))
		return REDIRECT_PREVIOUSLY_BY_SELF;
	return REDIRECT_BY_SELF;
}

static int
original_destination(
    int fd, const struct endpoint *local, const struct config *cfg, struct endpoint *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int r;

	memset(&ss, 0, sizeof(ss));
	/* TPROXY keeps the addresses: the socket's own is the original one. A
	 * connection to the listener's port was made to the agent itself. */
	if (cfg->mode == MODE_TPROXY) {
		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
			return -errno;
		if (endpoint_from_sockaddr(out, (struct sockaddr *)&ss) != 0)
			return -EAFNOSUPPORT;
		return out->port == cfg->listen_port ? -ENOENT : 0;
	}
	if (local->family == AF_INET6)
		r = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
	else
		r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
	if (r != 0)
		return -errno;
	/* The kernel leaves len as passed; the family says what it wrote. */
	if (endpoint_from_sockaddr(out, (struct sockaddr *)&ss) != 0)
		return -EAFNOSUPPORT;
	/* A connection that was not redirected still has a conntrack entry:
	 * its "original" destination is then the listener. */
	if (endpoint_equal(out, local))
		return -ENOENT;
	return 0;
}

int
redirect_query(sock_t fd, const struct endpoint *local, const struct endpoint *peer,
    const struct config *cfg, struct redirect_info *out)
{
	uint32_t mark = 0;
	socklen_t mlen = sizeof(mark);
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = original_destination(fd, local, cfg, &out->orig_dst)) != 0)
		return r;
	if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &mlen) != 0)
		return -errno;
	/* The escape and TPROXY bits are plumbing, not proxies passed. */
	out->escape_failed = (mark & cfg->escape_mark) != 0;
	mark &= ~cfg->escape_mark;
	if (cfg->mode == MODE_TPROXY)
		mark &= ~cfg->tproxy_mark;
	out->records_mark = mark;
	out->state = state_of(mark, cfg->mark, peer);

	redirect_info_encode(out, cfg, peer);
	return 0;
}

int
redirect_prepare_upstream(sock_t fd, const struct config *cfg, uint32_t records_mark,
    enum redirect_state state, const void *pass_on, size_t pass_on_len)
{
	uint32_t mark = records_mark | cfg->mark;

	(void)pass_on, (void)pass_on_len; /* the mark says it all */
	if (state == REDIRECT_BY_SELF || state == REDIRECT_PREVIOUSLY_BY_SELF)
		mark |= cfg->escape_mark;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
		return -errno;
	return 0;
}
