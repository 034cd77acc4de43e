/* Unit tests: the server name from a client's first bytes (agent/sniff.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "sniff.h"
#include "tls_hello.h"

static void
test_tls(void **state)
{
	uint8_t b[1024];
	char out[256];
	size_t n = tls_client_hello(b, "WWW.Example.org");
	enum sniff_source src = SNIFF_HOST;

	(void)state;
	assert_int_equal(sniff_server_name(b, n, out, sizeof(out), &src), SNIFF_FOUND);
	assert_string_equal(out, "www.example.org");
	assert_int_equal(src, SNIFF_SNI);
	assert_string_equal(sniff_source_name(src), "sni");
	/* every prefix asks for more */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sniff_server_name(b, i, out, sizeof(out), NULL), SNIFF_MORE);
	/* a server hello, or any other handshake message, has no name */
	b[5] = 0x02;
	assert_int_equal(sniff_server_name(b, n, out, sizeof(out), NULL), SNIFF_NONE);
	b[5] = 0x01;
	/* a length that runs past the record is not believed */
	b[n - 16] = 0xff;
	assert_int_equal(sniff_server_name(b, n, out, sizeof(out), NULL), SNIFF_NONE);
	/* a name with a byte a host name cannot have */
	n = tls_client_hello(b, "bad\x01name");
	assert_int_equal(sniff_server_name(b, n, out, sizeof(out), NULL), SNIFF_NONE);
}

static void
test_http(void **state)
{
	const char *req =
	    "GET /x HTTP/1.1\r\nUser-Agent: t\r\nhOsT:  Shop.Example.com:8080 \r\n\r\n";
	char out[256];
	enum sniff_source src = SNIFF_SNI;

	(void)state;
	assert_int_equal(
	    sniff_server_name((const uint8_t *)req, strlen(req), out, sizeof(out), &src),
	    SNIFF_FOUND);
	assert_string_equal(out, "shop.example.com");
	assert_int_equal(src, SNIFF_HOST);
	assert_string_equal(sniff_source_name(src), "host");
	assert_int_equal(
	    sniff_server_name((const uint8_t *)req, 20, out, sizeof(out), NULL), SNIFF_MORE);
	assert_int_equal(
	    sniff_server_name((const uint8_t *)"GE", 2, out, sizeof(out), NULL), SNIFF_MORE);
	req = "POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(
	    sniff_server_name((const uint8_t *)req, strlen(req), out, sizeof(out), NULL),
	    SNIFF_NONE);
	req = "GET / HTTP/1.1\r\nHost: [fd00::1]:80\r\n\r\n";
	assert_int_equal(
	    sniff_server_name((const uint8_t *)req, strlen(req), out, sizeof(out), NULL),
	    SNIFF_NONE);
	/* neither TLS nor HTTP: an SSH banner, a binary protocol */
	assert_int_equal(
	    sniff_server_name((const uint8_t *)"SSH-2.0-x\r\n", 11, out, sizeof(out), NULL),
	    SNIFF_NONE);
	assert_int_equal(
	    sniff_server_name((const uint8_t *)"\x00\x01", 2, out, sizeof(out), NULL), SNIFF_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls),
	    cmocka_unit_test(test_http),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
