/*
 * index.c: verdicts. The destination index (one hash table per prefix length
 * present, per family) finds the rules whose CIDR holds the address; the
 * first of those whose other fields match wins (policy.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy_internal.h"

/* ---- the destination index ---- */

static void
mask_addr(uint8_t *out, const uint8_t *addr, unsigned bytes, unsigned len)
{
	memset(out, 0, 16);
	for (unsigned i = 0; i < bytes && len > 0; i++, len = len > 8 ? len - 8 : 0)
		out[i] = len >= 8 ? addr[i] : (uint8_t)(addr[i] & (0xff00u >> len));
}

static uint64_t
hash_key(const uint8_t *k)
{
	uint64_t a, b;

	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	/* splitmix64's finalizer: every key bit reaches the low bits we index by */
	a ^= b * 0x9e3779b97f4a7c15u;
	a ^= a >> 30;
	a *= 0xbf58476d1ce4e5b9u;
	a ^= a >> 27;
	a *= 0x94d049bb133111ebu;
	return a ^ (a >> 31);
}

static struct pfx_entry *
table_find(const struct pfx_table *t, const uint8_t *key)
{
	for (size_t i = hash_key(key) & t->mask;; i = (i + 1) & t->mask) {
		struct pfx_entry *e = &t->slots[i];

		if (!e->used)
			return NULL;
		if (memcmp(e->key, key, 16) == 0)
			return e;
	}
}

static int
table_grow(struct pfx_table *t)
{
	size_t slots = (t->mask + 1) * 2;
	struct pfx_entry *old = t->slots, *neu = calloc(slots, sizeof(*neu));

	if (neu == NULL)
		return -1;
	for (size_t i = 0; i <= t->mask; i++) {
		size_t j;

		if (!old[i].used)
			continue;
		for (j = hash_key(old[i].key) & (slots - 1); neu[j].used; j = (j + 1) & (slots - 1))
			;
		neu[j] = old[i];
	}
	free(old);
	t->slots = neu;
	t->mask = slots - 1;
	return 0;
}

static struct pfx_table *
index_table(struct pfx_index *ix, unsigned len)
{
	size_t at = 0;
	struct pfx_table *bigger;

	while (at < ix->n && ix->t[at].len < len)
		at++;
	if (at < ix->n && ix->t[at].len == len)
		return &ix->t[at];
	if ((bigger = realloc(ix->t, (ix->n + 1) * sizeof(*bigger))) == NULL)
		return NULL;
	ix->t = bigger;
	memmove(&ix->t[at + 1], &ix->t[at], (ix->n - at) * sizeof(*ix->t));
	ix->n++;
	memset(&ix->t[at], 0, sizeof(ix->t[at]));
	ix->t[at].len = len;
	ix->t[at].mask = 15;
	if ((ix->t[at].slots = calloc(16, sizeof(struct pfx_entry))) == NULL)
		return NULL;
	return &ix->t[at];
}

static void
index_free(struct pfx_index *ix)
{
	for (size_t i = 0; i < ix->n; i++) {
		for (size_t j = 0; j <= ix->t[i].mask; j++)
			free(ix->t[i].slots[j].rules);
		free(ix->t[i].slots);
	}
	free(ix->t);
}

static int
index_insert(struct pfx_index *ix, const uint8_t *addr, unsigned len, uint32_t rule)
{
	struct pfx_table *t = index_table(ix, len);
	struct pfx_entry *e;
	uint8_t key[16];

	if (t == NULL)
		return -1;
	mask_addr(key, addr, ix->bytes, len);
	if ((e = table_find(t, key)) == NULL) {
		size_t i;

		if ((t->n + 1) * 4 > (t->mask + 1) * 3 && table_grow(t) != 0)
			return -1;
		for (i = hash_key(key) & t->mask; t->slots[i].used; i = (i + 1) & t->mask)
			;
		e = &t->slots[i];
		memcpy(e->key, key, 16);
		e->used = 1;
		t->n++;
	}
	/* Rules are inserted in order, so each list stays ascending; a rule
	 * listing one prefix twice is kept once. */
	if (e->n_rules > 0 && e->rules[e->n_rules - 1] == rule)
		return 0;
	if (e->n_rules == e->cap) {
		uint32_t cap = e->cap ? 2 * e->cap : 2;
		uint32_t *bigger = realloc(e->rules, cap * sizeof(*bigger));

		if (bigger == NULL)
			return -1;
		e->rules = bigger;
		e->cap = cap;
	}
	e->rules[e->n_rules++] = rule;
	return 0;
}

/* ---- matching ---- */

