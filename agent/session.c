#include "session.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "owner.h"
#include "policy.h"
#include "redirect.h"
#include "sniff.h"
#include "store.h"
#include "worker.h"

enum session_state {
	SESSION_ACCEPTED,   /* examined, not yet connecting */
	SESSION_PEEKING,    /* reading the client's first bytes for its server name */
	SESSION_CONNECTING, /* upstream connect in flight */
	SESSION_HANDSHAKE,  /* forward: waiting for the CONNECT proxy's answer */
	SESSION_RELAYING,   /* bytes flow both ways (or one, after a half-close) */
	SESSION_CLOSING,    /* handles closing; freed by the last close callback */
};

struct half {
	uv_tcp_t tcp;
	struct session *s;
	struct half *peer;
	uv_write_t wreq;   /* the one write of this side's bytes to the peer */
	char *pending;     /* buffer of that write, NULL when none */
	uint64_t bytes;    /* read from this side */
	unsigned open : 1; /* handle initialised: must be closed */
	unsigned eof : 1;  /* this side sent FIN */
	unsigned shut : 1; /* we sent FIN to this side */
};

struct session {
	struct session *prev, *next; /* the worker's list */
	struct worker *w;
	enum session_state state;
	struct half client, upstream;
	uv_connect_t creq;
	uv_timer_t timer; /* connect timeout, then idle timeout */
	unsigned timer_open : 1;
	unsigned handles; /* handles not yet closed */
	uint64_t last_activity_ms;
	uint64_t connect_start_ns;
	enum redirect_state rstate;
	unsigned forward : 1;
	uint32_t pass_on_len;
	void *pass_on;       /* redirect_info.pass_on, for the upstream socket */
	char *exe;           /* the client's executable; NULL: unknown */
	struct prelude *pre; /* NULL unless peeking or forwarding */
	struct conn_record rec;
};

/*
 * What a session needs only on its way to relaying: the first bytes read
 * for the server name, the CONNECT handshake. Allocated when needed and
 * freed when relaying starts, so that an idle connection does not carry it.
 */
struct prelude {
	char *peek; /* the client's first bytes (pool buffer), relayed once connected */
	size_t peek_len;
	char *answer; /* forward: the proxy's answer so far (pool buffer) */
	size_t answer_len;
	uv_write_t hreq; /* forward: the CONNECT request */
	char request[300];
	unsigned writing : 1;                 /* hreq in flight: libuv still holds this struct */
	struct sockaddr_storage proxy;        /* forward: where to connect instead */
	char server_name[SNIFF_NAME_MAX + 1]; /* "" unless read from the first bytes */
};

static struct prelude *
prelude(struct session *s)
{
	if (s->pre == NULL)
		s->pre = calloc(1, sizeof(*s->pre));
	return s->pre;
}

/* Give back the buffers, and the struct unless a write still uses it (then
 * on_request_written, or the session's own end, frees it). */
static void
prelude_free(struct session *s)
{
	struct prelude *p = s->pre;

	if (p == NULL)
		return;
	if (p->peek != NULL)
		bufpool_put(&s->w->pool, p->peek);
	if (p->answer != NULL)
		bufpool_put(&s->w->pool, p->answer);
	p->peek = p->answer = NULL;
	if (p->writing)
		return;
	free(p);
	s->pre = NULL;
}

