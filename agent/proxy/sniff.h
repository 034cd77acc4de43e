/*
 * sniff.h: the server name a client is asking for, from its first bytes.
 *
 * TLS: the server_name extension of the ClientHello (the first handshake
 * record). HTTP/1: the Host header of the first request, and the host of an
 * absolute-form target ("GET http://host/path"). Pure parsing of a buffer
 * that may hold only part of either: the caller reads more while the answer
 * is SNIFF_MORE, up to a bound of its own.
 *
 * Names come out lower case, without a port and without the root's trailing
 * dot. A request that names two different hosts (two Host headers, or a
 * target whose host is not the Host header's) is ambiguous: the second name
 * is given too, and the policy judges the request by the stricter of the
 * two ("?" stands for a second Host header that is not a name at all).
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

/* Where a name was found: the record says which (ECS: tls.client.server_name or url.domain). */
enum sniff_source {
	SNIFF_SNI,  /* the TLS ClientHello's server_name */
	SNIFF_HOST, /* the HTTP/1 request's Host header */
};

#define SNIFF_NAME_MAX 253

struct sniff_names {
	char name[SNIFF_NAME_MAX + 1]; /* the name (the first Host header's, for HTTP) */
	char alt[SNIFF_NAME_MAX + 1];  /* "" ; or another name the request also gives */
	enum sniff_source source;
};

/* The source's name as the record stores it: "sni" or "host". */
const char *sniff_source_name(enum sniff_source s);

/* On SNIFF_FOUND, out holds the name(s) and where they came from. */
enum sniff_result sniff_server_name(const uint8_t *buf, size_t len, struct sniff_names *out);

#endif
