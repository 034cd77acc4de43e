/*
 * worker.h: the proxy's event loops, one per core.
 *
 * Each worker is a thread running its own libuv loop with its own
 * SO_REUSEPORT listeners (IPv4 127.0.0.1 and IPv6 ::1, where the nft
 * "redirect" statement sends locally generated connections); the kernel
 * spreads connections over them. A worker never shares a session with
 * another.
 */
#ifndef RA_WORKER_H
#define RA_WORKER_H

#include <uv.h>

#include "platform.h"

#include "bufpool.h"
#include "config.h"
#include "evio.h"
#include "proxy_stats.h"

struct store;
struct policy_holder;
struct session;
struct workers;

#define WORKER_MAX_LISTENERS 2

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
	struct store *store;
	struct policy_holder *policy; /* this worker reads through slot `index` */
	struct owner_ctx *owner;      /* NULL: owners cannot be looked up */
	struct session *sessions;     /* every live session, for draining */
	unsigned n_sessions;
	unsigned max_sessions;
	int draining;

	struct bufpool pool;
	struct evio io; /* the sessions' sockets */
	struct proxy_stats stats;
	uv_timer_t beat_timer;
	_Atomic uint64_t beat_ms; /* uv_now of the loop's last heartbeat (1 s timer) */
};

/* How many event loops cfg asks for: [proxy] workers, 0 meaning one per CPU; 1 on Windows. */
unsigned workers_count(const struct config *cfg);

/*
 * Bind the listeners and start workers_count(cfg) workers. Fails when
 * the listen port is already taken (another agent). Returns 0 with *out set,
 * or -1 with err set.
 */
int workers_start(struct workers **out, const struct config *cfg, struct store *store,
    struct policy_holder *policy, char *err, size_t errlen);

/*
 * Stop accepting, let open sessions finish for up to drain_timeout_ms, close
 * the rest with reason "agent shutdown", join the threads and free ws. The
 * final counters go to *final when it is not NULL.
 */
void workers_stop(struct workers *ws, struct proxy_stats_snapshot *final);

/*
 * Whether every worker's loop ran its heartbeat within max_age_ms of now
 * (uv_hrtime based). The systemd watchdog is fed only while this holds.
 */
int workers_alive(struct workers *ws, uint64_t max_age_ms);

/* Sum of every worker's counters. Thread-safe. */
void workers_get_stats(struct workers *ws, struct proxy_stats_snapshot *out);

/* session.c tells its worker that a session is gone (loop thread only). */
void worker_session_gone(struct worker *w);

#endif