const char *
session_close_reason_name(enum close_reason r)
{
	switch (r) {
	case CLOSE_COMPLETED:
		return "completed";
	case CLOSE_CLIENT_ERROR:
		return "client error";
	case CLOSE_UPSTREAM_ERROR:
		return "upstream error";
	case CLOSE_CONNECT_FAILED:
		return "upstream connect failed";
	case CLOSE_CONNECT_TIMEOUT:
		return "upstream connect timeout";
	case CLOSE_IDLE_TIMEOUT:
		return "idle timeout";
	case CLOSE_NOT_REDIRECTED:
		return "not redirected: direct connection to the agent's listener";
	case CLOSE_LOOP:
		return "loop: original destination is the agent's own listener";
	case CLOSE_LOOP_REPEATED:
		return "loop: came back again although it left marked to escape every redirect";
	case CLOSE_BLOCKED:
		return "blocked by policy";
	case CLOSE_PROXY_REFUSED:
		return "forward proxy refused the tunnel";
	case CLOSE_PROXY_FAILED:
		return "forward proxy failed before the tunnel was up";
	case CLOSE_NO_ORIGINAL_DST:
		return "original destination unknown";
	case CLOSE_LOCAL_ERROR:
		return "local resource error";
	case CLOSE_SHUTDOWN:
		return "agent shutdown";
	}
	return "unknown";
}

static void
session_log(const struct session *s, int failed)
{
	char c[ADDR_STRLEN], d[ADDR_STRLEN];
	const struct conn_record *r = &s->rec;
	const char *fmt = "session %llu: %s:%u -> %s:%u %s (%s%s%s), up %llu down %llu bytes, "
			  "%lld ms";
	long long ms = (long long)(r->closed_at_us - r->opened_at_us) / 1000;

	endpoint_format_addr(&r->client, c, sizeof(c));
	endpoint_format_addr(&r->orig_dst, d, sizeof(d));
	if (failed)
		log_info(fmt, (unsigned long long)r->id, c, (unsigned)r->client.port, d,
		    (unsigned)r->orig_dst.port, conn_state_name(r->state), r->close_reason,
		    r->error != NULL ? ": " : "", r->error != NULL ? r->error : "",
		    (unsigned long long)r->bytes_up, (unsigned long long)r->bytes_down, ms);
	else if (log_get_level() >= LOG_LEVEL_DEBUG)
		log_debug(fmt, (unsigned long long)r->id, c, (unsigned)r->client.port, d,
		    (unsigned)r->orig_dst.port, conn_state_name(r->state), r->close_reason,
		    r->error != NULL ? ": " : "", r->error != NULL ? r->error : "",
		    (unsigned long long)r->bytes_up, (unsigned long long)r->bytes_down, ms);
}

/*
 * The detail of the next event: what the session learnt since its last one
 * (store.h). NULL when out of memory: those fields then stay unrecorded.
 */
static struct conn_detail *
detail(struct session *s)
{
	if (s->rec.detail == NULL)
		s->rec.detail = conn_detail_new();
	return s->rec.detail;
}

/* Queue the record; the event takes the detail with it. */
static void
submit(struct session *s)
{
	store_submit(s->w->store, &s->rec);
	s->rec.detail = NULL;
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct session *s = h->data;
	struct worker *w = s->w;

	if (--s->handles > 0)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s->exe);
	free(s->pre);
	free(s->pass_on);
	conn_detail_free(s->rec.detail); /* never submitted: an event always takes it */
	free(s);
	worker_session_gone(w);
}

static void
close_half(struct half *h, int reset)
{
	if (!h->open)
		return;
	h->open = 0;
	/* A reset tells the peer the connection did not end cleanly; libuv
	 * refuses it on a handle already shutting down, then plain close. */
	if (!reset || uv_tcp_close_reset(&h->tcp, on_handle_closed) != 0)
		uv_close((uv_handle_t *)&h->tcp, on_handle_closed);
}

static int
refused_reason(enum close_reason r)
{
	return r == CLOSE_NOT_REDIRECTED || r == CLOSE_LOOP || r == CLOSE_LOOP_REPEATED;
}

