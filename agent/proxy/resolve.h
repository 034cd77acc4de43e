/*
 * resolve.h: the names of forward proxies, looked up off the event loop and
 * remembered for a while. One per event loop; loop thread only.
 *
 * A lookup runs on libuv's thread pool (uv_getaddrinfo), never on the loop
 * itself: the loop goes on relaying while a DNS server takes its time, and
 * a name that does not resolve fails only the connections that needed it.
 * An answer is kept RESOLVE_TTL_S seconds (getaddrinfo does not give the
 * record's own TTL), a failure RESOLVE_FAIL_TTL_S (a flood of connections
 * does not become a flood of queries), at most RESOLVE_CACHE names; when
 * full, the entry that expires first makes room.
 */
#ifndef RA_RESOLVE_H
#define RA_RESOLVE_H

#include <stdint.h>
#include <uv.h>

#include "platform.h"

#define RESOLVE_TTL_S      60
#define RESOLVE_FAIL_TTL_S 5
#define RESOLVE_CACHE      64
#define RESOLVE_HOST_MAX   256

struct resolver;
struct resolve_req;

/* status: 0 with addr set, or -ENOENT (the name does not resolve) / -ECANCELED. */
typedef void (*resolve_cb)(
    struct resolve_req *req, int status, const struct sockaddr_storage *addr);

/* One lookup in flight; embedded in its owner, which keeps it until cb ran. */
struct resolve_req {
	uv_getaddrinfo_t gai;
	struct resolver *r;
	char host[RESOLVE_HOST_MAX];
	uint16_t port;
	resolve_cb cb;
};

/* A resolver for loop; NULL when out of memory. */
struct resolver *resolver_new(uv_loop_t *loop);

/* Free r: no lookup may be in flight. NULL is ignored. */
void resolver_free(struct resolver *r);

/*
 * host:port as an address. Returns 1 with *out set from the cache, 0 when a
 * lookup started (cb comes later, from the loop, exactly once), -ENOENT
 * when the cache remembers that host does not resolve, or another negative
 * errno when no lookup could start.
 */
int resolver_lookup(struct resolver *r, struct resolve_req *req, const char *host, uint16_t port,
    resolve_cb cb, struct sockaddr_storage *out);

/* Hurry a lookup in flight to its end: cb comes with -ECANCELED (or its answer). */
void resolver_cancel(struct resolve_req *req);

#endif
