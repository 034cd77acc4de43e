/* Unit tests: the nft rule set text (agent/nft.c). Applying it is a scenario test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "nft.h"
#include "policy.h"

static struct config cfg;

static void
test_default_rules(void **state)
{
	char buf[8192];
	int n;

	(void)state;
	config_defaults(&cfg);
	n = nft_ruleset_format(&cfg, 0, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	/* replacing a stale table happens in the same transaction */
	assert_non_null(strstr(buf, "add table inet redirect_agent_default\n"
				    "delete table inet redirect_agent_default\n"
				    "table inet redirect_agent_default {"));
	assert_non_null(strstr(buf, "elements = { 0.0.0.0/0 }"));
	assert_non_null(strstr(buf, "elements = { ::/0 }"));
	assert_non_null(strstr(buf, "elements = { 127.0.0.0/8 }"));
	assert_non_null(strstr(buf, "elements = { ::1/128 }"));
	assert_non_null(strstr(buf, "elements = { 80, 443 }"));
	assert_non_null(strstr(buf, "meta mark & 0x1 == 0x1 return"));
	assert_non_null(strstr(buf, "tcp dport @ports counter redirect to :15001"));
	/* the mark check comes before any redirect */
	assert_true(strstr(buf, "meta mark") < strstr(buf, "redirect to"));
	/* bypass rules (their own chain) are looked at before anything is redirected */
	assert_non_null(strstr(buf, "\tchain bypass {\n\t}\n"));
	assert_true(strstr(buf, "jump bypass") < strstr(buf, "redirect to"));
	/* the owner's bits and port, for other agents to read */
	assert_non_null(strstr(buf, "comment \"redirect-agent pid="));
	assert_non_null(strstr(buf, " mark=0x1 escape=0x80000000 port=15001 fwmark_prev=0\""));
	/* the loop's way out: untracked, so never redirected again */
	assert_non_null(strstr(buf, "type filter hook output priority raw;"));
	assert_non_null(strstr(buf, "meta mark & 0x80000000 == 0x80000000 notrack"));
	assert_null(strstr(buf, "tproxy"));
}

static void
test_tproxy_rules(void **state)
{
	char buf[8192], err[128];

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(config_load_string(&cfg, "t",
			     "[proxy]\nmode = tproxy\ntproxy_mark = 0x100\nredirect_ports = 80\n",
			     err, sizeof(err)),
	    0);
	assert_true(nft_ruleset_format(&cfg, 0, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "type filter hook prerouting priority mangle;"));
	/* traffic for the gateway itself is not intercepted */
	assert_non_null(strstr(buf, "fib daddr type local return"));
	assert_true(strstr(buf, "fib daddr") < strstr(buf, "tproxy ip to"));
	assert_non_null(strstr(buf, "meta mark set meta mark | 0x100 tproxy ip to :15001 accept"));
	assert_non_null(strstr(buf, "meta mark set meta mark | 0x100 tproxy ip6 to :15001 accept"));
	/* no nat redirect of the host's own connections in this mode */
	assert_null(strstr(buf, "redirect to"));
}

static void
test_custom_rules(void **state)
{
	char buf[8192], err[128];

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(config_load_string(&cfg, "t",
			     "[proxy]\nagent_id = edge\nmark = 0x40\nlisten_port = 9000\n"
			     "redirect_ports = 8000-8080, 22\nredirect_cidrs = 10.0.0.0/8\n"
			     "exclude_cidrs =\n",
			     err, sizeof(err)),
	    0);
	assert_true(nft_ruleset_format(&cfg, 0, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "table inet redirect_agent_edge {"));
	assert_non_null(strstr(buf, "elements = { 8000-8080, 22 }"));
	assert_non_null(strstr(buf, "meta mark & 0x40 == 0x40 return"));
	assert_non_null(strstr(buf, "redirect to :9000"));
	/* an empty set has no elements clause (nft rejects "elements = { }") */
	assert_null(strstr(buf, "elements = { }"));
	assert_null(strstr(buf, "::/0"));
	assert_null(strstr(buf, "127.0.0.0/8"));
}

static void
test_too_small(void **state)
{
	char buf[64];

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(nft_ruleset_format(&cfg, 0, buf, sizeof(buf)), -ENOSPC);
	assert_int_equal(nft_ruleset_format(&cfg, 0, buf, 0), -ENOSPC);
}

/* Count the lines of script that start with prefix. */
static size_t
lines_starting(const char *script, const char *prefix)
{
	size_t n = 0;

	for (const char *l = script; l != NULL && *l != '\0';
	     l = strchr(l, '\n'), l = l ? l + 1 : l)
		n += strncmp(l, prefix, strlen(prefix)) == 0;
	return n;
}

/*
 * A bypass rule is a set of addresses and a set of ports, matched together:
 * 1,000 CIDRs and 1,000 ports give 2,000 elements, not 1,000,000 pairs.
 * Rules without addresses or ports match any; the old sets go first.
 */
static void
test_bypass_script(void **state)
{
	enum { N = 1000 };
	struct cidr *cidrs = calloc(N, sizeof(*cidrs));
	struct port_range *ports = calloc(N, sizeof(*ports));
	struct cidr v6;
	struct policy_bypass b[3];
	char *script, text[32];

	(void)state;
	config_defaults(&cfg);
	for (unsigned i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "10.%u.%u.0/24", i / 256, i % 256);
		assert_int_equal(addr_parse_cidr(text, &cidrs[i], NULL, 0), 0);
		ports[i] = (struct port_range){(uint16_t)(1000 + 2 * i), (uint16_t)(1000 + 2 * i)};
	}
	assert_int_equal(addr_parse_cidr("fd00::/8", &v6, NULL, 0), 0);
	b[0] = (struct policy_bypass){cidrs, N, ports, N};
	b[1] = (struct policy_bypass){NULL, 0, ports, 1}; /* any address, one port */
	b[2] = (struct policy_bypass){&v6, 1, NULL, 0};   /* IPv6 only, any port */
	script = nft_bypass_script(&cfg, b, 3, 2);
	assert_non_null(script);
	/* the old rules and sets go, in the same transaction */
	assert_int_equal(
	    strncmp(script, "flush chain inet redirect_agent_default bypass\n", 47), 0);
	assert_int_equal(lines_starting(script, "delete set "), 6);
	/* linear: about 30 bytes per element, nowhere near a million pairs */
	assert_true(strlen(script) < 60 * 2 * N);
	assert_non_null(
	    strstr(script, "add element inet redirect_agent_default bp0_v4 { 10.0.0.0/24, "));
	assert_non_null(strstr(script, ", 10.3.231.0/24 }\n"));
	assert_non_null(
	    strstr(script, "add element inet redirect_agent_default bp0_ports { 1000-1000, "));
	assert_non_null(
	    strstr(script, "add rule inet redirect_agent_default bypass ip daddr @bp0_v4 "
			   "tcp dport @bp0_ports accept\n"));
	assert_null(strstr(script, "ip6 daddr @bp0_v6")); /* no IPv6 address in rule 0 */
	assert_non_null(strstr(script, "bypass meta l4proto tcp tcp dport @bp1_ports accept\n"));
	assert_non_null(strstr(script, "bypass ip6 daddr @bp2_v6 accept\n"));
	assert_int_equal(lines_starting(script, "add rule "), 3);
	free(script);
	free(cidrs);
	free(ports);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_rules),
	    cmocka_unit_test(test_custom_rules),
	    cmocka_unit_test(test_too_small),
	    cmocka_unit_test(test_tproxy_rules),
	    cmocka_unit_test(test_bypass_script),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