void
session_close(struct session *s, enum close_reason reason, int err)
{
	struct worker *w = s->w;
	enum session_state prev = s->state;
	int failed = prev != SESSION_RELAYING;

	if (prev == SESSION_CLOSING)
		return;
	s->state = SESSION_CLOSING;

	s->rec.closed_at_us = clock_wall_us();
	redirect_note_upstream(&s->rec.upstream_local, -1);
	s->rec.bytes_up = s->client.bytes;
	s->rec.bytes_down = s->upstream.bytes;
	s->rec.state = failed ? CONN_FAILED : CONN_CLOSED;
	s->rec.close_reason = session_close_reason_name(reason);
	s->rec.error = err != 0 ? uv_strerror(err) : NULL;
	if (refused_reason(reason))
		s->rec.verdict = "refuse";
	submit(s);
	session_log(s, failed || reason != CLOSE_COMPLETED);

	stat_sub(&w->stats.active, 1);
	stat_add(&w->stats.bytes_up, s->rec.bytes_up);
	stat_add(&w->stats.bytes_down, s->rec.bytes_down);
	if (refused_reason(reason))
		stat_add(&w->stats.refused, 1);
	else if (reason == CLOSE_BLOCKED)
		stat_add(&w->stats.blocked, 1);
	else if (failed)
		stat_add(&w->stats.failed, 1);

	/* Not freed yet: a write of the CONNECT request may still hold it. */
	if (s->pre != NULL) {
		if (s->pre->peek != NULL)
			bufpool_put(&w->pool, s->pre->peek);
		if (s->pre->answer != NULL)
			bufpool_put(&w->pool, s->pre->answer);
		s->pre->peek = s->pre->answer = NULL;
	}
	if (s->timer_open) {
		s->timer_open = 0;
		uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	}
	close_half(&s->client, reason != CLOSE_COMPLETED);
	close_half(&s->upstream, reason != CLOSE_COMPLETED);
}

void
session_close_all(struct worker *w)
{
	struct session *s = w->sessions;

	/* session_close never frees synchronously, so the list stays walkable. */
	for (; s != NULL; s = s->next)
		session_close(s, CLOSE_SHUTDOWN, 0);
}

/* ---- relay ---- */

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static struct half *
half_of(uv_handle_t *h)
{
	return (struct half *)((char *)h - offsetof(struct half, tcp));
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct session *s = half_of(h)->s;
	char *b = bufpool_get(&s->w->pool);

	(void)suggested;
	*buf = uv_buf_init(b, b != NULL ? BUFPOOL_BUF_SIZE : 0); /* 0: libuv reports UV_ENOBUFS */
}

static enum close_reason
error_reason(const struct half *h)
{
	return h == &h->s->client ? CLOSE_CLIENT_ERROR : CLOSE_UPSTREAM_ERROR;
}

/*
 * h sent FIN and all its bytes reached the peer: pass the FIN on. Nothing is
 * queued on the peer's stream (one write per direction, and it completed), so
 * shutdown(2) can run now; uv_shutdown() would first wait for the socket to
 * be writable, an epoll round trip per direction of every connection. When
 * the peer's FIN has already been passed to h, this is the last step of the
 * session: close() sends the FIN, and the session is complete.
 */
static void
forward_eof(struct half *h)
{
	struct half *p = h->peer;
	uv_os_fd_t fd;
	int r;

	if (p->eof && h->shut) {
		session_close(h->s, CLOSE_COMPLETED, 0);
		return;
	}
	if ((r = uv_fileno((uv_handle_t *)&p->tcp, &fd)) == 0 && shutdown((sock_t)fd, SHUT_WR) != 0)
		r = -sock_errno();
	if (r != 0 && r != UV_ENOTCONN) {
		session_close(h->s, error_reason(p), r);
		return;
	}
	p->shut = 1;
}

static void
on_write(uv_write_t *req, int status)
{
	struct half *h = req->data;
	struct session *s = h->s;

	bufpool_put(&s->w->pool, h->pending);
	h->pending = NULL;
	if (status == UV_ECANCELED || s->state == SESSION_CLOSING)
		return;
	if (status < 0) {
		session_close(s, error_reason(h->peer), status);
		return;
	}
	if (h->eof)
		forward_eof(h);
	else
		uv_read_start((uv_stream_t *)&h->tcp, on_alloc, on_read);
}

/*
 * Pass len bytes read from h to its peer. Most writes complete at once; when
 * the peer's socket buffer is full, the rest waits in one queued write and h
 * stops reading until it drains: one buffer per direction, at most.
 */
