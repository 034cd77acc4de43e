/*
 * client.c: redirectctl's calls to the agent over gRPC (client.h).
 */
#include "client.h"

#include "addr.h"
#include "err.h"
#include "platform.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <afunix.h>
#else
#include <sys/un.h>
#endif

#define CALL_TIMEOUT_MS 10000

#ifndef _WIN32 /* Windows' local endpoint is TCP with TLS: local_win.c */
/* gRPC would only say "UNAVAILABLE"; connect once ourselves to say why. */
static int
probe_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	sock_t fd;
	int r;

	if (addr_unix(&sun, path, err, errlen) != 0)
		return -1;
	if ((fd = sock_unix_stream()) == SOCK_INVALID) {
		snprintf(err, errlen, "socket: %s", err_str(sock_errno()));
		return -1;
	}
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (r != 0)
		snprintf(
		    err, errlen, "cannot reach the agent at %s: %s", path, err_str(sock_errno()));
	sock_close(fd);
	return r;
}
#endif

/* A reply may be as large as the agent sends (a policy up to 4 MiB, pages up to 16 MiB). */
static grpc_arg max_receive = {
    GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = 16 * 1024 * 1024}};
static const grpc_channel_args channel_args = {1, &max_receive};

#ifndef _WIN32
int
client_open(struct client *c, const char *socket_path, char *err, size_t errlen)
{
	grpc_channel_credentials *creds;

	memset(c, 0, sizeof(*c));
	if (probe_socket(socket_path, err, errlen) != 0)
		return -1;
	snprintf(c->target, sizeof(c->target), "unix:%s", socket_path);
	snprintf(c->where, sizeof(c->where), "%s", socket_path);
	grpc_init();
	creds = grpc_insecure_credentials_create();
	c->channel = grpc_channel_create(c->target, creds, &channel_args);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	return 0;
}
#endif