static int
ports_contain(const struct rule *r, uint16_t port)
{
	size_t lo = 0, hi = r->n_ports;

	if (r->n_ports == 0)
		return 1;
	while (lo < hi) { /* the first range whose end is >= port */
		size_t mid = (lo + hi) / 2;

		if (r->ports[mid].hi < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n_ports && r->ports[lo].lo <= port;
}

/*
 * A server name pattern (policy.h), both without a trailing dot (names come
 * normalized from the sniffer, patterns from the parser), compared without
 * regard to case: "example.com" is that name only; "*.example.com" any name
 * below it (not example.com itself); ".example.com" example.com and any
 * name below it.
 */
static int
name_matches(const char *pattern, const char *name)
{
	size_t pl, nl = strlen(name);

	if (pattern[0] == '*' && pattern[1] == '.') {
		pl = strlen(pattern + 1); /* ".example.com" */
		return nl > pl && strcasecmp(name + nl - pl, pattern + 1) == 0;
	}
	if (pattern[0] == '.') {
		pl = strlen(pattern);
		return (nl == pl - 1 && strcasecmp(name, pattern + 1) == 0) ||
		       (nl > pl && strcasecmp(name + nl - pl, pattern) == 0);
	}
	return strcasecmp(pattern, name) == 0;
}

/* A rule's fields besides the destination: 0 no, 1 yes, 2 yes but for an unknown owner. */
static int
rest_matches(const struct rule *r, const struct policy_input *in)
{
	int unknown = 0;

	if (r->states != 0 && (r->states & (1u << in->redirect_state)) == 0)
		return 0;
	if (!ports_contain(r, in->dst->port))
		return 0;
	if (r->n_uids > 0 && in->uid < 0) {
		unknown = 1;
	} else if (r->n_uids > 0) {
		size_t i;

		for (i = 0; i < r->n_uids && r->uids[i] != (uint32_t)in->uid; i++)
			;
		if (i == r->n_uids)
			return 0;
	}
	if (r->n_exes > 0 && in->exe == NULL) {
		unknown = 1;
	} else if (r->n_exes > 0) {
		size_t i;

		for (i = 0; i < r->n_exes && strcmp(r->exes[i], in->exe) != 0; i++)
			;
		if (i == r->n_exes)
			return 0;
	}
	if (r->n_names > 0) {
		size_t i;

		if (in->server_name == NULL || in->server_name[0] == '\0')
			return 0;
		for (i = 0; i < r->n_names && !name_matches(r->names[i], in->server_name); i++)
			;
		if (i == r->n_names)
			return 0;
	}
	return unknown ? 2 : 1;
}

struct policy_verdict
policy_evaluate(const struct policy *p, const struct policy_input *in)
{
	const struct pfx_index *ix = in->dst->family == AF_INET6 ? &p->t6 : &p->t4;
	uint32_t best = UINT32_MAX;
	int best_unknown = 0;
	struct policy_verdict v;

	/* Every prefix length present: the rules whose CIDR holds the address. */
	for (size_t t = 0; t < ix->n; t++) {
		const struct pfx_entry *e;
		uint8_t key[16];

		mask_addr(key, in->dst->addr, ix->bytes, ix->t[t].len);
		if ((e = table_find(&ix->t[t], key)) == NULL)
			continue;
		for (uint32_t i = 0; i < e->n_rules && e->rules[i] < best; i++) {
			int m = rest_matches(&p->rules[e->rules[i]], in);

			if (m != 0) {
				best = e->rules[i];
				best_unknown = m == 2;
				break;
			}
		}
	}
	v.owner_unknown = best_unknown;
	if (best == UINT32_MAX) {
		v.action = p->default_action;
		v.rule = -1;
	} else {
		/* A rule about the owner, who is unknown: its on_unknown, never a silent pass. */
		v.action = best_unknown ? p->rules[best].on_unknown : p->rules[best].action;
		v.rule = (int)best;
	}
	return v;
}

void
policy_count_hit(struct policy *p, int rule)
{
	size_t i = rule < 0 ? p->n_rules : (size_t)rule;

	atomic_fetch_add_explicit(&p->hits[i], 1, memory_order_relaxed);
}

uint64_t
policy_hits(const struct policy *p, int rule)
{
	size_t i = rule < 0 ? p->n_rules : (size_t)rule;

	return atomic_load_explicit(&p->hits[i], memory_order_relaxed);
}

int
policy_index_build(struct policy *p)
{
	static const uint8_t zero[16];

	p->t4.bytes = 4;
	p->t6.bytes = 16;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];

		if (r->n_cidrs == 0) { /* any destination: the root of both */
			if (index_insert(&p->t4, zero, 0, (uint32_t)i) != 0 ||
			    index_insert(&p->t6, zero, 0, (uint32_t)i) != 0)
				return -1;
			continue;
		}
		for (size_t c = 0; c < r->n_cidrs; c++) {
			struct pfx_index *t = r->cidrs[c].family == AF_INET6 ? &p->t6 : &p->t4;

			if (index_insert(t, r->cidrs[c].addr, r->cidrs[c].prefix, (uint32_t)i) != 0)
				return -1;
		}
	}
	return 0;
}

void
policy_index_free(struct policy *p)
{
	index_free(&p->t4);
	index_free(&p->t6);
}
