#include "nft.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"
#include "policy.h"

void
nft_table_name(const struct config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "redirect_agent_%s", cfg->agent_id);
}

/* A bounded appender: once full, it stays full and the caller sees -ENOSPC. */
struct sbuf {
	char *p;
	size_t len, off;
	int overflow;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->p + sb->off, sb->len - sb->off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->len - sb->off) {
		sb->overflow = 1;
		return;
	}
	sb->off += (size_t)n;
}

static void
sb_cidr_set(struct sbuf *sb, const char *name, int family, const struct cidr *c, size_t n)
{
	char text[ADDR_CIDR_STRLEN];
	const char *sep = "";

	sb_printf(sb, "\tset %s {\n\t\ttype %s; flags interval; auto-merge;\n", name,
	    family == AF_INET ? "ipv4_addr" : "ipv6_addr");
	for (size_t i = 0; i < n; i++) {
		if (c[i].family != family)
			continue;
		if (*sep == '\0')
			sb_printf(sb, "\t\telements = { ");
		sb_printf(sb, "%s%s", sep, addr_format_cidr(&c[i], text, sizeof(text)));
		sep = ", ";
	}
	if (*sep != '\0')
		sb_printf(sb, " }\n");
	sb_printf(sb, "\t}\n");
}

int
nft_ruleset_format(const struct config *cfg, int fwmark_prev, char *buf, size_t len)
{
	struct sbuf sb = {buf, len, 0, 0};
	char table[NFT_TABLE_NAME_MAX];
	const char *sep = "";

	if (len == 0)
		return -ENOSPC;
	nft_table_name(cfg, table, sizeof(table));
	sb_printf(&sb, "add table inet %s\ndelete table inet %s\n", table, table);
	sb_printf(&sb, "table inet %s {\n", table);
	sb_cidr_set(&sb, "redirect_v4", AF_INET, cfg->redirect_cidrs, cfg->n_redirect_cidrs);
	sb_cidr_set(&sb, "redirect_v6", AF_INET6, cfg->redirect_cidrs, cfg->n_redirect_cidrs);
	sb_cidr_set(&sb, "exclude_v4", AF_INET, cfg->exclude_cidrs, cfg->n_exclude_cidrs);
	sb_cidr_set(&sb, "exclude_v6", AF_INET6, cfg->exclude_cidrs, cfg->n_exclude_cidrs);

	/* Filled from the policy's bypass rules, with their sets (nft_bypass_set). */
	sb_printf(&sb, "\tchain bypass {\n\t}\n");

	sb_printf(&sb, "\tset ports {\n\t\ttype inet_service; flags interval; auto-merge;\n");
	for (size_t i = 0; i < cfg->n_redirect_ports; i++) {
		const struct port_range *pr = &cfg->redirect_ports[i];

		if (i == 0)
			sb_printf(&sb, "\t\telements = { ");
		if (pr->lo == pr->hi)
			sb_printf(&sb, "%s%u", sep, (unsigned)pr->lo);
		else
			sb_printf(&sb, "%s%u-%u", sep, (unsigned)pr->lo, (unsigned)pr->hi);
		sep = ", ";
	}
	if (cfg->n_redirect_ports > 0)
		sb_printf(&sb, " }\n");
	sb_printf(&sb, "\t}\n");

	/*
	 * The comment identifies the owner, so that a second agent can see which
	 * bits and port are taken (nft_agents_list).
	 */
	sb_printf(&sb,
	    "\tcomment \"" NFT_COMMENT_PREFIX
	    " pid=%ld mark=0x%x escape=0x%x port=%u fwmark_prev=%d\"\n",
	    (long)getpid(), cfg->mark, cfg->escape_mark, (unsigned)cfg->listen_port, fwmark_prev);

	/*
	 * The remote API's port takes only so many connections, from one peer
	 * and in all, counted by conntrack and refused before TLS: no peer,
	 * authenticated or not, holds the agent's descriptors or memory.
	 */
	if (cfg->remote_listen[0] != '\0') {
		char host[sizeof(cfg->remote_listen)];
		uint16_t port = 0;

		(void)parse_host_port(cfg->remote_listen, host, sizeof(host), &port);
		sb_printf(&sb,
		    "\tset api_peers_v4 {\n\t\ttype ipv4_addr; size 65535; flags dynamic;\n\t}\n"
		    "\tset api_peers_v6 {\n\t\ttype ipv6_addr; size 65535; flags dynamic;\n\t}\n"
		    "\tchain api_guard {\n"
		    "\t\ttype filter hook input priority filter; policy accept;\n"
		    "\t\ttcp dport %u ct state new add @api_peers_v4 { ip saddr ct count over %u } "
		    "counter reject with tcp reset\n"
		    "\t\ttcp dport %u ct state new add @api_peers_v6 { ip6 saddr ct count over %u "
		    "} "
		    "counter reject with tcp reset\n"
		    "\t\ttcp dport %u ct state new ct count over %u counter reject with tcp reset\n"
		    "\t}\n",
		    (unsigned)port, cfg->remote_max_per_peer, (unsigned)port,
		    cfg->remote_max_per_peer, (unsigned)port, cfg->remote_max_connections);
	}

	/*
	 * A connection that came back to an agent it had already passed leaves
	 * again with the escape mark: untracked, so no nat rule of anyone's (a
	 * broken one included) can redirect it once more.
	 */
	sb_printf(&sb,
	    "\tchain escape {\n"
	    "\t\ttype filter hook output priority raw; policy accept;\n"
	    "\t\tmeta mark & 0x%x == 0x%x notrack\n"
	    "\t}\n",
	    cfg->escape_mark, cfg->escape_mark);

	if (cfg->mode == MODE_TPROXY) {
		/*
		 * Forwarded connections (this host is their gateway) are taken in
		 * prerouting and marked for local delivery by the agent's policy
		 * routing; traffic addressed to this host itself is left alone.
		 */
		sb_printf(&sb,
		    "\tchain prerouting {\n"
		    "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
		    "\t\tmeta l4proto != tcp return\n"
		    "\t\tfib daddr type local return\n"
		    "\t\tip daddr @exclude_v4 return\n"
		    "\t\tip6 daddr @exclude_v6 return\n"
		    "\t\tjump bypass\n"
		    "\t\tip daddr @redirect_v4 tcp dport @ports counter "
		    "meta mark set meta mark | 0x%x tproxy ip to :%u accept\n"
		    "\t\tip6 daddr @redirect_v6 tcp dport @ports counter "
		    "meta mark set meta mark | 0x%x tproxy ip6 to :%u accept\n"
		    "\t}\n"
		    "}\n",
		    cfg->tproxy_mark, (unsigned)cfg->listen_port, cfg->tproxy_mark,
		    (unsigned)cfg->listen_port);
	} else {
		/*
		 * The nat output hook sees only the first packet of each
		 * connection, so only new outbound connections are redirected.
		 * Packets carrying this agent's mark are its own upstream
		 * connections: they must pass.
		 */
		sb_printf(&sb,
		    "\tchain output {\n"
		    "\t\ttype nat hook output priority -100; policy accept;\n"
		    "\t\tmeta l4proto != tcp return\n"
		    "\t\tmeta mark & 0x%x == 0x%x return\n"
		    "\t\tip daddr @exclude_v4 return\n"
		    "\t\tip6 daddr @exclude_v6 return\n"
		    "\t\tjump bypass\n"
		    "\t\tip daddr @redirect_v4 tcp dport @ports counter redirect to :%u\n"
		    "\t\tip6 daddr @redirect_v6 tcp dport @ports counter redirect to :%u\n"
		    "\t}\n"
		    "}\n",
		    cfg->mark, cfg->mark, (unsigned)cfg->listen_port, (unsigned)cfg->listen_port);
	}

	if (sb.overflow)
		return -ENOSPC;
	return (int)sb.off;
}

