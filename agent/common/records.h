/*
 * records.h: the redirect record and context the Linux backend keeps per
 * connection, as versioned byte strings.
 *
 * On Windows the records are an opaque blob the stack hands out and takes
 * back; on Linux the "records" are the socket mark, so the agent writes down
 * what it saw in the same spirit: the record says which proxies a connection
 * had passed and where it was going, the context where it came from and who
 * handled it. Both are stored as BLOBs and shown in hex; the layout is fixed
 * per version so that a console can decode rows from any agent.
 *
 * records v1 (28 bytes, integers big-endian):
 *   0      version (1)
 *   1..4   incoming mark: the cooperating proxies' bits already set
 *   5..8   own mark: this agent's bit(s)
 *   9..27  original destination (endpoint, below)
 * context v1 (40 + n bytes):
 *   0      version (1)
 *   1..19  original destination
 *   20..38 original source (the client)
 *   39     n, the agent id's length; 40.. the agent id (no terminator)
 * endpoint: family (4 or 6), 16 address bytes (IPv4 in the first 4, the rest
 * zero), port.
 */
#ifndef RA_RECORDS_H
#define RA_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define RECORDS_VERSION   1
#define RECORDS_V1_LEN    28
#define CONTEXT_ID_MAX    32
#define CONTEXT_V1_MAXLEN (40 + CONTEXT_ID_MAX)

struct records_v1 {
	uint32_t incoming_mark;
	uint32_t own_mark;
	struct endpoint orig_dst;
};

struct context_v1 {
	struct endpoint orig_dst;
	struct endpoint orig_src;
	char agent_id[CONTEXT_ID_MAX + 1];
};

/* Encode into buf (at least RECORDS_V1_LEN / CONTEXT_V1_MAXLEN bytes).
 * Return the length written, or 0 when buf is too small or an id too long. */
size_t records_encode(uint8_t *buf, size_t len, const struct records_v1 *r);
size_t context_encode(uint8_t *buf, size_t len, const struct context_v1 *c);

/* Decode; -EINVAL for a wrong length, version or family. */
int records_decode(const uint8_t *buf, size_t len, struct records_v1 *out);
int context_decode(const uint8_t *buf, size_t len, struct context_v1 *out);

#endif