static void
relay(struct half *h, char *base, size_t len)
{
	struct half *p = h->peer;
	struct session *s = h->s;
	uv_buf_t b = uv_buf_init(base, (unsigned)len);
	int n = uv_try_write((uv_stream_t *)&p->tcp, &b, 1);
	int r;

	if (n == (int)len) {
		bufpool_put(&s->w->pool, base);
		return;
	}
	if (n < 0 && n != UV_EAGAIN) {
		bufpool_put(&s->w->pool, base);
		session_close(s, error_reason(p), n);
		return;
	}
	if (n < 0)
		n = 0;
	h->pending = base;
	b = uv_buf_init(base + n, (unsigned)(len - (size_t)n));
	uv_read_stop((uv_stream_t *)&h->tcp);
	h->wreq.data = h;
	if ((r = uv_write(&h->wreq, (uv_stream_t *)&p->tcp, &b, 1, on_write)) != 0) {
		bufpool_put(&s->w->pool, base);
		h->pending = NULL;
		session_close(s, error_reason(p), r);
	}
}

static void
on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct half *h = half_of((uv_handle_t *)stream);
	struct session *s = h->s;

	if (nread > 0) {
		h->bytes += (uint64_t)nread;
		s->last_activity_ms = uv_now(&s->w->loop);
		relay(h, buf->base, (size_t)nread);
		return;
	}
	bufpool_put(&s->w->pool, buf->base);
	if (nread == 0)
		return;
	if (nread == UV_EOF) {
		h->eof = 1;
		uv_read_stop(stream);
		if (h->pending == NULL)
			forward_eof(h);
		return;
	}
	session_close(s, error_reason(h), (int)nread);
}

/* ---- timers ---- */

static void end_peek(struct session *s);

static void
on_timer(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t idle_ms = (uint64_t)s->w->cfg->idle_timeout_s * 1000;
	uint64_t quiet;

	if (s->state == SESSION_PEEKING) {
		end_peek(s);
		return;
	}
	if (s->state == SESSION_CONNECTING || s->state == SESSION_HANDSHAKE) {
		session_close(s, CLOSE_CONNECT_TIMEOUT, UV_ETIMEDOUT);
		return;
	}
	if (s->state != SESSION_RELAYING || idle_ms == 0)
		return;
	quiet = uv_now(&s->w->loop) - s->last_activity_ms;
	if (quiet >= idle_ms)
		session_close(s, CLOSE_IDLE_TIMEOUT, 0);
	else
		uv_timer_start(t, on_timer, idle_ms - quiet, 0);
}

/* ---- connect ---- */

/* Start reading a side, unless its bytes still wait to reach the peer. */
static void
resume(struct half *h)
{
	if (h->pending != NULL)
		return; /* on_write resumes it */
	if (h->eof)
		forward_eof(h);
	else
		uv_read_start((uv_stream_t *)&h->tcp, on_alloc, on_read);
}

/* Both sides connected (through the proxy, for forward): relay. */
static void
start_relay(struct session *s)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	uint64_t idle_ms = (uint64_t)s->w->cfg->idle_timeout_s * 1000;

	s->state = SESSION_RELAYING;
	s->rec.state = CONN_RELAYING;
	s->rec.connect_us = (int64_t)((uv_hrtime() - s->connect_start_ns) / 1000);
	if (uv_tcp_getsockname(&s->upstream.tcp, (struct sockaddr *)&ss, &len) == 0 &&
	    endpoint_from_sockaddr(&s->rec.upstream_local, (struct sockaddr *)&ss) == 0)
		redirect_note_upstream(&s->rec.upstream_local, +1);
	submit(s);
	stat_add(&s->w->stats.relayed, 1);

	s->last_activity_ms = uv_now(&s->w->loop);
	if (idle_ms > 0)
		uv_timer_start(&s->timer, on_timer, idle_ms, 0);
	else
		uv_timer_stop(&s->timer);
	/* The bytes read for the server name go first, as they came. */
	if (s->pre != NULL && s->pre->peek != NULL) {
		char *b = s->pre->peek;
		size_t n = s->pre->peek_len;

		s->pre->peek = NULL;
		prelude_free(s);
		if (n > 0)
			relay(&s->client, b, n);
		else
			bufpool_put(&s->w->pool, b);
		if (s->state == SESSION_CLOSING)
			return;
	}
	prelude_free(s);
	resume(&s->client);
	if (s->state != SESSION_CLOSING)
		resume(&s->upstream);
}