struct nft {
	struct nft_ctx *ctx;
};

struct nft *
nft_open(char *err, size_t errlen)
{
	struct nft *n = calloc(1, sizeof(*n));

	if (n == NULL || (n->ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL) {
		snprintf(err, errlen, "cannot create an nftables context");
		free(n);
		return NULL;
	}
	nft_ctx_buffer_output(n->ctx);
	nft_ctx_buffer_error(n->ctx);
	return n;
}

void
nft_close(struct nft *n)
{
	if (n == NULL)
		return;
	nft_ctx_free(n->ctx);
	free(n);
}

/* Run one nft script; on failure copy nft's error text into err. */
static int
nft_run(struct nft *n, const char *script, char *err, size_t errlen)
{
	int rc = nft_run_cmd_from_buffer(n->ctx, script);
	/* Reading a buffer also empties it: do it every time, or a long-lived
	 * context accumulates every listing and warning. */
	const char *e = nft_ctx_get_error_buffer(n->ctx);

	(void)nft_ctx_get_output_buffer(n->ctx);
	if (rc != 0 && err != NULL) {
		size_t len;

		snprintf(err, errlen, "%s", e != NULL && e[0] != '\0' ? e : "nft command failed");
		len = strlen(err);
		while (len > 0 && err[len - 1] == '\n')
			err[--len] = '\0';
	}
	return rc == 0 ? 0 : -EPERM;
}

int
nft_table_install(
    struct nft *n, const struct config *cfg, int fwmark_prev, char *err, size_t errlen)
{
	/* Every element costs at most ~50 bytes of text. */
	size_t len =
	    4096 + 64 * (cfg->n_redirect_cidrs + cfg->n_exclude_cidrs + cfg->n_redirect_ports);
	char *script = malloc(len);
	int r;

	if (script == NULL)
		return -ENOMEM;
	r = nft_ruleset_format(cfg, fwmark_prev, script, len);
	if (r >= 0)
		r = nft_run(n, script, err, errlen);
	else if (err != NULL)
		snprintf(err, errlen, "rule set larger than %zu bytes", len);
	free(script);
	return r;
}

int
nft_table_remove(struct nft *n, const struct config *cfg, char *err, size_t errlen)
{
	char table[NFT_TABLE_NAME_MAX];
	char script[2 * NFT_TABLE_NAME_MAX + 64];

	nft_table_name(cfg, table, sizeof(table));
	snprintf(script, sizeof(script), "add table inet %s\ndelete table inet %s\n", table, table);
	return nft_run(n, script, err, errlen);
}

int
nft_table_exists(struct nft *n, const struct config *cfg)
{
	char table[NFT_TABLE_NAME_MAX];
	char script[NFT_TABLE_NAME_MAX + 32];

	nft_table_name(cfg, table, sizeof(table));
	snprintf(script, sizeof(script), "list table inet %s\n", table);
	return nft_run(n, script, NULL, 0) == 0 ? 1 : 0;
}

/* Parse our own comment: "redirect-agent pid=N mark=0xM escape=0xE port=P". */
static int
parse_comment(const char *c, struct nft_agent *a)
{
	long pid;
	unsigned mark, escape, port;
	int prev = -1;

	/* fwmark_prev came later: a table without it does not know. */
	if (sscanf(c, NFT_COMMENT_PREFIX " pid=%ld mark=0x%x escape=0x%x port=%u fwmark_prev=%d",
		&pid, &mark, &escape, &port, &prev) < 4)
		return -1;
	a->fwmark_prev = prev == 0 || prev == 1 ? prev : -1;
	a->pid = (int)pid;
	a->mark = mark;
	a->escape_mark = escape;
	a->listen_port = (uint16_t)port;
	return 0;
}

int
nft_agents_list(struct nft *n, struct nft_agent *out, size_t max)
{
	char *tables, *line, *save = NULL;
	size_t found = 0;
	const char *o;

	/* JSON output of nft 1.0.6 leaves table comments out: read the text. */
	if (nft_run_cmd_from_buffer(n->ctx, "list tables inet\n") != 0) {
		(void)nft_ctx_get_error_buffer(n->ctx);
		(void)nft_ctx_get_output_buffer(n->ctx);
		return -EPERM;
	}
	(void)nft_ctx_get_error_buffer(n->ctx);
	o = nft_ctx_get_output_buffer(n->ctx);
	if ((tables = strdup(o != NULL ? o : "")) == NULL)
		return -ENOMEM;
	for (line = strtok_r(tables, "\n", &save); line != NULL && found < max;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[NFT_TABLE_NAME_MAX], cmd[NFT_TABLE_NAME_MAX + 32];
		const char *text, *c;

		if (sscanf(line, "table inet %63s", name) != 1 ||
		    strncmp(name, "redirect_agent_", 15) != 0)
			continue;
		snprintf(cmd, sizeof(cmd), "list table inet %s\n", name);
		if (nft_run_cmd_from_buffer(n->ctx, cmd) != 0) {
			(void)nft_ctx_get_error_buffer(n->ctx);
			(void)nft_ctx_get_output_buffer(n->ctx);
			continue; /* removed meanwhile */
		}
		(void)nft_ctx_get_error_buffer(n->ctx);
		text = nft_ctx_get_output_buffer(n->ctx);
		if (text == NULL || (c = strstr(text, "comment \"")) == NULL)
			continue;
		memset(&out[found], 0, sizeof(out[found]));
		snprintf(out[found].agent_id, sizeof(out[found].agent_id), "%.*s",
		    CONFIG_AGENT_ID_MAX, name + 15);
		if (parse_comment(c + 9, &out[found]) == 0)
			found++;
	}
	free(tables);
	return (int)found;
}

/* "add element inet T SET { a, b, ... }" for one family's CIDRs of a rule (none: nothing). */
static void
sb_cidr_elements(
    struct sbuf *sb, const char *table, const char *set, int family, const struct policy_bypass *b)
{
	const char *sep = "";

	for (size_t i = 0; i < b->n_cidrs; i++) {
		char c[ADDR_CIDR_STRLEN];

		if (b->cidrs[i].family != family)
			continue;
		if (*sep == '\0')
			sb_printf(sb, "add element inet %s %s { ", table, set);
		sb_printf(sb, "%s%s", sep, addr_format_cidr(&b->cidrs[i], c, sizeof(c)));
		sep = ", ";
	}
	if (*sep != '\0')
		sb_printf(sb, " }\n");
}

static int
has_family(const struct policy_bypass *b, int family)
{
	for (size_t i = 0; i < b->n_cidrs; i++)
		if (b->cidrs[i].family == family)
			return 1;
	return 0;
}

char *
nft_bypass_script(
    const struct config *cfg, const struct policy_bypass *b, size_t count, size_t before)
{
	char table[NFT_TABLE_NAME_MAX];
	size_t len = 512 + 160 * before;
	char *script;
	struct sbuf sb;

	for (size_t i = 0; i < count; i++)
		len += 1024 + (ADDR_CIDR_STRLEN + 2) * b[i].n_cidrs + 16 * b[i].n_ports;
	if ((script = malloc(len)) == NULL)
		return NULL;
	sb = (struct sbuf){script, len, 0, 0};
	nft_table_name(cfg, table, sizeof(table));
	/*
	 * One transaction: the kernel never sees the rules half replaced. Rule i
	 * has a set of IPv4 and of IPv6 destinations and one of ports; its
	 * traffic is accepted (not redirected) when the address is in one and
	 * the port in the other.
	 */
	sb_printf(&sb, "flush chain inet %s bypass\n", table);
	for (size_t i = 0; i < before; i++)
		sb_printf(&sb,
		    "delete set inet %s bp%zu_v4\ndelete set inet %s bp%zu_v6\n"
		    "delete set inet %s bp%zu_ports\n",
		    table, i, table, i, table, i);
	for (size_t i = 0; i < count; i++) {
		const struct policy_bypass *x = &b[i];
		const char *port_match = x->n_ports > 0 ? " tcp dport @bp" : "";
		char ports[48] = "", set[32];

		sb_printf(&sb,
		    "add set inet %s bp%zu_v4 { type ipv4_addr; flags interval; auto-merge; }\n"
		    "add set inet %s bp%zu_v6 { type ipv6_addr; flags interval; auto-merge; }\n"
		    "add set inet %s bp%zu_ports { type inet_service; flags interval; }\n",
		    table, i, table, i, table, i);
		snprintf(set, sizeof(set), "bp%zu_v4", i);
		sb_cidr_elements(&sb, table, set, AF_INET, x);
		snprintf(set, sizeof(set), "bp%zu_v6", i);
		sb_cidr_elements(&sb, table, set, AF_INET6, x);
		if (x->n_ports > 0) {
			const char *sep = "";

			sb_printf(&sb, "add element inet %s bp%zu_ports { ", table, i);
			for (size_t k = 0; k < x->n_ports; k++, sep = ", ")
				sb_printf(&sb, "%s%u-%u", sep, (unsigned)x->ports[k].lo,
				    (unsigned)x->ports[k].hi);
			sb_printf(&sb, " }\n");
			snprintf(ports, sizeof(ports), "%s%zu_ports", port_match, i);
		}
		if (x->n_cidrs == 0) { /* any address */
			sb_printf(&sb, "add rule inet %s bypass meta l4proto tcp%s accept\n", table,
			    ports);
			continue;
		}
		for (int fam = AF_INET; fam != 0; fam = fam == AF_INET ? AF_INET6 : 0)
			if (has_family(x, fam))
				sb_printf(&sb,
				    "add rule inet %s bypass %s daddr @bp%zu_%s%s accept\n", table,
				    fam == AF_INET ? "ip" : "ip6", i, fam == AF_INET ? "v4" : "v6",
				    ports);
	}
	if (sb.overflow) { /* the length above is an upper bound: never */
		free(script);
		return NULL;
	}
	return script;
}

int
nft_bypass_set(struct nft *n, const struct config *cfg, const struct policy_bypass *b, size_t count,
    size_t before, char *err, size_t errlen)
{
	char *script = nft_bypass_script(cfg, b, count, before);
	int r;

	if (script == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = nft_run(n, script, err, errlen);
	free(script);
	return r;
}
