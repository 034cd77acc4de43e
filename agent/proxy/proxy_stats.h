/*
 * proxy_stats.h: counters of the proxy path.
 *
 * Each worker owns one set and is its only writer (relaxed atomics, so the
 * control plane may read them from other threads at any time).
 */
#ifndef RA_PROXY_STATS_H
#define RA_PROXY_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct proxy_stats {
	_Atomic uint64_t accepted;
	_Atomic uint64_t active;
	_Atomic uint64_t relayed;            /* reached the destination */
	_Atomic uint64_t failed;             /* never reached it */
	_Atomic uint64_t refused;            /* not redirected, or a loop to our own listener */
	_Atomic uint64_t by_self;            /* carried our own mark already: a loop */
	_Atomic uint64_t previously_by_self; /* ours, then another proxy's, then ours */
	_Atomic uint64_t blocked;            /* refused by the policy */
	_Atomic uint64_t bytes_up;
	_Atomic uint64_t bytes_down;
	_Atomic uint64_t accept_errors; /* EMFILE and the like */
	_Atomic uint64_t accept_paused; /* times max_sessions paused accept */
};

/* A plain copy for reporting. */
struct proxy_stats_snapshot {
	uint64_t accepted, active, relayed, failed, refused, by_self, previously_by_self, blocked,
	    bytes_up, bytes_down, accept_errors, accept_paused;
};

static inline void
stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline void
stat_sub(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
}

#endif