/* ---- forward: the CONNECT handshake ---- */

#define ANSWER_MAX 8192 /* a proxy's answer head; more is not a proxy we know */

static void
on_answer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct prelude *p = half_of(h)->s->pre;

	(void)suggested;
	if (p->answer == NULL)
		p->answer = bufpool_get(&half_of(h)->s->w->pool);
	*buf = p->answer != NULL
		   ? uv_buf_init(p->answer + p->answer_len, (unsigned)(ANSWER_MAX - p->answer_len))
		   : uv_buf_init(NULL, 0);
}

/* The end of an HTTP head ("\r\n\r\n") in buf, or NULL. (memmem is not on Windows.) */
static char *
header_end(char *buf, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return buf + i;
	return NULL;
}

static void
on_answer(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = half_of((uv_handle_t *)stream)->s;
	struct prelude *p = s->pre;
	char *end;
	size_t head, rest;
	int code;

	(void)buf;
	if (nread == 0)
		return;
	if (nread < 0) {
		session_close(s, CLOSE_PROXY_FAILED, nread == UV_EOF ? 0 : (int)nread);
		return;
	}
	p->answer_len += (size_t)nread;
	end = header_end(p->answer, p->answer_len);
	if (end == NULL) {
		if (p->answer_len == ANSWER_MAX)
			session_close(s, CLOSE_PROXY_FAILED, UV_E2BIG);
		return;
	}
	uv_read_stop(stream);
	/* "HTTP/1.1 200 Connection established": any 2xx opens the tunnel. */
	if (sscanf(p->answer, "HTTP/1.%*1[01] %3d", &code) != 1 || code < 200 || code > 299) {
		session_close(s, CLOSE_PROXY_REFUSED, 0);
		return;
	}
	head = (size_t)(end + 4 - p->answer);
	rest = p->answer_len - head;
	if (rest > 0) { /* the destination spoke first: those bytes are the client's */
		char *b = p->answer;

		memmove(b, b + head, rest);
		p->answer = NULL;
		s->upstream.bytes += rest;
		start_relay(s);
		if (s->state != SESSION_CLOSING)
			relay(&s->upstream, b, rest);
		return;
	}
	start_relay(s);
}

static void
on_request_written(uv_write_t *req, int status)
{
	struct session *s = req->data;

	s->pre->writing = 0;
	if (status == UV_ECANCELED || s->state == SESSION_CLOSING)
		return;
	if (status < 0)
		session_close(s, CLOSE_PROXY_FAILED, status);
	else if (s->state == SESSION_RELAYING)
		prelude_free(s); /* the tunnel came up before this callback */
}

/* Ask the proxy for a tunnel to the original destination. */
static void
send_connect(struct session *s)
{
	char host[ADDR_STRLEN];
	const struct endpoint *d = &s->rec.orig_dst;
	struct prelude *p = s->pre;
	int n, r;
	uv_buf_t b;

	endpoint_format_addr(d, host, sizeof(host));
	n = snprintf(p->request, sizeof(p->request),
	    d->family == AF_INET6 ? "CONNECT [%s]:%u HTTP/1.1\r\nHost: [%s]:%u\r\n\r\n"
				  : "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n",
	    host, (unsigned)d->port, host, (unsigned)d->port);
	b = uv_buf_init(p->request, (unsigned)n);
	p->hreq.data = s;
	p->writing = 1;
	s->state = SESSION_HANDSHAKE;
	if ((r = uv_write(&p->hreq, (uv_stream_t *)&s->upstream.tcp, &b, 1, on_request_written)) !=
		0 ||
	    (r = uv_read_start((uv_stream_t *)&s->upstream.tcp, on_answer_alloc, on_answer)) != 0)
		session_close(s, CLOSE_PROXY_FAILED, r);
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct session *s = req->data;

	if (status == UV_ECANCELED || s->state == SESSION_CLOSING)
		return;
	if (status < 0) {
		session_close(s, CLOSE_CONNECT_FAILED, status);
		return;
	}
	if (s->forward)
		send_connect(s); /* the connect timer runs on through the handshake */
	else
		start_relay(s);
}

