/*
 * rpc_server.h: the gRPC API server (gRPC C core + protobuf-c).
 *
 * Runs on its own threads: one drives the completion queue, one accepts on
 * the local unix socket. It reads counters (atomics) and the database
 * through its own read-only SQLite connection; it never touches a live
 * session.
 */
#ifndef RA_RPC_SERVER_H
#define RA_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct workers;
struct store;
struct redirect;
struct policy_holder;
struct exporter;
struct rpc_server;

struct rpc_deps {
	const struct config *cfg;
	struct workers *workers;
	struct store *store;
	struct redirect *redirect;
	struct policy_holder *policy; /* written under the core's policy_lock */
	struct exporter *exporter;    /* NULL: no export sink configured */
	int64_t started_at_us;
};

/*
 * Start serving on [api] local_socket: a unix socket with mode 0660, group
 * [api] admin_group (when that group exists). Only root, the agent's own
 * user and members of that group may call (checked with SO_PEERCRED).
 * Returns 0 with *out set, or -1 with err set.
 */
int rpc_server_start(
    struct rpc_server **out, const struct rpc_deps *deps, char *err, size_t errlen);

/*
 * Stop: in-flight calls are cancelled with a status, the threads are
 * joined, the socket file removed, and srv freed. NULL is ignored.
 */
void rpc_server_stop(struct rpc_server *srv);

#endif
