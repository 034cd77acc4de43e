/*
 * rpc_internal.h: what server.c (gRPC plumbing) and handlers.c (methods)
 * share. Not for other layers.
 */
#ifndef RA_RPC_INTERNAL_H
#define RA_RPC_INTERNAL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "config.h"
#include "platform.h"
#include "redirect/v1/agent.pb-c.h"
#include "redirect/v1/policy.pb-c.h"
#include "redirect/v1/telemetry.pb-c.h"
#include "rpc_server.h"

#define RPC_MAX_REQUEST_BYTES (4 * 1024 * 1024) /* a 10,000-rule policy is about 1.3 MB */
#define RPC_MAX_REPLY_BYTES   (16 * 1024 * 1024)
#define RPC_MAX_METHODS       16
#define RPC_MAX_PEM_BYTES     (256 * 1024)

struct rpc_server;

/*
 * A method: decode the request, fill *reply (rpc_pack) and return a status;
 * on an error status, msg says why (sent to the caller).
 */
enum rpc_role {
	RPC_ROLE_NONE,
	RPC_ROLE_READER, /* Agent, Telemetry */
	RPC_ROLE_ADMIN,  /* also Policy */
};

/* Every completion-queue tag is one of these: what completed, and for whom. */
enum rpc_tag_kind {
	RPC_TAG_CALL,         /* a unary call (struct rpc_call) */
	RPC_TAG_WATCH_SEND,   /* a watcher's message was taken */
	RPC_TAG_WATCH_CLOSE,  /* a watcher's call ended (client gone, or finished) */
	RPC_TAG_WATCH_STATUS, /* a watcher's final status was sent */
};

struct rpc_tag {
	enum rpc_tag_kind kind;
	void *arg;
};

struct watch;

struct rpc_method {
	const char *path; /* "/redirect.v1.Agent/GetInfo" */
	enum rpc_role needs;
	int streaming; /* handled by watch.c, not by handle() */
	const ProtobufCMessageDescriptor *input;
	grpc_status_code (*handle)(struct rpc_server *srv, const ProtobufCMessage *req,
	    grpc_byte_buffer **reply, char *msg, size_t msglen);
};

extern const struct rpc_method rpc_methods[];
extern const size_t rpc_n_methods;

struct rpc_server {
	struct rpc_deps deps;
	const struct config *cfg;
	grpc_server *server;
	grpc_completion_queue *cq;
	grpc_server_credentials *local_creds;
	grpc_server_credentials *remote_creds; /* NULL: no remote listener */
	void *handles[RPC_MAX_METHODS];
	int grpc_inited;
	_Atomic int stopping;

	struct rpc_local *local; /* the local admin endpoint: local_posix.c, local_win.c */
	pthread_t cq_thread;
	int cq_running;

	sqlite3 *db;        /* read-only; used by the cq thread only */
	sqlite3 *policy_db; /* read-write, the policies table only; cq thread only */
	char caller[CONFIG_IDENTITY_MAX + 32]; /* who makes the call being handled */

	/* watch.c */
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_wake, watch_idle;
	pthread_t watch_thread;
	int watch_inited, watch_running, watch_exit;
	struct watch *watchers;
	unsigned n_watchers;
	sqlite3 *watch_db; /* read-only; used by the watch thread only */
};

/*
 * The local admin endpoint, one file per platform: a unix socket whose
 * peers are checked by uid (local_posix.c), or a unix socket in an
 * administrators-only folder (local_win.c). Every local caller is admin.
 *
 * rpc_local_open   before grpc_init: claim the endpoint (a stale socket left
 *                  by a crash is replaced; one with a live agent is refused).
 * rpc_local_attach after the server is created, before it starts.
 * rpc_local_serve  after it starts: begin taking local callers.
 * rpc_local_close  stop taking callers and release the endpoint; safe after
 *                  any of the others failed, and when none ran.
 * Each returns 0, or -1 with err set.
 */
int rpc_local_open(struct rpc_server *srv, char *err, size_t errlen);
int rpc_local_attach(struct rpc_server *srv, char *err, size_t errlen);
int rpc_local_serve(struct rpc_server *srv, char *err, size_t errlen);
void rpc_local_close(struct rpc_server *srv);

grpc_byte_buffer *rpc_pack(const ProtobufCMessage *msg);

/*
 * The caller's role. Calls on the local socket (peer uid already checked)
 * are admin; TLS peers get the role their certificate identity (SAN, else
 * CN) has in the config. who receives the identity used, for messages.
 */
enum rpc_role rpc_role_of(const struct config *cfg, grpc_call *call, char *who, size_t wholen);

/* The role configured for one identity (exact match; admins win over readers). */
enum rpc_role rpc_role_of_identity(const struct config *cfg, const char *id, size_t len);

struct conn_row;
/* A Connection message owning copies of the row's strings; NULL when out of memory. */
Redirect__V1__Connection *rpc_conn_new(const struct conn_row *r);
void rpc_conn_free(Redirect__V1__Connection *c);

/* watch.c: start its thread; take over a WatchConnections call (OK: the
 * stream is running; otherwise the caller replies with that status); report
 * a completed tag (cq thread); stop in two steps around the gRPC shutdown. */
int watch_start(struct rpc_server *srv, char *err, size_t errlen);
grpc_status_code watch_begin(
    struct rpc_server *srv, grpc_call *call, const ProtobufCMessage *req, char *msg, size_t msglen);
void watch_on_tag(struct rpc_server *srv, struct rpc_tag *t, int success);
void watch_stop_begin(struct rpc_server *srv);
void watch_stop_end(struct rpc_server *srv);

/* policy_rpc.c: the Policy service. */
grpc_status_code rpc_get_policy(struct rpc_server *srv, const ProtobufCMessage *req,
    grpc_byte_buffer **reply, char *msg, size_t msglen);
grpc_status_code rpc_set_policy(struct rpc_server *srv, const ProtobufCMessage *req,
    grpc_byte_buffer **reply, char *msg, size_t msglen);
grpc_status_code rpc_validate_policy(struct rpc_server *srv, const ProtobufCMessage *req,
    grpc_byte_buffer **reply, char *msg, size_t msglen);
grpc_status_code rpc_list_policy_history(struct rpc_server *srv, const ProtobufCMessage *req,
    grpc_byte_buffer **reply, char *msg, size_t msglen);
/* Per-rule hits of the policy in force, for GetStats. */
void rpc_fill_rule_hits(struct rpc_server *srv, Redirect__V1__Stats *s);
void rpc_free_rule_hits(Redirect__V1__Stats *s);

int rpc_db_open(struct rpc_server *srv, char *err, size_t errlen);
void rpc_db_close(struct rpc_server *srv);

#endif