static void
half_init(struct session *s, struct half *h, struct half *peer)
{
	h->s = s;
	h->peer = peer;
	h->tcp.data = s;
	h->open = 1;
	s->handles++;
}

/* Open the upstream socket, marked before connect so no rule redirects it again. */
static void
session_connect(struct session *s)
{
	struct worker *w = s->w;
	struct sockaddr_storage ss;
	uv_os_fd_t fd;
	int r;

	if (s->forward)
		ss = s->pre->proxy;
	else if (endpoint_to_sockaddr(&s->rec.orig_dst, &ss) < 0) {
		session_close(s, CLOSE_NO_ORIGINAL_DST, UV_EAFNOSUPPORT);
		return;
	}
	/* With a domain, libuv makes the (non-blocking) socket now, so the mark
	 * can be set before connect. */
	if ((r = uv_tcp_init_ex(&w->loop, &s->upstream.tcp, ss.ss_family)) != 0) {
		session_close(s, CLOSE_LOCAL_ERROR, r);
		return;
	}
	half_init(s, &s->upstream, &s->client);
	if ((r = uv_fileno((uv_handle_t *)&s->upstream.tcp, &fd)) != 0 ||
	    (r = redirect_prepare_upstream((sock_t)fd, w->cfg, s->rec.records_mark, s->rstate,
		 s->pass_on, s->pass_on_len)) != 0) {
		session_close(s, CLOSE_LOCAL_ERROR, r);
		return;
	}
	uv_tcp_nodelay(&s->upstream.tcp, 1);
	s->creq.data = s;
	s->connect_start_ns = uv_hrtime();
	if ((r = uv_tcp_connect(&s->creq, &s->upstream.tcp, (struct sockaddr *)&ss, on_connect)) !=
	    0) {
		session_close(s, CLOSE_CONNECT_FAILED, r);
		return;
	}
	s->state = SESSION_CONNECTING;
	uv_timer_start(&s->timer, on_timer, w->cfg->connect_timeout_ms, 0);
}

static int
is_own_listener(const struct worker *w, const struct endpoint *dst, const struct endpoint *local)
{
	if (dst->port != w->cfg->listen_port)
		return 0;
	return endpoint_is_loopback(dst) ||
	       (dst->family == local->family && memcmp(dst->addr, local->addr, 16) == 0);
}

/* The policy's verdict, recorded on the row and counted per rule; then act on it. */
static void
decide(struct session *s)
{
	struct worker *w = s->w;
	struct policy *p = policy_acquire(w->policy, w->index);
	struct policy_input in = {&s->rec.orig_dst, s->rstate,
	    s->pre != NULL ? s->pre->server_name : NULL, s->rec.uid, s->exe};
	struct policy_verdict v = policy_evaluate(p, &in);
	const struct sockaddr_storage *proxy = policy_forward_to(p, v.rule);
	struct conn_detail *d;

	policy_count_hit(p, v.rule);
	if ((d = detail(s)) != NULL) {
		d->policy_version = policy_version(p);
		if (v.rule >= 0)
			d->rule_id = strdup(policy_rule_id(p, (size_t)v.rule));
	}
	if (proxy != NULL) {
		if (prelude(s) == NULL) {
			policy_release(w->policy, w->index);
			session_close(s, CLOSE_LOCAL_ERROR, UV_ENOMEM);
			return;
		}
		s->forward = 1;
		s->pre->proxy = *proxy;
	}
	policy_release(w->policy, w->index);
	s->rec.verdict = policy_action_name(v.action);
	if (v.action == POLICY_BLOCK) {
		session_close(s, CLOSE_BLOCKED, 0);
		return;
	}
	submit(s);
	session_connect(s);
}

