/*
 * policy.h: the rules that decide what happens to each redirected connection.
 *
 * A policy document (JSON, the same fields as redirect.v1.PolicyDocument):
 *
 *   {"default_action": "allow",
 *    "rules": [{"id": "no-telnet", "description": "...",
 *               "match": {"dst_cidrs": ["10.0.0.0/8"], "dst_ports": [23, "8000-8080"],
 *                         "redirect_states": ["none"]},
 *               "action": "block"}]}
 *
 * Rules are tried in order; the first whose every given field matches wins,
 * else default_action. An empty match matches everything. Actions: allow
 * (relay), block (refuse with a reset, recorded), bypass (relay, and stop
 * redirecting this CIDR/ports in the kernel). Bypass rules must come before
 * every other rule: the kernel skips their traffic before the agent could
 * apply an earlier rule.
 *
 * policy_parse() returns every problem with its path; a document with any
 * problem is never compiled. The compiled form answers a verdict without a
 * scan of the rules: destination CIDRs sit in one hash table per prefix
 * length present (per family), keyed by the masked address, whose entries
 * hold the ascending indices of the rules with that prefix; so only rules
 * whose CIDR contains the address are looked at, and the first of those
 * whose ports (sorted, merged ranges) and redirect state match wins.
 */
#ifndef RA_POLICY_H
#define RA_POLICY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "conn.h"
#include "platform.h"

#define POLICY_ID_MAX       63
#define POLICY_MAX_RULES    100000
#define POLICY_MAX_PROBLEMS 100 /* reported; more are counted */

/* The actions are verdicts of the record (conn.h), with the same values. */
enum policy_action {
	POLICY_ALLOW = VERDICT_ALLOW,
	POLICY_BLOCK = VERDICT_BLOCK,
	POLICY_BYPASS = VERDICT_BYPASS,
	POLICY_FORWARD = VERDICT_FORWARD, /* relay through an HTTP CONNECT proxy */
};

static inline enum conn_verdict
policy_action_verdict(enum policy_action a)
{
	return (enum conn_verdict)a;
}

/* The action's name: its verdict's (conn.h). */
static inline const char *
policy_action_name(enum policy_action a)
{
	return conn_verdict_name(policy_action_verdict(a));
}

/* Bits of redirect_states (enum redirect_state values as bits). */
#define POLICY_STATE_ANY 0u

struct policy;

/* Problems found in a document: "rules[3].match.dst_cidrs[0]: not a CIDR". */
struct policy_problems {
	char *msg[POLICY_MAX_PROBLEMS];
	size_t n;
	size_t more; /* problems beyond the first POLICY_MAX_PROBLEMS */
};

void policy_problems_free(struct policy_problems *p);

/*
 * Parse, validate and compile a document. Returns the compiled policy (with
 * version 0: the caller assigns it), or NULL with every problem in probs
 * (at least one). len may be (size_t)-1 for a NUL-terminated text.
 */
struct policy *policy_compile(const char *json, size_t len, struct policy_problems *probs);

/* The policy that applies with no document: no rules, default allow. */
struct policy *policy_allow_all(void);

void policy_free(struct policy *p);

void policy_set_version(struct policy *p, uint64_t version);
uint64_t policy_version(const struct policy *p);
size_t policy_n_rules(const struct policy *p);
const char *policy_rule_id(const struct policy *p, size_t i);

/* Whether any rule matches on server names (then sessions read the first
 * client bytes, bounded, before the verdict). */
int policy_needs_server_name(const struct policy *p);

/* What the rules need to know about the client's owner (owner.h). */
#define POLICY_NEEDS_UID 1u
#define POLICY_NEEDS_EXE 2u
unsigned policy_needs_owner(const struct policy *p);

/*
 * A forward rule's CONNECT proxy: an address, or a name resolved when a
 * connection is forwarded (asynchronously, off the event loop, cached for
 * a while: proxy/resolve.h). A name that does not resolve then fails that
 * connection ("forward proxy failed"), never the policy.
 */
struct forward {
	char host[256]; /* the name, or the address as written */
	uint16_t port;
	int is_addr;                  /* host is an address: addr is it */
	struct sockaddr_storage addr; /* with is_addr */
};

/* The CONNECT proxy of a forward rule; NULL for any other rule. */
const struct forward *policy_forward_to(const struct policy *p, int rule);

/* A rule's action; rule -1 is the default action. */
enum policy_action policy_rule_action(const struct policy *p, int rule);

/* The document, normalized (compact JSON, fields in the order given). */
const char *policy_document(const struct policy *p);

/* What a new connection is judged on. */
struct policy_input {
	const struct endpoint *dst;
	unsigned redirect_state; /* enum redirect_state */
	const char *server_name; /* SNI or Host, normalized (sniff.h); NULL or "" when unknown */
	int32_t uid;             /* the client's owner; -1 when unknown */
	const char *exe;         /* its executable; NULL when unknown */
};

struct policy_verdict {
	enum policy_action action;
	int rule;          /* index, or -1 for the default action */
	int owner_unknown; /* the rule needed the client's owner, unknown: its on_unknown */
};

/* First match wins. Thread-safe (read-only), allocation-free. */
struct policy_verdict policy_evaluate(const struct policy *p, const struct policy_input *in);

/* Count a verdict for GetStats: per rule, and the default (rule -1). Thread-safe. */
void policy_count_hit(struct policy *p, int rule);
uint64_t policy_hits(const struct policy *p, int rule);

/*
 * A bypass rule as the kernel sees it: its destination CIDRs (both
 * families; none: any address) and its port ranges (none: any port). The
 * kernel gets one set of each per rule and matches the address in one and
 * the port in the other: a rule of 1,000 CIDRs and 1,000 ports is 2,000
 * elements, not a cross product of 1,000,000.
 */
struct policy_bypass {
	const struct cidr *cidrs; /* into the policy: valid while it is */
	size_t n_cidrs;
	const struct port_range *ports;
	size_t n_ports;
};

/* What a document's bypass rules may expand into (refused beyond, with a message). */
#define POLICY_MAX_BYPASS_RULES    64
#define POLICY_MAX_BYPASS_ELEMENTS 100000 /* CIDRs and port ranges, all bypass rules */

/* The bypass rules, up to max into out; returns how many there are in all. */
size_t policy_bypass_list(const struct policy *p, struct policy_bypass *out, size_t max);

/*
 * The policy in force, swapped atomically. Readers (the event loops, one
 * slot each) never block and never see a freed policy: a reader publishes
 * what it reads in its slot, and the writer frees an old policy only once no
 * slot holds it.
 */
struct policy_holder;

struct policy_holder *policy_holder_new(struct policy *initial, unsigned n_slots);
void policy_holder_free(struct policy_holder *h);

/* Reader side: take the current policy into slot (pass the result to release). */
struct policy *policy_acquire(struct policy_holder *h, unsigned slot);
void policy_release(struct policy_holder *h, unsigned slot);

/* Writer side (one writer at a time): install p, wait out readers of the
 * old one, free it. */
void policy_install(struct policy_holder *h, struct policy *p);

/* The current policy, for the writer's thread only (no slot needed: only
 * that thread replaces it). */
struct policy *policy_current(struct policy_holder *h);

#endif
