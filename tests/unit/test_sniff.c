/* Unit tests: the server name from a client's first bytes (agent/proxy/sniff.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "sniff.h"
#include "tls_hello.h"

static struct sniff_names out;

static enum sniff_result
sniff(const char *text)
{
	return sniff_server_name((const uint8_t *)text, strlen(text), &out);
}

static void
test_tls(void **state)
{
	uint8_t b[1024];
	size_t n = tls_client_hello(b, "WWW.Example.org.");

	(void)state;
	assert_int_equal(sniff_server_name(b, n, &out), SNIFF_FOUND);
	/* lower case, and without the root's trailing dot */
	assert_string_equal(out.name, "www.example.org");
	assert_string_equal(out.alt, "");
	assert_int_equal(out.source, SNIFF_SNI);
	assert_string_equal(sniff_source_name(out.source), "sni");
	/* every prefix asks for more */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sniff_server_name(b, i, &out), SNIFF_MORE);
	/* a server hello, or any other handshake message, has no name */
	b[5] = 0x02;
	assert_int_equal(sniff_server_name(b, n, &out), SNIFF_NONE);
	b[5] = 0x01;
	/* a length that runs past the record is not believed */
	b[n - 16] = 0xff;
	assert_int_equal(sniff_server_name(b, n, &out), SNIFF_NONE);
	/* a name with a byte a host name cannot have */
	n = tls_client_hello(b, "bad\x01name");
	assert_int_equal(sniff_server_name(b, n, &out), SNIFF_NONE);
}

static void
test_http(void **state)
{
	const char *req =
	    "GET /x HTTP/1.1\r\nUser-Agent: t\r\nhOsT:  Shop.Example.com.:8080 \r\n\r\n";

	(void)state;
	assert_int_equal(sniff(req), SNIFF_FOUND);
	assert_string_equal(out.name, "shop.example.com");
	assert_string_equal(out.alt, "");
	assert_int_equal(out.source, SNIFF_HOST);
	assert_string_equal(sniff_source_name(out.source), "host");
	/* the whole head is read: a second Host could follow */
	assert_int_equal(
	    sniff_server_name((const uint8_t *)req, strlen(req) - 2, &out), SNIFF_MORE);
	assert_int_equal(sniff("GE"), SNIFF_MORE);
	assert_int_equal(sniff("POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n"), SNIFF_NONE);
	assert_int_equal(sniff("GET / HTTP/1.1\r\nHost: [fd00::1]:80\r\n\r\n"), SNIFF_NONE);
	/* neither TLS nor HTTP: an SSH banner, a binary protocol */
	assert_int_equal(sniff("SSH-2.0-x\r\n"), SNIFF_NONE);
	assert_int_equal(sniff_server_name((const uint8_t *)"\x00\x01", 2, &out), SNIFF_NONE);
}

/* A request that names two hosts gives both: the policy judges by the stricter. */
static void
test_ambiguous(void **state)
{
	(void)state;
	assert_int_equal(
	    sniff("GET / HTTP/1.1\r\nHost: news.example\r\nHost: social.example\r\n\r\n"),
	    SNIFF_FOUND);
	assert_string_equal(out.name, "news.example");
	assert_string_equal(out.alt, "social.example");
	/* the same name twice is not ambiguous */
	assert_int_equal(
	    sniff("GET / HTTP/1.1\r\nHost: a.example\r\nhost: A.example.\r\n\r\n"), SNIFF_FOUND);
	assert_string_equal(out.alt, "");
	/* an absolute-form target whose host is not the Host header's */
	assert_int_equal(
	    sniff("GET http://Social.Example/feed HTTP/1.1\r\nHost: news.example\r\n\r\n"),
	    SNIFF_FOUND);
	assert_string_equal(out.name, "news.example");
	assert_string_equal(out.alt, "social.example");
	/* an absolute-form target alone names the host */
	assert_int_equal(
	    sniff("GET https://user@social.example:8443/x HTTP/1.1\r\n\r\n"), SNIFF_FOUND);
	assert_string_equal(out.name, "social.example");
	assert_string_equal(out.alt, "");
	/* a second Host that is not a name at all: still ambiguous */
	assert_int_equal(
	    sniff("GET / HTTP/1.1\r\nHost: news.example\r\nHost: [::1]\r\n\r\n"), SNIFF_FOUND);
	assert_string_equal(out.alt, "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls),
	    cmocka_unit_test(test_http),
	    cmocka_unit_test(test_ambiguous),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
