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
struct policy_problems;
struct rpc_core;
struct rpc_server;

struct rpc_deps {
	const struct config *cfg;
	struct workers *workers;
	struct store *store;
	struct redirect *redirect;
	struct policy_holder *policy; /* written under the core's policy_lock */
	struct exporter *exporter;    /* NULL: no export sink configured */
	int64_t started_at_us;
	/* Agent.Reload: 0 with msg, or a negative errno (agent_reload's). NULL: not offered. */
	int (*reload)(void *ctx, char *msg, size_t msglen);
	void *reload_ctx;
};

/*
 * The API's methods, whatever the transport (gRPC here, NATS in fleet/),
 * and the one path by which a policy is put in force. Made before the
 * proxy starts (the fleet's policy may be applied before any connection is
 * taken); deps that do not exist yet (workers, redirect, exporter) are NULL
 * until rpc_core_set_deps, called before any thread uses the core.
 * Returns 0 with *out set, or -1 with err set.
 */
int rpc_core_new(struct rpc_core **out, const struct rpc_deps *deps, char *err, size_t errlen);
void rpc_core_set_deps(struct rpc_core *core, const struct rpc_deps *deps);
void rpc_core_free(struct rpc_core *core);

/* A reload's [db] policy_history_keep: the next SetPolicy prunes to it. */
void rpc_core_set_policy_history_keep(struct rpc_core *core, unsigned keep);

/*
 * Put a document from the fleet in force as a new version, by the path
 * SetPolicy takes, its author "fleet:<source>" (source: "group.x@17", the key
 * and its revision). Returns 0; -EINVAL when the document is not valid for
 * this agent (problems filled: free them; msg joins them); -EIO with msg.
 */
int rpc_policy_from_fleet(struct rpc_core *core, const char *doc, const char *source,
    struct policy_problems *problems, char *msg, size_t msglen);

/*
 * No fleet key applies any more: put the newest locally set version back in
 * force (as a new version), or the default. Nothing when the local policy
 * is in force already. Returns 0, or a negative errno with msg.
 */
int rpc_policy_back_to_local(struct rpc_core *core, char *msg, size_t msglen);

/* The version in force, and its fleet source ("" when local). Thread-safe. */
void rpc_policy_state(struct rpc_core *core, uint64_t *version, char *fleet_source, size_t len);

/* Health as GetHealth gives it: 1 serving, 0 degraded with up to max reasons. */
int rpc_health(struct rpc_core *core, char (*reasons)[640], size_t max, size_t *n);

/*
 * One unary method for another transport: path "/redirect.v1.Agent/GetInfo",
 * the packed request; on GRPC status 0, *reply (malloc'ed) and *reply_len.
 * The caller's identity is trusted by the transport (NATS: the server's
 * permissions) and gets the admin role. Returns the status code (grpc's
 * numbering) with msg set when not 0. Serialized on the core: one at a time.
 */
int rpc_core_call(struct rpc_core *core, const char *path, const uint8_t *req, size_t len,
    uint8_t **reply, size_t *reply_len, char *msg, size_t msglen);

/*
 * Start serving core on [api] local_socket: a unix socket with mode 0660,
 * group [api] admin_group (when that group exists). Only root, the agent's
 * own user and members of that group may call (checked with SO_PEERCRED).
 * Returns 0 with *out set, or -1 with err set.
 */
int rpc_server_start(struct rpc_server **out, struct rpc_core *core, char *err, size_t errlen);

/*
 * The remote listener's certificate, key and client CA (the files named by
 * the configuration) are read again before its next handshake: connections
 * made before keep theirs. The files are checked first: -1 with err set,
 * and the old ones stay, when one cannot be read. 0 without a remote listener.
 */
int rpc_server_reload_certs(struct rpc_server *srv, char *err, size_t errlen);

/*
 * A reload's [api] admins and readers: copied from next into running (the
 * configuration srv reads) under the lock its role checks take, so each
 * call is judged by one list or the other. srv may be NULL (no server yet).
 */
void rpc_server_set_roles(
    struct rpc_server *srv, struct config *running, const struct config *next);

/*
 * Stop: in-flight calls are cancelled with a status, the threads are
 * joined, the socket file removed, and srv freed. NULL is ignored.
 */
void rpc_server_stop(struct rpc_server *srv);

#endif
