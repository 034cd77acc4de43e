/*
 * worker_internal.h: one event loop's insides, shared by worker.c (the loop,
 * its listeners, draining) and session.c (the sessions it runs). Not for
 * other layers: they see worker.h.
 *
 * The worker owns its list of sessions and their count: a session joins
 * with worker_session_add() when accepted and leaves with
 * worker_session_remove() when freed; nothing else touches either.
 */
#ifndef RA_WORKER_INTERNAL_H
#define RA_WORKER_INTERNAL_H

#include <stdatomic.h>
#include <uv.h>

#include "bufpool.h"
#include "config.h"
#include "evio.h"
#include "platform.h"
#include "proxy_stats.h"
#include "session.h"
#include "store.h"
#include "uidcount.h"
#include "worker.h"

#define WORKER_MAX_LISTENERS 2
#define WORKER_REFUSALS      64 /* (uid, reason) pairs counted per second before a flush */
#define WORKER_FINALS_MS     10 /* a final event the store's queue had no room for: retried */

struct worker;

/* A listening socket; we accept ourselves so that we can pause (EMFILE, max_sessions). */
struct listener {
	uv_poll_t poll;
	sock_t fd;             /* SOCK_INVALID once closed */
	struct endpoint local; /* the bound address: every accepted socket's local end */
	int paused;
	struct worker *w;
};

struct worker {
	unsigned index;
	uv_loop_t loop;
	int loop_ready;
	uv_thread_t thread;
	uv_async_t stop_async;
	uv_timer_t drain_timer;
	uv_timer_t resume_timer; /* retries accept after EMFILE even if no session ends */
	struct listener listeners[WORKER_MAX_LISTENERS];
	unsigned n_listeners;

	const struct config *cfg;
	/* [proxy] timeouts, read as sessions need them: a reload may change them */
	_Atomic unsigned idle_timeout_s, connect_timeout_ms, drain_timeout_ms;
	struct store *store;
	struct policy_holder *policy; /* this worker reads through slot `index` */
	struct owner_ctx *owner;      /* NULL: owners cannot be looked up */
	struct resolver *resolver;    /* forward proxies' names (resolve.h) */
	struct session_link sessions; /* every live session (a ring; worker.c's alone) */
	unsigned n_sessions;
	unsigned max_sessions;
	int draining;

	/* Fair share between local users ([proxy] max_sessions_per_uid). */
	struct uidcount uids;
	unsigned n_workers;              /* how many loops share the limits */
	_Atomic unsigned max_per_uid;    /* this loop's share of the limit; 0: none */
	_Atomic unsigned system_uid_max; /* [proxy] system_uid_max: a reload may change both */
	unsigned reserve;                /* the last sessions, for system users only */
	/* Refused connections are counted, not recorded one by one (this second's). */
	struct store_refusal refusals[WORKER_REFUSALS];
	size_t n_refusals;
	uv_timer_t refusal_timer;
	/* Sessions whose final event waits for room in the store's queue. */
	struct session_link finals;
	uv_timer_t finals_timer;

	struct bufpool pool;
	struct evio io; /* the sessions' sockets */
	struct proxy_stats stats;
	uv_timer_t beat_timer;
	_Atomic uint64_t beat_ms; /* uv_now of the loop's last heartbeat (1 s timer) */
};

/* A session joins w (accepted) and leaves it (freed). Loop thread only. */
void worker_session_add(struct worker *w, struct session_link *l);
void worker_session_remove(struct worker *w, struct session_link *l);

/* Count one refused connection of uid (-1: unknown) for reason (a literal). Loop thread. */
void worker_count_refusal(struct worker *w, int32_t uid, const char *reason);

/* A final event is parked: retry every WORKER_FINALS_MS until none is. */
void worker_finals_waiting(struct worker *w);

/* session.c: submit the parked final events again; at the drain deadline, drop them. */
void session_retry_finals(struct worker *w);
void session_drop_finals(struct worker *w);

#endif
