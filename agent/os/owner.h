/*
 * owner.h: which local user and program opened a redirected connection
 * (Linux: sock_diag for the socket's owner uid and inode, /proc for the
 * process holding that inode).
 *
 * The client end of a redirected connection is an ordinary socket of this
 * host, connected from the recorded client address to the original
 * destination (NAT is invisible to it), so the kernel finds it by that
 * 4-tuple. The uid, and the socket's cookie, cost one netlink round trip.
 * The process is one map lookup: a cgroup BPF hook records who called
 * connect() under the socket's cookie (owner_linux.c), believed when that
 * process still holds the socket. Where the hook cannot be attached, or its
 * entry is gone or not believed, the process costs a search of
 * /proc/<pid>/fd, among that uid's processes only: the processes that
 * opened recent connections are tried first (a browser opens many), then
 * the rest, within a bound; a process not found in time is unknown, and a
 * rule about it decides by its on_unknown. The session calls this on
 * libuv's thread pool, never on its event loop. Connections from other
 * hosts (TPROXY) have no local owner.
 */
#ifndef RA_OWNER_H
#define RA_OWNER_H

#include <stdint.h>

#include "addr.h"

#define OWNER_EXE_MAX 4096
/* The /proc search's bounds, per connection (off the loop): its thread's CPU
 * time, so that a loaded machine does not cut it short, and the wall time. */
#define OWNER_SCAN_MAX_US      50000
#define OWNER_SCAN_WALL_MAX_US 1000000

struct owner {
	int32_t uid, pid;        /* -1 when unknown */
	char exe[OWNER_EXE_MAX]; /* "" when unknown */
	int by_hook;             /* the pid came from the connect hook, not a search */
};

struct owner_ctx;

/* One per event loop; lookups may run on several threads at once. NULL without netlink. */
struct owner_ctx *owner_open(void);
void owner_close(struct owner_ctx *c);

/*
 * Fill out for the local socket connected from src to dst; with_process
 * also looks for the process (pid, exe). Returns 0 (fields unknown stay -1
 * or ""), or a negative errno when even the uid could not be asked.
 */
int owner_lookup(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst,
    int with_process, struct owner *out);

/* Why owner lookups cannot find programs (a health reason), or NULL. */
const char *owner_problem(void);

/* The uid alone: one netlink round trip, answered at once (no search). -1: unknown. */
int32_t owner_uid(struct owner_ctx *c, const struct endpoint *src, const struct endpoint *dst);

#endif
