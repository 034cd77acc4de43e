/*
 * bench_policy: the verdict for a new connection, with 10,000 rules.
 *
 * Baseline, measured in the same run: a first-match linear scan over the
 * same rules (CIDR test + port test per rule), which is what the compiled
 * policy replaces. Prints the median and p99 time per verdict for both and
 * their ratio. Bounded: a fixed number of lookups.
 *
 *   build/tests/bench_policy [RULES] [LOOKUPS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

struct flat_rule {
	struct cidr cidr;
	int any_cidr;
	uint16_t port;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
linear(const struct flat_rule *r, size_t n, const struct endpoint *e)
{
	for (size_t i = 0; i < n; i++)
		if ((r[i].any_cidr || addr_cidr_contains(&r[i].cidr, e->family, e->addr)) &&
		    r[i].port == e->port)
			return (int)i;
	return -1;
}

/* A positive count from the command line; -1 when it is not one. */
static int
arg_int(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || v <= 0 || v > 10000000 ? -1 : (int)v;
}

/* Time `batch` verdicts per sample; per-verdict ns in out[]. */
#define BATCH 64

int
main(int argc, char **argv)
{
	int n_rules = argc > 1 ? arg_int(argv[1]) : 10000;
	int lookups = argc > 2 ? arg_int(argv[2]) : 200000;
	size_t cap = (size_t)n_rules * 140 + 256, off = 0;
	char *doc = malloc(cap);
	struct flat_rule *flat = calloc((size_t)n_rules, sizeof(*flat));
	struct endpoint *probes;
	struct policy_problems pr;
	struct policy *p;
	int samples = lookups / BATCH, agree = 0;
	uint64_t *t_trie = calloc((size_t)samples, 8), *t_lin = calloc((size_t)samples, 8);
	volatile int sink = 0;
	double med_t, med_l, p99_t, p99_l;

	if (n_rules < 2 || samples < 10 || doc == NULL || flat == NULL) {
		fprintf(stderr, "usage: bench_policy [RULES>=2] [LOOKUPS>=640]\n");
		return 2;
	}
	/* A blocklist-like set: rule i is its own /24 and one port; the last
	 * rule matches any address on port 22. */
	off += (size_t)snprintf(doc + off, cap - off, "{\"rules\": [");
	for (int i = 0; i < n_rules - 1; i++) {
		char c[32];

		snprintf(c, sizeof(c), "10.%d.%d.0/24", (i / 256) % 256, i % 256);
		off += (size_t)snprintf(doc + off, cap - off,
		    "{\"id\": \"r%d\", \"action\": \"block\", \"match\": {\"dst_cidrs\": [\"%s\"], "
		    "\"dst_ports\": [%d]}},",
		    i, c, 1000 + i % 50);
		(void)addr_parse_cidr(c, &flat[i].cidr, NULL, 0);
		flat[i].port = (uint16_t)(1000 + i % 50);
	}
	off += (size_t)snprintf(doc + off, cap - off,
	    "{\"id\": \"ssh\", \"action\": \"block\", \"match\": {\"dst_ports\": [22]}}]}");
	flat[n_rules - 1].any_cidr = 1;
	flat[n_rules - 1].port = 22;
	if ((p = policy_compile(doc, off, &pr)) == NULL) {
		fprintf(stderr, "bench_policy: %s\n", pr.n ? pr.msg[0] : "?");
		return 1;
	}

	/* Probes: a third hit a rule, a third hit the last rule, a third miss. */
	probes = calloc(BATCH * 16, sizeof(*probes));
	srand(7);
	for (int i = 0; i < BATCH * 16; i++) {
		int r = rand() % (n_rules - 1);
		struct endpoint *e = &probes[i];

		e->family = AF_INET;
		e->addr[0] = 10;
		e->addr[1] = (uint8_t)((r / 256) % 256);
		e->addr[2] = (uint8_t)(r % 256);
		e->addr[3] = (uint8_t)(rand() % 256);
		e->port = i % 3 == 0 ? (uint16_t)(1000 + r % 50) : i % 3 == 1 ? 22 : 9999;
	}
	for (int i = 0; i < BATCH * 16; i++) {
		struct policy_input in = {&probes[i], REDIRECT_NONE, NULL, -1, NULL};

		agree += policy_evaluate(p, &in).rule == linear(flat, (size_t)n_rules, &probes[i]);
	}
	if (agree != BATCH * 16) {
		fprintf(stderr, "bench_policy: compiled and linear disagree on %d probes\n",
		    BATCH * 16 - agree);
		return 1;
	}
	/* Alternate the two in rounds, so both see the same machine; within a
	 * round each runs on its own (warm) data, as a verdict in a busy agent
	 * runs on a policy it keeps using. */
	for (int round = 0, s = 0; round < 10; round++) {
		int end = samples * (round + 1) / 10;

		for (int i = s; i < end; i++) {
			const struct endpoint *e = &probes[(i % 16) * BATCH];
			uint64_t t0 = now_ns();

			for (int k = 0; k < BATCH; k++) {
				struct policy_input in = {&e[k], REDIRECT_NONE, NULL, -1, NULL};

				sink += policy_evaluate(p, &in).rule;
			}
			t_trie[i] = now_ns() - t0;
		}
		for (int i = s; i < end; i++) {
			const struct endpoint *e = &probes[(i % 16) * BATCH];
			uint64_t t0 = now_ns();

			for (int k = 0; k < BATCH; k++)
				sink += linear(flat, (size_t)n_rules, &e[k]);
			t_lin[i] = now_ns() - t0;
		}
		s = end;
	}
	qsort(t_trie, (size_t)samples, 8, cmp_u64);
	qsort(t_lin, (size_t)samples, 8, cmp_u64);
	med_t = (double)t_trie[samples / 2] / BATCH;
	med_l = (double)t_lin[samples / 2] / BATCH;
	p99_t = (double)t_trie[samples * 99 / 100] / BATCH;
	p99_l = (double)t_lin[samples * 99 / 100] / BATCH;
	printf("rules %d, lookups %d (batches of %d), probes agree with the linear scan\n", n_rules,
	    samples * BATCH, BATCH);
	printf("%-24s %12s %12s\n", "verdict", "median ns", "p99 ns");
	printf("%-24s %12.1f %12.1f\n", "linear scan (baseline)", med_l, p99_l);
	printf("%-24s %12.1f %12.1f\n", "compiled (prefix index)", med_t, p99_t);
	printf("ratio compiled/baseline: %.4fx median, %.4fx p99\n", med_t / med_l, p99_t / p99_l);
	policy_free(p);
	free(doc);
	free(flat);
	free(probes);
	free(t_trie);
	free(t_lin);
	return sink == 42 ? 3 : 0;
}
