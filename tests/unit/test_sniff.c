/* Unit tests: the server name from a client's first bytes (agent/sniff.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "sniff.h"

/* A ClientHello with the given SNI, built the way a TLS 1.2/1.3 client sends it. */
static size_t
client_hello(uint8_t *b, const char *name)
{
	size_t n = strlen(name), at = 0, hs, ext_start, ext_len, body;

	b[at++] = 0x16;
	b[at++] = 3, b[at++] = 1;
	at += 2; /* record length, below */
	hs = at;
	b[at++] = 0x01;
	at += 3; /* handshake length, below */
	b[at++] = 3, b[at++] = 3;
	memset(b + at, 0xab, 32), at += 32;
	b[at++] = 32, memset(b + at, 0xcd, 32), at += 32; /* session id */
	b[at++] = 0, b[at++] = 4, b[at++] = 0x13, b[at++] = 0x01, b[at++] = 0x13, b[at++] = 0x02;
	b[at++] = 1, b[at++] = 0; /* compression: null */
	ext_start = at;
	at += 2;
	/* another extension first (supported_groups), then server_name */
	b[at++] = 0x00, b[at++] = 0x0a, b[at++] = 0, b[at++] = 4, b[at++] = 0, b[at++] = 2;
	b[at++] = 0x00, b[at++] = 0x1d;
	b[at++] = 0, b[at++] = 0;
	b[at++] = (uint8_t)((n + 5) >> 8), b[at++] = (uint8_t)(n + 5);
	b[at++] = (uint8_t)((n + 3) >> 8), b[at++] = (uint8_t)(n + 3);
	b[at++] = 0;
	b[at++] = (uint8_t)(n >> 8), b[at++] = (uint8_t)n;
	memcpy(b + at, name, n), at += n;
	ext_len = at - ext_start - 2;
	b[ext_start] = (uint8_t)(ext_len >> 8), b[ext_start + 1] = (uint8_t)ext_len;
	body = at - hs - 4;
	b[hs + 1] = 0, b[hs + 2] = (uint8_t)(body >> 8), b[hs + 3] = (uint8_t)body;
	b[3] = (uint8_t)((at - 5) >> 8), b[4] = (uint8_t)(at - 5);
	return at;
}

static void
test_tls(void **state)
{
	uint8_t b[1024];
	char out[256];
	size_t n = client_hello(b, "WWW.Example.org");

	(void)state;
	assert_int_equal(sniff_server_name(b, n, out, sizeof(out)), SNIFF_FOUND);
	assert_string_equal(out, "www.example.org");
	/* every prefix asks for more */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sniff_server_name(b, i, out, sizeof(out)), SNIFF_MORE);
	/* a server hello, or any other handshake message, has no name */
	b[5] = 0x02;
	assert_int_equal(sniff_server_name(b, n, out, sizeof(out)), SNIFF_NONE);
	b[5] = 0x01;
	/* a length that runs past the record is not believed */
	b[n - 16] = 0xff;
	assert_int_equal(sniff_server_name(b, n, out, sizeof(out)), SNIFF_NONE);
	/* a name with a byte a host name cannot have */
	n = client_hello(b, "bad\x01name");
	assert_int_equal(sniff_server_name(b, n, out, sizeof(out)), SNIFF_NONE);
}

static void
test_http(void **state)
{
	const char *req =
	    "GET /x HTTP/1.1\r\nUser-Agent: t\r\nhOsT:  Shop.Example.com:8080 \r\n\r\n";
	char out[256];

	(void)state;
	assert_int_equal(
	    sniff_server_name((const uint8_t *)req, strlen(req), out, sizeof(out)), SNIFF_FOUND);
	assert_string_equal(out, "shop.example.com");
	assert_int_equal(sniff_server_name((const uint8_t *)req, 20, out, sizeof(out)), SNIFF_MORE);
	assert_int_equal(sniff_server_name((const uint8_t *)"GE", 2, out, sizeof(out)), SNIFF_MORE);
	req = "POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(
	    sniff_server_name((const uint8_t *)req, strlen(req), out, sizeof(out)), SNIFF_NONE);
	req = "GET / HTTP/1.1\r\nHost: [fd00::1]:80\r\n\r\n";
	assert_int_equal(
	    sniff_server_name((const uint8_t *)req, strlen(req), out, sizeof(out)), SNIFF_NONE);
	/* neither TLS nor HTTP: an SSH banner, a binary protocol */
	assert_int_equal(
	    sniff_server_name((const uint8_t *)"SSH-2.0-x\r\n", 11, out, sizeof(out)), SNIFF_NONE);
	assert_int_equal(
	    sniff_server_name((const uint8_t *)"\x00\x01", 2, out, sizeof(out)), SNIFF_NONE);
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
