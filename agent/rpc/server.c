/*
 * server.c: gRPC core plumbing. Methods live in handlers.c.
 *
 * Every call is one struct rpc_call and the completion-queue tag is that
 * struct. Its life: requested (posted before any client calls), received
 * (the handler runs and the reply batch starts; a fresh request for the same
 * method is posted), replied (freed). Unknown methods are caught by a generic
 * request and answered UNIMPLEMENTED at once.
 */
#include "rpc_internal.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "platform.h"
#include "query.h"

#define REQUESTS_PER_METHOD 4 /* calls of one method that can start at once */

struct rpc_call {
	struct rpc_tag tag; /* {RPC_TAG_CALL, this} */
	struct rpc_server *srv;
	const struct rpc_method *m; /* NULL: the generic (unknown method) request */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details;
	grpc_byte_buffer *payload;
	grpc_byte_buffer *reply;
	grpc_slice status_details;
	int cancelled;
	int replied;
};

static int shutdown_tag; /* its address is the tag */

static void
post_request(struct rpc_server *srv, const struct rpc_method *m)
{
	struct rpc_call *c = calloc(1, sizeof(*c));
	grpc_call_error e;

	if (c == NULL) {
		log_warnx("rpc: out of memory posting a request");
		return;
	}
	c->tag = (struct rpc_tag){RPC_TAG_CALL, c};
	c->srv = srv;
	c->m = m;
	grpc_metadata_array_init(&c->md);
	if (m != NULL) {
		grpc_completion_queue *cq = m->fast ? srv->cq : srv->slow_cq;

		e = grpc_server_request_registered_call(srv->server, srv->handles[m - rpc_methods],
		    &c->call, &c->deadline, &c->md, &c->payload, cq, cq, &c->tag);
	} else {
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(
		    srv->server, &c->call, &c->details, &c->md, srv->cq, srv->cq, c);
	}
	if (e != GRPC_CALL_OK) {
		log_warnx("rpc: cannot post a request: error %d", (int)e);
		grpc_metadata_array_destroy(&c->md);
		free(c);
	}
}

static void
call_free(struct rpc_call *c)
{
	if (c->call != NULL)
		grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->md);
	if (c->m == NULL)
		grpc_call_details_destroy(&c->details);
	if (c->payload != NULL)
		grpc_byte_buffer_destroy(c->payload);
	if (c->reply != NULL)
		grpc_byte_buffer_destroy(c->reply);
	grpc_slice_unref(c->status_details);
	free(c);
}