static char *
read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, err_str(errno));
		return NULL;
	}
	buf = malloc(256 * 1024 + 1);
	n = buf != NULL ? fread(buf, 1, 256 * 1024, f) : 0;
	fclose(f);
	if (buf == NULL || n == 0) {
		snprintf(err, errlen, "%s: empty or unreadable", path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

int
client_open_tls(struct client *c, const char *target, const char *ca_file, const char *cert_file,
    const char *key_file, char *err, size_t errlen)
{
	char *ca, *cert = NULL, *key = NULL;
	grpc_ssl_pem_key_cert_pair pair;
	grpc_channel_credentials *creds;

	memset(c, 0, sizeof(*c));
	if ((ca = read_file(ca_file, err, errlen)) == NULL ||
	    (cert = read_file(cert_file, err, errlen)) == NULL ||
	    (key = read_file(key_file, err, errlen)) == NULL) {
		free(ca);
		free(cert);
		return -1;
	}
	snprintf(c->target, sizeof(c->target), "%s", target);
	snprintf(c->where, sizeof(c->where), "%s (TLS)", target);
	grpc_init();
	pair.private_key = key;
	pair.cert_chain = cert;
	creds = grpc_ssl_credentials_create(ca, &pair, NULL, NULL);
	c->channel = grpc_channel_create(c->target, creds, &channel_args);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	free(ca);
	free(cert);
	free(key);
	return 0;
}

/* Run one batch on call and wait for it. Returns 1 when it succeeded. */
static int
run_batch(struct client *c, grpc_call *call, grpc_op *ops, size_t n)
{
	int tag;
	grpc_event ev;

	if (grpc_call_start_batch(call, ops, n, &tag, NULL) != GRPC_CALL_OK)
		return 0;
	ev = grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	return ev.success;
}

static ProtobufCMessage *
decode(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d)
{
	grpc_byte_buffer_reader reader;
	ProtobufCMessage *m;
	grpc_slice all;

	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return NULL;
	all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	return m;
}

/*
 * The one way a call runs: send req, hand every reply to cb (which owns it),
 * then read the status. A unary call is a stream of one message.
 */
static int
run_call(struct client *c, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *resp_desc, gpr_timespec deadline,
    int (*cb)(void *arg, ProtobufCMessage *m), void *arg, char *msg, size_t msglen)
{
	grpc_metadata_array initial, trailing;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	size_t len = protobuf_c_message_get_packed_size(req);
	grpc_slice body = grpc_slice_malloc(len);
	grpc_byte_buffer *out, *in = NULL;
	grpc_op ops[4];
	grpc_call *call;
	int rc, stopped = 0, bad_reply = 0;

	protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(body));
	out = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
	    grpc_slice_from_static_string(method), NULL, deadline, NULL);

	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = out;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	/* Messages are delivered only after the initial metadata was received. */
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	(void)run_batch(c, call, ops, 4);
	for (;;) {
		ProtobufCMessage *m;

		memset(ops, 0, sizeof(ops));
		ops[0].op = GRPC_OP_RECV_MESSAGE;
		ops[0].data.recv_message.recv_message = &in;
		if (!run_batch(c, call, ops, 1) || in == NULL)
			break;
		m = decode(in, resp_desc);
		grpc_byte_buffer_destroy(in);
		in = NULL;
		if (m == NULL) {
			bad_reply = 1;
			grpc_call_cancel(call, NULL);
			break;
		}
		if ((stopped = cb(arg, m)) != 0) {
			grpc_call_cancel(call, NULL);
			break;
		}
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[0].data.recv_status_on_client.status = &status;
	ops[0].data.recv_status_on_client.status_details = &details;
	(void)run_batch(c, call, ops, 1);
	{
		char *d = grpc_slice_to_c_string(details);

		snprintf(msg, msglen, "%s", d);
		gpr_free(d);
	}
	rc = stopped ? 0 : (int)status;
	if (bad_reply) {
		snprintf(msg, msglen, "the agent's reply is not a %s", resp_desc->name);
		rc = GRPC_STATUS_INTERNAL;
	} else if (!stopped && status == GRPC_STATUS_UNAVAILABLE &&
		   strcmp(msg, "agent stopping") != 0) {
		snprintf(msg + strlen(msg), msglen - strlen(msg), "%scannot reach the agent at %s",
		    msg[0] != '\0' ? ": " : "", c->where);
		rc = CLIENT_UNREACHABLE;
	}
	grpc_byte_buffer_destroy(out);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	grpc_call_unref(call);
	return rc;
}

static int
keep_first(void *arg, ProtobufCMessage *m)
{
	ProtobufCMessage **first = arg;

	if (*first == NULL)
		*first = m;
	else
		protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int
client_call(struct client *c, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, char *msg, size_t msglen)
{
	gpr_timespec deadline = gpr_time_add(
	    gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(CALL_TIMEOUT_MS, GPR_TIMESPAN));
	int rc;

	*resp = NULL;
	if (c->unary != NULL) { /* another transport: the same messages */
		size_t len = protobuf_c_message_get_packed_size(req), reply_len = 0;
		uint8_t *buf = malloc(len > 0 ? len : 1), *reply = NULL;

		if (buf == NULL) {
			snprintf(msg, msglen, "out of memory");
			return GRPC_STATUS_RESOURCE_EXHAUSTED;
		}
		protobuf_c_message_pack(req, buf);
		rc = c->unary(c, method, buf, len, &reply, &reply_len, msg, msglen);
		free(buf);
		if (rc == GRPC_STATUS_OK && (*resp = protobuf_c_message_unpack(
						 resp_desc, NULL, reply_len, reply)) == NULL) {
			snprintf(msg, msglen, "the agent's reply is not a %s", resp_desc->name);
			rc = GRPC_STATUS_INTERNAL;
		}
		free(reply);
		return rc;
	}
	rc = run_call(c, method, req, resp_desc, deadline, keep_first, resp, msg, msglen);
	if (rc == GRPC_STATUS_OK && *resp == NULL) {
		snprintf(msg, msglen, "the agent sent no reply");
		rc = GRPC_STATUS_INTERNAL;
	}
	if (rc != GRPC_STATUS_OK && *resp != NULL) {
		protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
	}
	return rc;
}

struct stream_cb {
	int (*cb)(void *arg, const ProtobufCMessage *m);
	void *arg;
};

static int
stream_one(void *arg, ProtobufCMessage *m)
{
	struct stream_cb *s = arg;
	int r = s->cb(s->arg, m);

	protobuf_c_message_free_unpacked(m, NULL);
	return r;
}

int
client_stream(struct client *c, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *resp_desc, int (*cb)(void *arg, const ProtobufCMessage *m),
    void *arg, char *msg, size_t msglen)
{
	struct stream_cb s = {cb, arg};

	if (c->unary != NULL) {
		snprintf(msg, msglen,
		    "%s is a stream: over NATS, read the fleet's stream instead "
		    "(redirectctl fleet conns --follow)",
		    method);
		return GRPC_STATUS_UNIMPLEMENTED;
	}
	return run_call(c, method, req, resp_desc, gpr_inf_future(GPR_CLOCK_REALTIME), stream_one,
	    &s, msg, msglen);
}

void
client_close(struct client *c)
{
	if (c->channel == NULL)
		return;
	grpc_channel_destroy(c->channel);
	grpc_completion_queue_shutdown(c->cq);
	while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		   .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(c->cq);
	grpc_shutdown();
	c->channel = NULL;
}