/* The local user and program behind the client end (owner.h), bounded. */
static void
find_owner(struct session *s, int with_process)
{
	struct owner o;

	if (owner_lookup(s->w->owner, &s->rec.client, &s->rec.orig_dst, with_process, &o) != 0)
		return;
	s->rec.uid = o.uid;
	s->rec.pid = o.pid;
	if (o.exe[0] != '\0') {
		struct conn_detail *d = detail(s);

		s->exe = strdup(o.exe);
		if (d != NULL)
			d->exe = strdup(o.exe);
	}
}

/* ---- the server name: the client's first bytes, bounded in size and time ---- */

#define PEEK_MAX        16384 /* a ClientHello fits; a request head nearly always */
#define PEEK_TIMEOUT_MS 1000  /* a client that waits for the server to speak first */

static void
end_peek(struct session *s)
{
	enum sniff_result r;

	struct prelude *p = s->pre;

	uv_read_stop((uv_stream_t *)&s->client.tcp);
	uv_timer_stop(&s->timer);
	if (p->peek != NULL) {
		char name[SNIFF_NAME_MAX + 1];

		r = sniff_server_name((const uint8_t *)p->peek, p->peek_len, name, sizeof(name));
		if (r == SNIFF_FOUND) {
			struct conn_detail *d = detail(s);

			snprintf(p->server_name, sizeof(p->server_name), "%s", name);
			if (d != NULL)
				d->server_name = strdup(name);
		}
	}
	s->state = SESSION_ACCEPTED;
	decide(s);
}

static void
on_peek_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct session *s = half_of(h)->s;
	struct prelude *p = s->pre;

	(void)suggested;
	if (p->peek == NULL)
		p->peek = bufpool_get(&s->w->pool);
	*buf = p->peek != NULL
		   ? uv_buf_init(p->peek + p->peek_len, (unsigned)(PEEK_MAX - p->peek_len))
		   : uv_buf_init(NULL, 0);
}

static void
on_peek_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct half *h = half_of((uv_handle_t *)stream);
	struct session *s = h->s;
	char name[SNIFF_NAME_MAX + 1];

	(void)buf;
	if (nread == 0)
		return;
	if (nread == UV_EOF) { /* relayed after the bytes, as it came */
		h->eof = 1;
		end_peek(s);
		return;
	}
	if (nread < 0) {
		session_close(s, CLOSE_CLIENT_ERROR, (int)nread);
		return;
	}
	h->bytes += (uint64_t)nread;
	s->pre->peek_len += (size_t)nread;
	if (s->pre->peek_len == PEEK_MAX || sniff_server_name((const uint8_t *)s->pre->peek,
						s->pre->peek_len, name, sizeof(name)) != SNIFF_MORE)
		end_peek(s);
}

static void
start_peek(struct session *s)
{
	int r;

	if (prelude(s) == NULL) {
		session_close(s, CLOSE_LOCAL_ERROR, UV_ENOMEM);
		return;
	}
	s->state = SESSION_PEEKING;
	if ((r = uv_read_start((uv_stream_t *)&s->client.tcp, on_peek_alloc, on_peek_read)) != 0) {
		session_close(s, CLOSE_CLIENT_ERROR, r);
		return;
	}
	uv_timer_start(&s->timer, on_timer, PEEK_TIMEOUT_MS, 0);
}

void
session_accept(
    struct worker *w, sock_t fd, const struct sockaddr *peer, const struct endpoint *local)
{
	struct session *s = calloc(1, sizeof(*s));
	struct redirect_info ri; /* what the kernel says; the session keeps what it needs */
	struct conn_detail *d;
	int r;

