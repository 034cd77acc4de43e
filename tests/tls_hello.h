/*
 * tls_hello.h: a TLS ClientHello for the sniffer's tests, shared by the
 * Linux unit tests and the Windows ones run under wine.
 */
#ifndef RA_TESTS_TLS_HELLO_H
#define RA_TESTS_TLS_HELLO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A ClientHello with the given SNI, built the way a TLS 1.2/1.3 client sends
 * it, into b (at least 128 + strlen(name) bytes). Returns its length.
 */
static inline size_t
tls_client_hello(uint8_t *b, const char *name)
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

#endif