grpc_byte_buffer *
rpc_pack(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice slice = grpc_slice_malloc(len);
	grpc_byte_buffer *bb;

	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
	bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

/* The request's bytes decoded, or NULL when they are not that message. */
static ProtobufCMessage *
unpack_request(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *payload)
{
	grpc_byte_buffer_reader reader;
	grpc_slice slice;
	ProtobufCMessage *msg;

	if (payload == NULL)
		return NULL;
	if (!grpc_byte_buffer_reader_init(&reader, payload))
		return NULL;
	slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	msg = protobuf_c_message_unpack(
	    d, NULL, GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
	grpc_slice_unref(slice);
	return msg;
}

static void
reply(struct rpc_call *c, grpc_status_code status, const char *msg)
{
	grpc_op ops[4];
	size_t n = 0;
	grpc_call_error e;

	memset(ops, 0, sizeof(ops));
	ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
	n++;
	if (status == GRPC_STATUS_OK && c->reply != NULL) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->reply;
		n++;
	}
	c->status_details = grpc_slice_from_copied_string(msg != NULL ? msg : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = status;
	ops[n].data.send_status_from_server.status_details = &c->status_details;
	n++;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
	n++;
	c->replied = 1;
	if ((e = grpc_call_start_batch(c->call, ops, n, &c->tag, NULL)) != GRPC_CALL_OK) {
		log_warnx("rpc: cannot reply: error %d", (int)e);
		call_free(c);
	}
}

/* The request's bytes, flattened, into *out (NULL when there are none). */
static int
payload_bytes(grpc_byte_buffer *payload, grpc_slice *out)
{
	grpc_byte_buffer_reader reader;

	if (payload == NULL || !grpc_byte_buffer_reader_init(&reader, payload))
		return -1;
	*out = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	return 0;
}

static void
dispatch(struct rpc_call *c, struct query *q)
{
	struct rpc_server *srv = c->srv;
	const struct rpc_method *m = c->m;
	struct rpc_ctx cx = {.core = srv->core, .q = q};
	char who[CONFIG_IDENTITY_MAX + 32];
	enum rpc_role role;
	grpc_status_code st;
	grpc_slice bytes;

	if (m == NULL) {
		char *method = grpc_slice_to_c_string(c->details.method);

		snprintf(cx.msg, sizeof(cx.msg), "unknown method %s", method);
		gpr_free(method);
		reply(c, GRPC_STATUS_UNIMPLEMENTED, cx.msg);
		return;
	}
	pthread_mutex_lock(&srv->roles_lock);
	role = rpc_role_of(srv->cfg, c->call, who, sizeof(who));
	pthread_mutex_unlock(&srv->roles_lock);
	cx.caller = who;
	if (m->handle == NULL) { /* the stream: role and request checked here */
		ProtobufCMessage *req = unpack_request(m->input, c->payload);

		if (role < m->needs) {
			snprintf(cx.msg, sizeof(cx.msg),
			    role == RPC_ROLE_NONE ? "%s has no role on this agent"
						  : "%s may not call %s",
			    who, m->path);
			st = GRPC_STATUS_PERMISSION_DENIED;
		} else if (req == NULL) {
			snprintf(
			    cx.msg, sizeof(cx.msg), "malformed request: not a %s", m->input->name);
			st = GRPC_STATUS_INVALID_ARGUMENT;
		} else {
			st = watch_begin(srv, c->call, req, cx.msg, sizeof(cx.msg));
		}
		if (req != NULL)
			protobuf_c_message_free_unpacked(req, NULL);
		if (st == GRPC_STATUS_OK) {
			c->call = NULL; /* the stream owns it now */
			call_free(c);
			return;
		}
		reply(c, st, cx.msg);
		return;
	}
	if (payload_bytes(c->payload, &bytes) != 0) {
		reply(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed request: no message");
		return;
	}
	st = rpc_call(&cx, m, role, GRPC_SLICE_START_PTR(bytes), GRPC_SLICE_LENGTH(bytes));
	grpc_slice_unref(bytes);
	if (st == GRPC_STATUS_OK) {
		grpc_slice out =
		    grpc_slice_from_copied_buffer((const char *)cx.reply, cx.reply_len);

		c->reply = grpc_raw_byte_buffer_create(&out, 1);
		grpc_slice_unref(out);
	}
	free(cx.reply);
	reply(c, st, cx.msg);
}

/* A thread serving one queue: the fast one, or one of the slow ones. */
struct cq_thread {
	struct rpc_server *srv;
	grpc_completion_queue *cq;
	struct query *q; /* this thread's reader */
	const char *name;
};

static void *
cq_main(void *arg)
{
	struct cq_thread *th = arg;
	struct rpc_server *srv = th->srv;

	platform_thread_name(th->name);
	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(th->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		struct rpc_tag *t;
		struct rpc_call *c;

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &shutdown_tag) { /* the server is down: so are both queues */
			grpc_completion_queue_shutdown(srv->cq);
			grpc_completion_queue_shutdown(srv->slow_cq);
			continue;
		}
		t = ev.tag;
		if (t->kind != RPC_TAG_CALL) {
			watch_on_tag(srv, t, ev.success);
			continue;
		}
		c = t->arg;
		if (c->replied || !ev.success) {
			call_free(c);
			continue;
		}
		/* Re-arm first, so this method never runs out of posted requests. */
		if (!srv->stopping)
			post_request(srv, c->m);
		dispatch(c, th->q);
	}
	free(th);
	return NULL;
}

static int
start_thread(struct rpc_server *srv, grpc_completion_queue *cq, struct query *q, const char *name,
    pthread_t *out)
{
	struct cq_thread *th = malloc(sizeof(*th));

	if (th == NULL)
		return -1;
	*th = (struct cq_thread){srv, cq, q, name};
	if (pthread_create(out, NULL, cq_main, th) != 0) {
		free(th);
		return -1;
	}
	return 0;
}

/* Read a whole PEM file (small: certificates and keys). Returns NULL with err set. */
static char *
read_pem(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, err_str(errno));
		return NULL;
	}
	if ((buf = malloc(RPC_MAX_PEM_BYTES + 1)) != NULL) {
		n = fread(buf, 1, RPC_MAX_PEM_BYTES + 1, f);
		if (n > RPC_MAX_PEM_BYTES || n == 0 ||
		    strstr((buf[n] = '\0', buf), "-----BEGIN") == NULL) {
			snprintf(err, errlen, "%s: not a PEM file (or larger than %d bytes)", path,
			    RPC_MAX_PEM_BYTES);
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/*
 * The remote listener's certificate, key and client CA, read from their
 * files: at start, and at the first handshake after each reload
 * (rpc_server_reload_certs), so that they rotate without dropping a
 * connection. gRPC asks before each handshake; the files are read only when
 * the generation moved.
 */
static grpc_ssl_server_certificate_config *
read_certs(const struct config *cfg, char *err, size_t errlen)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_ssl_pem_key_cert_pair pair;
	grpc_ssl_server_certificate_config *c = NULL;

	if ((ca = read_pem(cfg->tls_client_ca, err, errlen)) != NULL &&
	    (cert = read_pem(cfg->tls_cert, err, errlen)) != NULL &&
	    (key = read_pem(cfg->tls_key, err, errlen)) != NULL) {
		pair.private_key = key;
		pair.cert_chain = cert;
		c = grpc_ssl_server_certificate_config_create(ca, &pair, 1);
	}
	free(ca);
	free(cert);
	if (key != NULL) {
		platform_wipe(key, strlen(key));
		free(key);
	}
	return c;
}

static grpc_ssl_certificate_config_reload_status
fetch_certs(void *arg, grpc_ssl_server_certificate_config **config)
{
	struct rpc_server *srv = arg;
	unsigned gen = atomic_load(&srv->cert_gen);
	char err[512];

	if (gen == srv->cert_gen_loaded)
		return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
	if ((*config = read_certs(srv->cfg, err, sizeof(err))) == NULL) {
		log_warnx("rpc: the remote listener keeps its certificates: %s", err);
		srv->cert_gen_loaded = gen; /* not again until the next reload */
		return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
	}
	if (srv->cert_gen_loaded != 0)
		log_info("rpc: the remote listener's certificates were read again");
	srv->cert_gen_loaded = gen;
	return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

void
rpc_server_set_roles(struct rpc_server *srv, struct config *running, const struct config *next)
{
	if (srv != NULL)
		pthread_mutex_lock(&srv->roles_lock);
	memcpy(running->admins, next->admins, sizeof(running->admins));
	running->n_admins = next->n_admins;
	memcpy(running->readers, next->readers, sizeof(running->readers));
	running->n_readers = next->n_readers;
	if (srv != NULL)
		pthread_mutex_unlock(&srv->roles_lock);
}

int
rpc_server_reload_certs(struct rpc_server *srv, char *err, size_t errlen)
{
	grpc_ssl_server_certificate_config *c;

	if (srv == NULL || srv->remote_creds == NULL)
		return 0;
	/* Checked now, so that a reload with a bad file says so at once. */
	if ((c = read_certs(srv->cfg, err, errlen)) == NULL)
		return -1;
	grpc_ssl_server_certificate_config_destroy(c);
	atomic_fetch_add(&srv->cert_gen, 1);
	return 0;
}

/*
 * The remote console listener: TLS, client certificate required and
 * verified against tls_client_ca. There is no insecure variant.
 */
static int
listen_remote(struct rpc_server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	grpc_ssl_server_certificate_config *c;

	/* Read once here: a bad file is a start-up error, not a failed handshake. */
	if ((c = read_certs(cfg, err, errlen)) == NULL)
		return -1;
	grpc_ssl_server_certificate_config_destroy(c);
	atomic_store(&srv->cert_gen, 1);
	srv->remote_creds = grpc_ssl_server_credentials_create_with_options(
	    grpc_ssl_server_credentials_create_options_using_config_fetcher(
		GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, fetch_certs, srv));
	if (srv->remote_creds == NULL) {
		snprintf(err, errlen, "cannot use the TLS certificate, key or CA");
		return -1;
	}
	if (grpc_server_add_http2_port(srv->server, cfg->remote_listen, srv->remote_creds) == 0) {
		snprintf(err, errlen, "cannot listen on %s (address in use or not local?)",
		    cfg->remote_listen);
		return -1;
	}
	return 0;
}

static grpc_arg
int_arg(const char *key, int value)
{
	grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = (char *)key};

	a.value.integer = value;
	return a;
}

int
rpc_server_start(struct rpc_server **out, struct rpc_core *core, char *err, size_t errlen)
{
	const struct rpc_deps *deps = &core->deps;
	struct rpc_server *srv = calloc(1, sizeof(*srv));
	grpc_arg args[8];
	grpc_channel_args chargs = {0, args};
	grpc_resource_quota *quota;

	*out = NULL;
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->cfg = deps->cfg;
	srv->core = core;
	pthread_mutex_init(&srv->roles_lock, NULL);
	if (query_open(deps->cfg->db_path, &srv->q, err, errlen) != 0 ||
	    rpc_local_open(srv, err, errlen) != 0)
		goto fail;
	for (int i = 0; i < RPC_SLOW_THREADS; i++)
		if (query_open(deps->cfg->db_path, &srv->slow_q[i], err, errlen) != 0)
			goto fail;

	grpc_init();
	srv->grpc_inited = 1;
	/* Requests are small: cap what a peer can make us read. */
	args[chargs.num_args++] =
	    int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, RPC_MAX_REQUEST_BYTES);
	args[chargs.num_args++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, RPC_MAX_REPLY_BYTES);
	/*
	 * A peer that connects and stalls (no TLS, half a handshake) is dropped
	 * after RPC_HANDSHAKE_MS, not gRPC's 120 s; one that stays idle after
	 * it, after RPC_IDLE_MS. All of the API's buffers come out of one quota.
	 * With the kernel's cap on the remote port (nft.c) this bounds what
	 * unauthenticated peers can hold.
	 */
	args[chargs.num_args++] = int_arg(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, RPC_HANDSHAKE_MS);
	args[chargs.num_args++] = int_arg(GRPC_ARG_MAX_CONNECTION_IDLE_MS, RPC_IDLE_MS);
	quota = grpc_resource_quota_create("redirect-agent api");
	grpc_resource_quota_resize(quota, RPC_MEMORY_QUOTA);
	args[chargs.num_args].type = GRPC_ARG_POINTER;
	args[chargs.num_args].key = (char *)GRPC_ARG_RESOURCE_QUOTA;
	args[chargs.num_args].value.pointer.p = quota;
	args[chargs.num_args++].value.pointer.vtable = grpc_resource_quota_arg_vtable();
	srv->server = grpc_server_create(&chargs, NULL);
	grpc_resource_quota_unref(quota); /* the server holds its own reference */
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	srv->slow_cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
	grpc_server_register_completion_queue(srv->server, srv->slow_cq, NULL);
	for (size_t i = 0; i < rpc_n_methods; i++)
		srv->handles[i] = grpc_server_register_method(srv->server, rpc_methods[i].path,
		    NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	srv->local_creds = grpc_insecure_server_credentials_create();
	if (rpc_local_attach(srv, err, errlen) != 0 || watch_start(srv, err, errlen) != 0) {
		grpc_server_start(srv->server); /* shutdown expects a started server */
		goto fail;
	}
	if (srv->cfg->remote_listen[0] != '\0' && listen_remote(srv, err, errlen) != 0) {
		grpc_server_start(srv->server); /* shutdown expects a started server */
		goto fail;
	}
	grpc_server_start(srv->server);
	for (size_t i = 0; i < rpc_n_methods; i++)
		for (int k = 0; k < REQUESTS_PER_METHOD; k++)
			post_request(srv, &rpc_methods[i]);
	for (int k = 0; k < REQUESTS_PER_METHOD; k++)
		post_request(srv, NULL);

	if (start_thread(srv, srv->cq, srv->q, "ra-rpc", &srv->cq_thread) != 0) {
		snprintf(err, errlen, "cannot start the RPC thread");
		goto fail;
	}
	srv->cq_running = 1;
	for (int i = 0; i < RPC_SLOW_THREADS; i++) {
		if (start_thread(srv, srv->slow_cq, srv->slow_q[i], "ra-rpc-db",
			&srv->slow_threads[i]) != 0) {
			snprintf(err, errlen, "cannot start the RPC threads");
			goto fail;
		}
		srv->n_slow_running++;
	}
	if (rpc_local_serve(srv, err, errlen) != 0)
		goto fail;
	*out = srv;
	return 0;
fail:
	rpc_server_stop(srv);
	return -1;
}

/* Take every event left on a queue that was shut down (calls not served are freed). */
static void
drain(grpc_completion_queue *cq)
{
	grpc_event ev;

	while (
	    (ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)).type !=
	    GRPC_QUEUE_SHUTDOWN) {
		struct rpc_tag *t = ev.tag;

		if (ev.type == GRPC_OP_COMPLETE && t != NULL &&
		    (void *)t != (void *)&shutdown_tag && t->kind == RPC_TAG_CALL)
			call_free(t->arg);
	}
}

void
rpc_server_stop(struct rpc_server *srv)
{
	if (srv == NULL)
		return;
	rpc_local_close(srv); /* no new local callers from here */
	if (srv->server != NULL) {
		srv->stopping = 1;
		watch_stop_begin(srv);
		grpc_server_shutdown_and_notify(srv->server, srv->cq, &shutdown_tag);
		grpc_server_cancel_all_calls(srv->server);
		if (srv->cq_running) {
			pthread_join(srv->cq_thread, NULL); /* it shuts both queues down */
		} else {
			/* Nothing serves the queues: take the shutdown tag here. */
			while (grpc_completion_queue_next(
				   srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
				   .tag != &shutdown_tag)
				;
			grpc_completion_queue_shutdown(srv->cq);
			grpc_completion_queue_shutdown(srv->slow_cq);
			drain(srv->cq);
		}
		for (int i = 0; i < srv->n_slow_running; i++)
			pthread_join(srv->slow_threads[i], NULL);
		if (srv->n_slow_running == 0)
			drain(srv->slow_cq);
		watch_stop_end(srv); /* every tag is in: free the watchers, join the thread */
		grpc_server_destroy(srv->server);
		grpc_completion_queue_destroy(srv->cq);
		grpc_completion_queue_destroy(srv->slow_cq);
		grpc_server_credentials_release(srv->local_creds);
		if (srv->remote_creds != NULL)
			grpc_server_credentials_release(srv->remote_creds);
	}
	if (srv->grpc_inited)
		grpc_shutdown();
	query_close(srv->q);
	for (int i = 0; i < RPC_SLOW_THREADS; i++)
		query_close(srv->slow_q[i]);
	pthread_mutex_destroy(&srv->roles_lock);
	free(srv);
}
