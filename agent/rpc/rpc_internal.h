/*
 * rpc_internal.h: what the API's files share. Not for other layers.
 *
 * Two halves. The methods (handlers.c, policy_rpc.c) know nothing of the
 * transport: each gets a struct rpc_ctx holding the decoded request and the
 * caller, and leaves a packed reply or a status with a message in it. One
 * table, rpc_methods[], names them, and rpc_call() runs one for any
 * transport: the gRPC server (server.c, watch.c, auth.c, local_*.c), and
 * fleet requests over NATS. The state the methods share across transports
 * and threads is struct rpc_core.
 */
#ifndef RA_RPC_INTERNAL_H
#define RA_RPC_INTERNAL_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "platform.h"
#include "redirect/v1/agent.pb-c.h"
#include "redirect/v1/policy.pb-c.h"
#include "redirect/v1/telemetry.pb-c.h"
#include "rpc_server.h"

#define RPC_MAX_REQUEST_BYTES (4 * 1024 * 1024) /* a 10,000-rule policy is about 1.3 MB */
#define RPC_MAX_REPLY_BYTES   (16 * 1024 * 1024)
#define RPC_MAX_METHODS       16
#define RPC_MAX_PEM_BYTES     (256 * 1024)
#define RPC_MSG_MAX           2048             /* an error status's message */
#define RPC_SLOW_THREADS      2                /* threads for the methods that read the database */
#define RPC_HANDSHAKE_MS      5000             /* a connection's TLS handshake, at most */
#define RPC_IDLE_MS           (10 * 60 * 1000) /* a connection with no call, at most */
#define RPC_MEMORY_QUOTA      (64 * 1024 * 1024) /* the API's buffers, all connections */

struct query;
struct policy_store;

enum rpc_role {
	RPC_ROLE_NONE,
	RPC_ROLE_READER, /* Agent, Telemetry */
	RPC_ROLE_ADMIN,  /* also Policy */
};

/*
 * What the methods share, whatever the transport. The policy store and the
 * policy holder's writer side are used under policy_lock: SetPolicy's
 * compare-and-set, kernel update, store and swap are one step.
 */
struct rpc_core {
	struct rpc_deps deps;
	const struct config *cfg;
	pthread_mutex_t policy_lock;
	struct policy_store *policies; /* under policy_lock */
	char fleet_source[128];        /* under policy_lock: "group.x@17"; "": local */
	pthread_mutex_t call_lock;     /* rpc_core_call's, and its reader */
	struct query *call_q;
};

/* One call, as a method sees it. */
struct rpc_ctx {
	struct rpc_core *core;
	struct query *q;             /* the calling thread's own reader */
	const ProtobufCMessage *req; /* decoded; owned by rpc_call */
	const char *caller;          /* who calls: an identity, "local socket", ... */
	char msg[RPC_MSG_MAX];       /* an error status's message, for the caller */
	uint8_t *reply;              /* the packed reply (rpc_reply), freed by the transport */
	size_t reply_len;
};

/* A method returns a status; on GRPC_STATUS_OK it packed its reply with rpc_reply. */
typedef grpc_status_code (*rpc_handler)(struct rpc_ctx *cx);

struct rpc_method {
	const char *path;    /* "/redirect.v1.Agent/GetInfo" */
	const char *service; /* "Agent" */
	const char *name;    /* "GetInfo" */
	enum rpc_role needs;
	const ProtobufCMessageDescriptor *input;
	rpc_handler handle; /* NULL: a stream, served by watch.c over gRPC only */
	int fast;           /* never waits on the database or a lock: the fast queue */
};

extern const struct rpc_method rpc_methods[];
extern const size_t rpc_n_methods;

/* The method called path ("/redirect.v1.Agent/GetInfo"), or NULL. */
const struct rpc_method *rpc_method_by_path(const char *path);

/* The method Service.Name ("Agent", "GetInfo"), or NULL. */
const struct rpc_method *rpc_method_by_name(const char *service, const char *name);

/*
 * Run m for a caller with role on the request bytes req (len bytes): check
 * the role, decode, call, free the request. cx->core, q and caller must be
 * set; on return cx->reply holds the packed reply (status OK) or cx->msg
 * says why not. Never for a stream.
 */
grpc_status_code rpc_call(struct rpc_ctx *cx, const struct rpc_method *m, enum rpc_role role,
    const uint8_t *req, size_t len);

/* Pack msg into cx->reply. Returns GRPC_STATUS_OK, or RESOURCE_EXHAUSTED (msg set). */
grpc_status_code rpc_reply(struct rpc_ctx *cx, const ProtobufCMessage *msg);

