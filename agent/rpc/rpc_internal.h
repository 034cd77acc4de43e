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

#include "redirect/v1/agent.pb-c.h"
#include "redirect/v1/policy.pb-c.h"
#include "redirect/v1/telemetry.pb-c.h"
#include "rpc.h"

#define RPC_MAX_REQUEST_BYTES (64 * 1024)
#define RPC_MAX_REPLY_BYTES   (16 * 1024 * 1024)
#define RPC_MAX_METHODS       16

struct rpc_server;

/*
 * A method: decode the request, fill *reply (rpc_pack) and return a status;
 * on an error status, msg says why (sent to the caller).
 */
struct rpc_method {
	const char *path; /* "/redirect.v1.Agent/GetInfo" */
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
	void *handles[RPC_MAX_METHODS];
	int grpc_inited;
	_Atomic int stopping;

	int listen_fd;
	int wake[2];
	gid_t admin_gid;
	int have_admin_gid;
	pthread_t cq_thread, accept_thread;
	int cq_running, accept_running;

	sqlite3 *db; /* read-only; used by the cq thread only */
};

grpc_byte_buffer *rpc_pack(const ProtobufCMessage *msg);

int rpc_db_open(struct rpc_server *srv, char *err, size_t errlen);
void rpc_db_close(struct rpc_server *srv);

#endif