	if (s == NULL) {
		log_warnx("out of memory: connection dropped");
		sock_close(fd);
		return;
	}
	s->w = w;
	s->state = SESSION_ACCEPTED;
	s->next = w->sessions;
	if (w->sessions != NULL)
		w->sessions->prev = s;
	w->sessions = s;
	w->n_sessions++;
	stat_add(&w->stats.accepted, 1);
	stat_add(&w->stats.active, 1);

	s->rec.id = store_next_id(w->store);
	s->rec.opened_at_us = clock_wall_us();
	s->rec.connect_us = -1;
	s->rec.uid = -1;
	s->rec.pid = -1;
	s->rec.verdict = "allow";
	s->rec.state = CONN_OPEN;
	s->rec.redirect_state = redirect_state_name(REDIRECT_NONE);

	uv_timer_init(&w->loop, &s->timer);
	s->timer.data = s;
	s->timer_open = 1;
	s->handles++;
	uv_tcp_init(&w->loop, &s->client.tcp);
	half_init(s, &s->client, &s->upstream);
	if ((r = uv_tcp_open(&s->client.tcp, fd)) != 0) {
		sock_close(fd);
		session_close(s, CLOSE_LOCAL_ERROR, r);
		return;
	}
	/* TCP_NODELAY is inherited from the listener. */
	(void)endpoint_from_sockaddr(&s->rec.client, peer);

	r = redirect_query(fd, local, &s->rec.client, w->cfg, &ri);
	if (r == -ENOENT) {
		s->rec.orig_dst = ri.orig_dst; /* the listener itself */
		session_close(s, CLOSE_NOT_REDIRECTED, 0);
		return;
	}
	if (r != 0) {
		session_close(s, CLOSE_NO_ORIGINAL_DST, r);
		return;
	}
	s->rec.orig_dst = ri.orig_dst;
	s->rec.records_mark = ri.records_mark;
	s->rec.redirect_state = redirect_state_name(ri.state);
	s->rstate = ri.state;
	s->pass_on = ri.pass_on;
	s->pass_on_len = (uint32_t)ri.pass_on_len;
	if ((d = detail(s)) != NULL) {
		memcpy(d->records, ri.records, ri.records_len);
		d->records_len = ri.records_len;
		memcpy(d->context, ri.context, ri.context_len);
		d->context_len = ri.context_len;
	}
	if (ri.state == REDIRECT_BY_SELF)
		stat_add(&w->stats.by_self, 1);
	else if (ri.state == REDIRECT_PREVIOUSLY_BY_SELF)
		stat_add(&w->stats.previously_by_self, 1);
	if (is_own_listener(w, &ri.orig_dst, local)) {
		session_close(s, CLOSE_LOOP, 0);
		return;
	}
	/* A loop is relayed once, marked to escape; back again, it stops here. */
	if (ri.escape_failed && ri.state != REDIRECT_NONE && ri.state != REDIRECT_BY_OTHER) {
		session_close(s, CLOSE_LOOP_REPEATED, 0);
		return;
	}
	/* A loop was judged on its first pass: it goes straight through. */
	if (ri.state != REDIRECT_NONE && ri.state != REDIRECT_BY_OTHER) {
		submit(s);
		session_connect(s);
		return;
	}
	{
		struct policy *p = policy_acquire(w->policy, w->index);
		int peek = policy_needs_server_name(p);
		unsigned owner = policy_needs_owner(p);

		policy_release(w->policy, w->index);
		if (w->cfg->owner_lookup == OWNER_ALWAYS)
			owner = POLICY_NEEDS_UID | POLICY_NEEDS_EXE;
		if (owner != 0 && w->owner != NULL)
			find_owner(s, (owner & POLICY_NEEDS_EXE) != 0);
		if (peek) {
			submit(s); /* the row exists while we wait */
			start_peek(s);
			return;
		}
	}
	decide(s);
}
