/*
 * worker.h: the proxy's event loops, as the rest of the agent sees them.
 *
 * Each worker is a thread running its own libuv loop with its own
 * SO_REUSEPORT listeners (IPv4 127.0.0.1 and IPv6 ::1, where the nft
 * "redirect" statement sends locally generated connections); the kernel
 * spreads connections over them. A worker never shares a session with
 * another. The life cycle (agent.c) and the API (rpc/) hold only the opaque
 * struct workers; the loops' insides are private to proxy/
 * (worker_internal.h).
 */
#ifndef RA_WORKER_H
#define RA_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "proxy_stats.h"

struct config;
struct store;
struct policy_holder;
struct workers;

/* How many event loops cfg asks for: [proxy] workers, 0 meaning one per CPU; 1 on Windows. */
unsigned workers_count(const struct config *cfg);

/*
 * A reload's [proxy] idle_timeout_s, connect_timeout_ms and drain_timeout_ms
 * (sessions use them from their next timer on), max_sessions_per_uid and
 * system_uid_max (from the next connection on: the sessions a user held when
 * the limit was off are not counted against it). Any thread.
 */
void workers_set_limits(struct workers *ws, const struct config *cfg);

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

#endif
