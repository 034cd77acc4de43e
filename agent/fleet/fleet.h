/*
 * fleet.h: the agent's one connection to its fleet: NATS (with JetStream),
 * dialled out, never in. The export's NATS sink ships over it; inventory,
 * fleet policy and console calls use it too.
 *
 * fleet_open() returns at once: a thread of its own connects, and connects
 * again for ever, with backoff and jitter (250 ms doubling to 5 s, +-25%),
 * so an agent started before its NATS server is up, or cut off for a
 * while, carries on and ships what it owes once the server is back. A
 * wrong credential or a TLS failure is logged once per change, with the
 * library's reason, and kept as the connection's last error for the stats
 * and health.
 *
 * Built without the NATS client (a Windows build made with Debian's sources
 * alone: see deploy/windows/build-deps.sh), fleet_open fails with a message
 * that says so (fleet_off.c).
 */
#ifndef RA_FLEET_H
#define RA_FLEET_H

#include <stddef.h>

struct config;
struct fleet;

/*
 * Start connecting to [fleet] servers as the agent with this UUID (the
 * client's name says so to the server's monitoring). Returns 0 with *out
 * set, or -1 with err set (a file that cannot be read, a bad URL, a build
 * without NATS).
 */
int fleet_open(
    struct fleet **out, const struct config *cfg, const char *uuid, char *err, size_t errlen);

/*
 * Whether cfg's [fleet] connection settings can be used (the URLs, and the
 * TLS and credential files load): 0, or -1 with err set. Changes nothing.
 */
int fleet_check(const struct config *cfg, const char *uuid, char *err, size_t errlen);

/*
 * A reload: when the servers, the TLS or credential files (their names or
 * contents) changed, connect again with them. The current connection is
 * closed; users of it see a new generation and make theirs again, and
 * unacknowledged publishes are sent again (their message ids make that
 * safe). Returns 1 when a new connection is under way, 0 when nothing
 * changed, -1 with err set (f unchanged). One caller at a time.
 */
int fleet_reconfigure(
    struct fleet *f, const struct config *cfg, const char *uuid, char *err, size_t errlen);

/* Close the connection (pending publishes are dropped) and free f. NULL is ignored. */
void fleet_close(struct fleet *f);

/* 1 when connected; else 0 with why set (the last error, or "connecting"). Thread-safe. */
int fleet_connected(struct fleet *f, char *why, size_t whylen);

/*
 * A JetStream context (jsCtx *) on the current connection, made with
 * js_options (jsOptions *), and the connection's generation: when
 * fleet_generation() moves on, the connection was made anew and the caller
 * makes a new context (the old one keeps the old connection alive until it
 * is destroyed, and only fails). Returns 0, or -1 while there is no
 * connection. For fleet/ only.
 */
int fleet_jetstream(struct fleet *f, void *js_options, void **js, unsigned *gen);
unsigned fleet_generation(struct fleet *f);

/*
 * Call fn with the current connection (natsConnection *) under the fleet's
 * lock, to make what lives on it (subscriptions, a JetStream context: they
 * keep the connection alive). Returns fn's result, with *gen the
 * connection's generation; -1 while not connected. For fleet/ only.
 */
int fleet_attach(struct fleet *f, int (*fn)(void *nc, void *arg), void *arg, unsigned *gen);

/* Whether this build has the NATS client. */
int fleet_available(void);

#endif