/* Set cx->msg with printf-style text. Returns status, for `return rpc_fail(...)`. */
grpc_status_code rpc_fail(struct rpc_ctx *cx, grpc_status_code status, const char *fmt, ...)
    LOG_PRINTF(3, 4);

/* The gRPC server: one per agent. */
enum rpc_tag_kind {
	RPC_TAG_CALL,         /* a unary call (struct rpc_call) */
	RPC_TAG_WATCH_SEND,   /* a watcher's message was taken */
	RPC_TAG_WATCH_CLOSE,  /* a watcher's call ended (client gone, or finished) */
	RPC_TAG_WATCH_STATUS, /* a watcher's final status was sent */
};

/* Every completion-queue tag is one of these: what completed, and for whom. */
struct rpc_tag {
	enum rpc_tag_kind kind;
	void *arg;
};

struct watch;

struct rpc_server {
	struct rpc_core *core; /* the agent's (rpc_core_new) */
	const struct config *cfg;
	grpc_server *server;
	grpc_completion_queue *cq;
	grpc_server_credentials *local_creds;
	grpc_server_credentials *remote_creds; /* NULL: no remote listener */
	_Atomic unsigned cert_gen;             /* bumped by a reload: read the files again */
	_Atomic unsigned cert_gen_loaded;      /* the generation gRPC has */
	pthread_mutex_t roles_lock;            /* cfg's admins and readers (a reload) */
	void *handles[RPC_MAX_METHODS];
	int grpc_inited;
	_Atomic int stopping;

	struct rpc_local *local; /* the local admin endpoint: local_linux.c, local_win.c */
	/*
	 * Two queues. The fast one (cq, one thread) serves the methods marked
	 * fast (health, info, the watch stream's start and its batches) and
	 * nothing else: no call on it waits on the database or the policy lock,
	 * so health answers whatever else runs. The others go to slow_cq,
	 * served by RPC_SLOW_THREADS threads, each with its own reader.
	 */
	grpc_completion_queue *slow_cq;
	pthread_t cq_thread, slow_threads[RPC_SLOW_THREADS];
	int cq_running, n_slow_running;
	struct query *q;                        /* the fast thread's reader */
	struct query *slow_q[RPC_SLOW_THREADS]; /* one per slow thread */

	/* watch.c */
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_wake, watch_idle;
	pthread_t watch_thread;
	int watch_inited, watch_running, watch_exit;
	struct watch *watchers;
	unsigned n_watchers;
	struct query *watch_q; /* the watch thread's reader */
};

/*
 * The local admin endpoint, one file per platform: a unix socket whose
 * peers are checked by uid (local_linux.c), or loopback TCP with mutual TLS
 * whose admin key lies in an administrators-only folder (local_win.c).
 * Every local caller is admin.
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

/*
 * Whether a TLS caller came through the local endpoint as its admin: on
 * Windows, whether it presented the local admin certificate (local_win.c);
 * never on Linux, whose local callers are not TLS. Thread-safe.
 */
int rpc_local_is_admin(const grpc_auth_context *ctx);

/* The packed bytes of msg as a gRPC byte buffer (one copy). */
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
struct conn_filter;
/* A Connection message owning copies of the row's strings; NULL when out of memory. */
Redirect__V1__Connection *rpc_conn_new(const struct conn_row *r);
void rpc_conn_free(Redirect__V1__Connection *c);

/* Build a query filter from a ListConnections request; on a bad field, msg names it. */
/*
 * The name of a string field of the request (d; nested messages too) whose
 * bytes hold a NUL, or NULL. protobuf-c hands strings over NUL-terminated:
 * a document "{...}\0{...}" would silently be cut at the NUL, so rpc_call
 * refuses such a request. req must have decoded as a d.
 */
const char *rpc_string_with_nul(
    const ProtobufCMessageDescriptor *d, const uint8_t *req, size_t len);

int rpc_filter_from_request(const Redirect__V1__ListConnectionsRequest *rq, struct conn_filter *f,
    char *msg, size_t msglen);

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
grpc_status_code rpc_get_policy(struct rpc_ctx *cx);
grpc_status_code rpc_set_policy(struct rpc_ctx *cx);
grpc_status_code rpc_validate_policy(struct rpc_ctx *cx);
grpc_status_code rpc_list_policy_history(struct rpc_ctx *cx);
/*
 * Per-rule hits of the policy in force, for GetStats. The caller holds
 * core->policy_lock until it has packed s and called rpc_free_rule_hits:
 * the rule ids point into the policy.
 */
void rpc_fill_rule_hits(struct rpc_core *core, Redirect__V1__Stats *s);
void rpc_free_rule_hits(Redirect__V1__Stats *s);

#endif
