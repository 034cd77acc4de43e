/* Unit tests: CIDR, port list and endpoint handling (agent/addr.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

static void
test_cidr_good(void **state)
{
	struct cidr c;
	char buf[ADDR_CIDR_STRLEN];

	(void)state;
	assert_int_equal(addr_parse_cidr("10.0.0.0/8", &c, NULL, 0), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_string_equal(addr_format_cidr(&c, buf, sizeof(buf)), "10.0.0.0/8");

	assert_int_equal(addr_parse_cidr("fd00::/64", &c, NULL, 0), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_string_equal(addr_format_cidr(&c, buf, sizeof(buf)), "fd00::/64");

	/* a bare address is a host route */
	assert_int_equal(addr_parse_cidr("192.0.2.7", &c, NULL, 0), 0);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(addr_parse_cidr("::1", &c, NULL, 0), 0);
	assert_int_equal(c.prefix, 128);
	assert_int_equal(addr_parse_cidr("0.0.0.0/0", &c, NULL, 0), 0);
	assert_int_equal(c.prefix, 0);
}

static void
test_cidr_bad(void **state)
{
	static const char *const bad[] = {"", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/8x",
	    "10.0.0.0/-1", "fd00::/129", "banana", "10.0.0.256/32", "10.1.2.3/8", "fd00::1/64",
	    "/8", "10.0.0.0/08x"};
	struct cidr c;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(addr_parse_cidr(bad[i], &c, err, sizeof(err)), -EINVAL);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(addr_parse_cidr("10.1.2.3/8", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "host bits"));
}

static void
test_cidr_list(void **state)
{
	struct cidr c[3];
	size_t n = 99;
	char err[128];

	(void)state;
	assert_int_equal(addr_parse_cidr_list("", c, 3, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(addr_parse_cidr_list("  ,  ", c, 3, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(
	    addr_parse_cidr_list("10.0.0.0/8, fd00::/8 192.168.0.0/16", c, 3, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, 3);
	assert_int_equal(c[1].family, AF_INET6);
	assert_int_equal(addr_parse_cidr_list("10.0.0.0/8,1.0.0.0/8,2.0.0.0/8,3.0.0.0/8", c, 3, &n,
			     err, sizeof(err)),
	    -E2BIG);
	assert_int_equal(n, 0);
	assert_int_equal(
	    addr_parse_cidr_list("10.0.0.0/8, nope", c, 3, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nope"));
}

static void
test_ports(void **state)
{
	struct port_range p[4];
	size_t n;
	char err[128];

	(void)state;
	assert_int_equal(addr_parse_port_list("80, 443 8000-8080", p, 4, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(p[0].lo, 80);
	assert_int_equal(p[0].hi, 80);
	assert_int_equal(p[2].lo, 8000);
	assert_int_equal(p[2].hi, 8080);
	assert_int_equal(addr_parse_port_list("1,65535", p, 4, &n, err, sizeof(err)), 0);
	assert_int_equal(p[1].lo, 65535);

	static const char *const bad[] = {
	    "0", "65536", "-1", "80-", "90-80", "1-2-3", "http", "8x", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(addr_parse_port_list(bad[i], p, 4, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(addr_parse_port_list("1,2,3,4,5", p, 4, &n, err, sizeof(err)), -E2BIG);
}

static void
test_contains(void **state)
{
	struct cidr c;
	uint8_t a[16];

	(void)state;
	assert_int_equal(addr_parse_cidr("10.128.0.0/9", &c, NULL, 0), 0);
	inet_pton(AF_INET, "10.200.1.1", a);
	assert_true(addr_cidr_contains(&c, AF_INET, a));
	inet_pton(AF_INET, "10.127.255.255", a);
	assert_false(addr_cidr_contains(&c, AF_INET, a));
	inet_pton(AF_INET6, "::ffff:10.200.1.1", a);
	assert_false(addr_cidr_contains(&c, AF_INET6, a));
	assert_int_equal(addr_parse_cidr("::/0", &c, NULL, 0), 0);
	assert_true(addr_cidr_contains(&c, AF_INET6, a));
}

static void
test_endpoint(void **state)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_storage ss;
	struct endpoint e, e2;
	char buf[ADDR_STRLEN];

	(void)state;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(8080);
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	assert_int_equal(endpoint_from_sockaddr(&e, (struct sockaddr *)&sin6), 0);
	/* v4-mapped folds to IPv4 */
	assert_int_equal(e.family, AF_INET);
	assert_int_equal(e.port, 8080);
	assert_string_equal(endpoint_format_addr(&e, buf, sizeof(buf)), "192.0.2.1");

	assert_int_equal(endpoint_to_sockaddr(&e, &ss), (int)sizeof(struct sockaddr_in));
	assert_int_equal(endpoint_from_sockaddr(&e2, (struct sockaddr *)&ss), 0);
	assert_true(endpoint_equal(&e, &e2));
	e2.port = 1;
	assert_false(endpoint_equal(&e, &e2));

	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	assert_int_equal(endpoint_from_sockaddr(&e, (struct sockaddr *)&sin6), 0);
	assert_true(endpoint_is_loopback(&e));
	inet_pton(AF_INET6, "fd00::1", &sin6.sin6_addr);
	assert_int_equal(endpoint_from_sockaddr(&e, (struct sockaddr *)&sin6), 0);
	assert_false(endpoint_is_loopback(&e));

	/* IPv4 is formatted by hand: every digit count, against inet_ntop */
	{
		const char *v4[] = {"0.0.0.0", "255.255.255.255", "10.0.100.9", "1.22.203.4"};
		char ref[INET_ADDRSTRLEN];

		e.family = AF_INET;
		for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
			inet_pton(AF_INET, v4[i], e.addr);
			inet_ntop(AF_INET, e.addr, ref, sizeof(ref));
			assert_string_equal(endpoint_format_addr(&e, buf, sizeof(buf)), ref);
			assert_string_equal(buf, v4[i]);
		}
		/* too small a buffer for any IPv4 address: empty, never a cut one */
		assert_string_equal(endpoint_format_addr(&e, buf, 4), "");
	}

	memset(&e, 0, sizeof(e));
	assert_string_equal(endpoint_format_addr(&e, buf, sizeof(buf)), "");
	assert_int_equal(endpoint_to_sockaddr(&e, &ss), -EAFNOSUPPORT);
}

static void
test_unix(void **state)
{
	struct sockaddr_un sun;
	char err[256], long_path[200];

	(void)state;
	assert_int_equal(addr_unix(&sun, "/run/redirect-agent/agent.sock", err, sizeof(err)), 0);
	assert_int_equal(sun.sun_family, AF_UNIX);
	assert_string_equal(sun.sun_path, "/run/redirect-agent/agent.sock");
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(addr_unix(&sun, long_path, err, sizeof(err)), -ENAMETOOLONG);
	assert_non_null(strstr(err, "socket path too long"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr_good),
	    cmocka_unit_test(test_cidr_bad),
	    cmocka_unit_test(test_cidr_list),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_contains),
	    cmocka_unit_test(test_endpoint),
	    cmocka_unit_test(test_unix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
