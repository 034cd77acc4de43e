#include "redirect.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "nft.h"

/* From linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h, whose
 * headers clash with netinet/in.h. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define FWMARK_ACCEPT_SYSCTL "/proc/sys/net/ipv4/tcp_fwmark_accept"

const char *
redirect_state_name(enum redirect_state st)
{
	switch (st) {
	case REDIRECT_NONE:
		return "none";
	case REDIRECT_BY_SELF:
		return "by_self";
	case REDIRECT_BY_OTHER:
		return "by_other";
	case REDIRECT_PREVIOUSLY_BY_SELF:
		return "previously_by_self";
	}
	return "unknown";
}

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

struct redirect {
	const struct config *cfg;
	struct nft *nft;
};

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
	if ((rc = write_sysctl(FWMARK_ACCEPT_SYSCTL, "1\n")) != 0) {
		snprintf(err, errlen, "cannot set %s: %s", FWMARK_ACCEPT_SYSCTL, strerror(-rc));
		return rc;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->cfg = cfg;
	if ((r->nft = nft_open(err, errlen)) == NULL) {
		free(r);
		return -ENOMEM;
	}
	if ((rc = nft_table_install(r->nft, cfg, err, errlen)) != 0) {
		nft_close(r->nft);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void
redirect_teardown(struct redirect *r)
{
	char err[512];

	if (r == NULL)
		return;
	if (nft_table_remove(r->nft, r->cfg, err, sizeof(err)) != 0)
		log_warnx("cannot remove nft table: %s", err);
	nft_close(r->nft);
	free(r);
}

int
redirect_rules_present(struct redirect *r)
{
	return nft_table_exists(r->nft, r->cfg);
}

static enum redirect_state
state_from_mark(uint32_t mark, uint32_t own)
{
	if (mark & own)
		return REDIRECT_BY_SELF;
	if (mark != 0)
		return REDIRECT_BY_OTHER;
	return REDIRECT_NONE;
}

int
redirect_query(
    int fd, const struct endpoint *local, const struct config *cfg, struct redirect_info *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint32_t mark = 0;
	socklen_t mlen = sizeof(mark);
	int r;

	memset(out, 0, sizeof(*out));
	memset(&ss, 0, sizeof(ss));
	if (local->family == AF_INET6)
		r = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
	else
		r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
	if (r != 0)
		return -errno;
	/* The kernel leaves len as passed; the family says what it wrote. */
	if (endpoint_from_sockaddr(&out->orig_dst, (struct sockaddr *)&ss) != 0)
		return -EAFNOSUPPORT;
	/* A connection that was not redirected still has a conntrack entry:
	 * its "original" destination is then the listener. */
	if (endpoint_equal(&out->orig_dst, local))
		return -ENOENT;

	if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &mlen) != 0)
		return -errno;
	out->records_mark = mark;
	out->state = state_from_mark(mark, cfg->mark);
	return 0;
}

int
redirect_prepare_upstream(int fd, const struct config *cfg, const struct redirect_info *info)
{
	uint32_t mark = info->records_mark | cfg->mark;

	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
		return -errno;
	return 0;
}
