/*
 * nft.h: the agent's own nftables table (Linux).
 *
 * The table is written as nft script text and applied through libnftables in
 * one transaction, so the kernel never sees a half-built rule set. The text
 * builder is separate from the apply step so that tests can read the rules.
 *
 * One handle lives for the agent's whole life: libnftables 1.0.6 opens its
 * netlink socket in nft_ctx_new() and waits on it with select(), which aborts
 * the process (FD_SETSIZE) if that socket's number is above 1023. Opened at
 * start-up, before any connection, its number stays low.
 */
#ifndef RA_NFT_H
#define RA_NFT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define NFT_TABLE_NAME_MAX 64
#define NFT_COMMENT_PREFIX "redirect-agent"

struct nft;

/* Open the handle (and its netlink socket). Returns NULL with err set. */
struct nft *nft_open(char *err, size_t errlen);

void nft_close(struct nft *n);

/* "redirect_agent_<agent_id>": one table per agent, so agents never touch each other's rules. */
void nft_table_name(const struct config *cfg, char *buf, size_t len);

/*
 * Write the script that replaces (or creates) the agent's table: the
 * "add table; delete table" prefix makes a stale table left by a crash go
 * away in the same transaction. fwmark_prev (0 or 1; -1: unknown) goes in the
 * table's comment: the value tcp_fwmark_accept had before the agent set it,
 * which the last agent to go puts back, even after a crash (--cleanup). Returns the length written,
 * or -ENOSPC when buf is too small.
 */
int nft_ruleset_format(const struct config *cfg, int fwmark_prev, char *buf, size_t len);

/*
 * Install the table. Returns 0, or a negative errno with nft's own message
 * in err. Needs CAP_NET_ADMIN.
 */
int nft_table_install(
    struct nft *n, const struct config *cfg, int fwmark_prev, char *err, size_t errlen);

/* Remove the table if it exists. Returns 0 or a negative errno with err set. */
int nft_table_remove(struct nft *n, const struct config *cfg, char *err, size_t errlen);

/* 1 if the table exists, 0 if not. */
int nft_table_exists(struct nft *n, const struct config *cfg);

struct policy_bypass;

/*
 * Replace the bypass rules (chain "bypass", sets bp<i>_v4, bp<i>_v6 and
 * bp<i>_ports for rule i) with b, in one transaction; before is how many
 * the previous call installed (0 for a new table). Returns 0 or a negative
 * errno with nft's message in err.
 */
int nft_bypass_set(struct nft *n, const struct config *cfg, const struct policy_bypass *b,
    size_t count, size_t before, char *err, size_t errlen);

/* The nft script nft_bypass_set runs (malloc'ed; NULL when out of memory). */
char *nft_bypass_script(
    const struct config *cfg, const struct policy_bypass *b, size_t count, size_t before);

/* An agent's table as another agent sees it (from the table's comment). */
struct nft_agent {
	char agent_id[CONFIG_AGENT_ID_MAX + 1];
	int pid;
	uint32_t mark, escape_mark;
	uint16_t listen_port;
	int fwmark_prev; /* tcp_fwmark_accept before the first agent set it; -1: unknown */
};

/*
 * The redirect-agent tables in this network namespace, at most max of them.
 * Returns how many were written to out, or a negative errno.
 */
int nft_agents_list(struct nft *n, struct nft_agent *out, size_t max);

#endif
