#include "route.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"

/* Send one request and wait for its acknowledgement. Returns 0 or -errno. */
static int
rtnl_request(struct mnl_socket *nl, struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int rc;

	/* Each request its own sequence: an answer is matched to the request
	 * that asked for it (two in one second had the same one with time()). */
	static _Atomic unsigned next_seq = 1;

	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = atomic_fetch_add(&next_seq, 1);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	rc = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, NULL, NULL);
	return rc < 0 ? -errno : 0;
}

/* One "ip rule": fwmark mark/mark [iif lo] lookup table, at pref. */
static int
rule(struct mnl_socket *nl, int add, int family, const struct config *cfg, int from_host)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct fib_rule_hdr *frh;

	nlh->nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
	nlh->nlmsg_flags = add ? NLM_F_CREATE | NLM_F_EXCL : 0;
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = (unsigned char)family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_PRIORITY, ROUTE_RULE_PREF + (from_host ? 0 : 1));
	mnl_attr_put_u32(nlh, FRA_FWMARK, cfg->tproxy_mark);
	mnl_attr_put_u32(nlh, FRA_FWMASK, cfg->tproxy_mark);
	if (from_host) {
		mnl_attr_put_strz(nlh, FRA_IIFNAME, "lo");
		mnl_attr_put_u32(nlh, FRA_TABLE, RT_TABLE_MAIN);
	} else {
		mnl_attr_put_u32(nlh, FRA_TABLE, cfg->tproxy_table);
	}
	return rtnl_request(nl, nlh);
}

/* "ip route add local default dev lo table T". */
static int
route(struct mnl_socket *nl, int add, int family, const struct config *cfg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	nlh->nlmsg_flags = add ? NLM_F_CREATE | NLM_F_REPLACE : 0;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (unsigned char)family;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = RT_TABLE_UNSPEC;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put_u32(nlh, RTA_TABLE, cfg->tproxy_table);
	mnl_attr_put_u32(nlh, RTA_OIF, if_nametoindex("lo"));
	return rtnl_request(nl, nlh);
}

static const int families[] = {AF_INET, AF_INET6};

/* Delete every copy of our rules and routes (a crash may have left several). */
static void
remove_all(struct mnl_socket *nl, const struct config *cfg)
{
	for (size_t f = 0; f < 2; f++) {
		for (int from_host = 0; from_host < 2; from_host++)
			for (int i = 0; i < 16 && rule(nl, 0, families[f], cfg, from_host) == 0;
			     i++)
				;
		(void)route(nl, 0, families[f], cfg);
	}
}

static struct mnl_socket *
rtnl_open(void)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);

	if (nl == NULL)
		return NULL;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;

		mnl_socket_close(nl);
		errno = e;
		return NULL;
	}
	return nl;
}

int
route_tproxy_install(const struct config *cfg, char *err, size_t errlen)
{
	struct mnl_socket *nl = rtnl_open();
	int rc = 0;

	if (nl == NULL) {
		rc = -errno;
		snprintf(err, errlen, "rtnetlink: %s", err_str(rc));
		return rc;
	}
	remove_all(nl, cfg);
	for (size_t f = 0; f < 2 && rc == 0; f++) {
		const char *what = "route";

		rc = route(nl, 1, families[f], cfg);
		if (rc == 0) {
			what = "rule";
			rc = rule(nl, 1, families[f], cfg, 1);
		}
		if (rc == 0)
			rc = rule(nl, 1, families[f], cfg, 0);
		/* A host without IPv6 has nothing to route there. */
		if (rc == -EAFNOSUPPORT && families[f] == AF_INET6)
			rc = 0;
		else if (rc != 0)
			snprintf(err, errlen, "cannot add the TPROXY %s for %s (table %u): %s",
			    what, families[f] == AF_INET ? "IPv4" : "IPv6", cfg->tproxy_table,
			    err_str(rc));
	}
	if (rc != 0)
		remove_all(nl, cfg);
	mnl_socket_close(nl);
	return rc;
}

int
route_tproxy_remove(const struct config *cfg)
{
	struct mnl_socket *nl = rtnl_open();

	if (nl == NULL)
		return -errno;
	remove_all(nl, cfg);
	mnl_socket_close(nl);
	return 0;
}
