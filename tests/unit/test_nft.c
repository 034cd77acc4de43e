/* Unit tests: the nft rule set text (agent/nft.c). Applying it is a scenario test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "config.h"
#include "nft.h"

static struct config cfg;

static void
test_default_rules(void **state)
{
	char buf[8192];
	int n;

	(void)state;
	config_defaults(&cfg);
	n = nft_ruleset_format(&cfg, buf, sizeof(buf));
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
	/* the owner's bits and port, for other agents to read */
	assert_non_null(strstr(buf, "comment \"redirect-agent pid="));
	assert_non_null(strstr(buf, " mark=0x1 escape=0x80000000 port=15001\""));
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
	assert_true(nft_ruleset_format(&cfg, buf, sizeof(buf)) > 0);
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
	assert_true(nft_ruleset_format(&cfg, buf, sizeof(buf)) > 0);
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
	assert_int_equal(nft_ruleset_format(&cfg, buf, sizeof(buf)), -ENOSPC);
	assert_int_equal(nft_ruleset_format(&cfg, buf, 0), -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_rules),
	    cmocka_unit_test(test_custom_rules),
	    cmocka_unit_test(test_too_small),
	    cmocka_unit_test(test_tproxy_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
