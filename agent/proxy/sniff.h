/*
 * sniff.h: the server name a client is asking for, from its first bytes.
 *
 * TLS: the server_name extension of the ClientHello (the first handshake
 * record). HTTP/1: the Host header of the first request. Pure parsing of a
 * buffer that may hold only part of either: the caller reads more while the
 * answer is SNIFF_MORE, up to a bound of its own.
 */
#ifndef RA_SNIFF_H
#define RA_SNIFF_H

#include <stddef.h>
#include <stdint.h>

enum sniff_result {
	SNIFF_FOUND, /* name written to out (lower case, no port) */
	SNIFF_MORE,  /* a prefix of a ClientHello or request head: read more */
	SNIFF_NONE,  /* neither, or one without a name */
};

#define SNIFF_NAME_MAX 253

enum sniff_result sniff_server_name(const uint8_t *buf, size_t len, char *out, size_t outlen);

#endif
