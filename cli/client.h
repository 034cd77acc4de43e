/*
 * client.h: redirectctl's one way to call the agent (gRPC core, unary calls).
 */
#ifndef RA_CLIENT_H
#define RA_CLIENT_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#define CLIENT_UNREACHABLE (-1) /* not a gRPC status: the agent could not be reached */

struct client {
	char target[256]; /* "unix:/run/redirect-agent/agent.sock" */
	char where[256];  /* for messages: the socket path */
	grpc_channel *channel;
	grpc_completion_queue *cq;
	/*
	 * Another transport for unary calls (fleet.c: NATS request/reply to one
	 * agent): the packed request in, the packed reply out (malloc'ed), a
	 * gRPC status or CLIENT_UNREACHABLE back. NULL: gRPC.
	 */
	int (*unary)(struct client *c, const char *method, const uint8_t *req, size_t len,
	    uint8_t **reply, size_t *reply_len, char *msg, size_t msglen);
	void *impl;
};

/*
 * Prepare a channel to the agent's unix socket; on Windows to its local
 * endpoint, loopback TCP with TLS, that the file at socket_path names
 * (local_win.c). Returns 0, or -1 with err set.
 */
int client_open(struct client *c, const char *socket_path, char *err, size_t errlen);

/*
 * Prepare a TLS channel to a remote agent at HOST:PORT, verifying its
 * certificate against ca_file and presenting cert_file/key_file. Returns 0,
 * or -1 with err set (a file that cannot be read).
 */
int client_open_tls(struct client *c, const char *target, const char *ca_file,
    const char *cert_file, const char *key_file, char *err, size_t errlen);

/*
 * Call method with req; on GRPC_STATUS_OK *resp is the decoded reply (free
 * with protobuf_c_message_free_unpacked). Otherwise the status (or
 * CLIENT_UNREACHABLE) is returned and msg says why.
 */
int client_call(struct client *c, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, char *msg, size_t msglen);

/*
 * Call a server-streaming method: cb gets each decoded reply (owned by
 * client_stream, freed after cb returns) until the stream ends, cb returns
 * non-zero, or the agent fails. Returns like client_call.
 */
int client_stream(struct client *c, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *resp_desc, int (*cb)(void *arg, const ProtobufCMessage *m),
    void *arg, char *msg, size_t msglen);

void client_close(struct client *c);

#endif
