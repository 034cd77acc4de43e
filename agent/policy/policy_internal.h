/*
 * policy_internal.h: the compiled policy's layout, shared by the files of
 * agent/policy/ (parse.c builds it, index.c answers verdicts from it,
 * holder.c swaps it). Not for other layers: they see policy.h.
 */
#ifndef RA_POLICY_INTERNAL_H
#define RA_POLICY_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"
#include "policy.h"

struct rule {
	char id[POLICY_ID_MAX + 1];
	enum policy_action action;
	char **names; /* server name patterns: "host" or "*.domain"; lower case */
	size_t n_names;
	uint32_t *uids; /* the client's owner */
	size_t n_uids;
	char **exes; /* the client's executable: absolute paths, exact */
	size_t n_exes;
	struct forward forward; /* forward: the CONNECT proxy */
	struct cidr *cidrs;
	size_t n_cidrs;
	struct port_range *ports; /* sorted, merged; none: any port */
	size_t n_ports;
	unsigned states; /* bit per enum redirect_state; 0: any */
	/* uids/exe_paths: the verdict when all else matches but the owner is unknown */
	enum policy_action on_unknown;
};

/*
 * The destination index: one hash table per prefix length present, keyed by
 * the masked address, each entry the ascending indices of the rules with
 * that prefix. A lookup probes one table per distinct length (a blocklist
 * uses a handful), not one node per address bit: a 10,000-prefix trie walk
 * missed the cache at every level.
 */
struct pfx_entry {
	uint8_t key[16];
	uint32_t n_rules, cap;
	uint32_t *rules;
	unsigned used;
};

struct pfx_table {
	unsigned len;   /* prefix length */
	size_t n, mask; /* entries used; slots - 1 (a power of two minus one) */
	struct pfx_entry *slots;
};

struct pfx_index {
	struct pfx_table *t; /* ascending by len */
	size_t n;
	unsigned bytes; /* 4 or 16 */
};

struct policy {
	uint64_t version;
	enum policy_action default_action;
	struct rule *rules;
	size_t n_rules;
	struct pfx_index t4, t6;
	char *document; /* normalized JSON */
	int needs_server_name;
	unsigned needs_owner;   /* POLICY_NEEDS_* */
	_Atomic uint64_t *hits; /* n_rules + 1: the last one counts the default */
};
/* Build the destination index of p's rules (index.c). Returns 0 or -1 (out of memory). */
int policy_index_build(struct policy *p);

/* Free the index (index.c); the rules stay. */
void policy_index_free(struct policy *p);

#endif
