/*
 * parse.h: the small text parsers every layer shares: unsigned numbers,
 * ports and port ranges, HOST:PORT, durations. Each takes the whole string
 * (no trailing text, no sign, no blank) and returns 0 or -EINVAL / -ERANGE;
 * none writes its output on failure.
 */
#ifndef RA_PARSE_H
#define RA_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* Decimal, or hex with 0x when allow_hex; in [min, max]. -ERANGE outside it. */
int parse_u64(const char *s, int allow_hex, uint64_t min, uint64_t max, uint64_t *out);

/* A port, 1 to 65535. */
int parse_port(const char *s, uint16_t *out);

/* "80" or "8000-8080" (low first). */
int parse_port_range(const char *s, struct port_range *out);

/*
 * "host:port", "a.b.c.d:port" or "[v6]:port" into host (without brackets,
 * at most hostlen - 1 bytes, not empty) and port.
 */
int parse_host_port(const char *s, char *host, size_t hostlen, uint16_t *port);

/* "90s", "15m", "2h", "7d", or a bare number of seconds, up to 100 years: microseconds. */
int parse_duration_us(const char *s, int64_t *out);

#endif
