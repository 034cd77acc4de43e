#include "session.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "evio.h"
#include "log.h"
#include "owner.h"
#include "policy.h"
#include "redirect.h"
#include "resolve.h"
#include "sniff.h"
#include "store.h"
#include "worker_internal.h"

enum session_state {
	SESSION_ACCEPTED,   /* examined, not yet connecting */
	SESSION_OWNER,      /* the client's owner is being looked up, off the loop */
	SESSION_PEEKING,    /* reading the client's first bytes for its server name */
	SESSION_RESOLVING,  /* forward: the proxy's name is being looked up */
	SESSION_CONNECTING, /* upstream connect in flight */
	SESSION_HANDSHAKE,  /* forward: waiting for the CONNECT proxy's answer */
	SESSION_RELAYING,   /* bytes flow both ways (or one, after a half-close) */
	SESSION_CLOSING,    /* sockets closed; freed once the timer's handle is */
};

/*
 * One side of the session: its socket, and the bytes read from it that its
 * peer has not taken yet. While those wait, this side is not read (one
 * buffer per direction, at most); `readable` remembers that it may have
 * more, since an edge is reported once (evio.h).
 */
struct half {
	struct evsock es;
	struct session *s;
	struct half *peer;
	char *pending; /* pool buffer of bytes read from this side, NULL when none wait */
	uint32_t pending_off, pending_len;
	uint64_t bytes;        /* read from this side */
	unsigned open : 1;     /* socket open: must be closed */
	unsigned readable : 1; /* may have bytes or its FIN to read: no short read since the edge */
	unsigned hup : 1;      /* its FIN has arrived: a short read reaches the end */
	unsigned eof : 1;      /* this side sent FIN, and every byte before it was read */
	unsigned shut : 1;     /* we sent FIN to this side */
};

struct session {
	struct session_link link;  /* on the worker's list */
	struct session_link final; /* on its list of parked final events */
	struct worker *w;
	enum session_state state;
	struct half client, upstream;
	uv_timer_t timer; /* connect timeout, then idle timeout */
	unsigned timer_open : 1;
	unsigned handles; /* the timer and open sockets not yet released */
	uint64_t last_activity_ms;
	uint64_t connect_start_ns;
	unsigned forward : 1;
	uint32_t pass_on_len;
	void *pass_on;        /* redirect_info.pass_on, for the upstream socket */
	char *exe;            /* the client's executable; NULL: unknown */
	struct prelude *pre;  /* NULL unless peeking or forwarding */
	unsigned counted : 1; /* in the worker's sessions per uid, as counted_uid */
	uint32_t counted_uid;
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
	char request[300];                /* forward: the CONNECT request */
	size_t request_len, request_sent; /* its length, and how much of it is written */
	struct sockaddr_storage proxy;    /* forward: where to connect instead */
	struct sniff_names names;         /* name "" unless read from the first bytes */
	struct resolve_req resolve;       /* forward: the proxy's name, being looked up */
	struct session *s;                /* for the lookup's callback */
	int resolving;                    /* the lookup is in flight: its callback frees */
};

static struct prelude *
prelude(struct session *s)
{
	if (s->pre == NULL && (s->pre = calloc(1, sizeof(*s->pre))) != NULL)
		s->pre->s = s;
	return s->pre;
}

static void
prelude_free(struct session *s)
{
	struct prelude *p = s->pre;

	if (p == NULL || p->resolving)
		return; /* a lookup in flight holds it: its callback comes back for it */
	bufpool_put(&s->w->pool, p->peek);
	bufpool_put(&s->w->pool, p->answer);
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
	case CLOSE_UID_LIMIT:
		return "refused: its user holds max_sessions_per_uid sessions";
	case CLOSE_RESERVED:
		return "refused: the last sessions are kept for system users";
	case CLOSE_NOT_REDIRECTED:
		return "not redirected: direct connection to the agent's listener";
	case CLOSE_LOOP:
		return "loop: original destination is the agent's own listener";
	case CLOSE_LOOP_REPEATED:
		return "loop: came back again although it left marked to escape every redirect";
	case CLOSE_BLOCKED:
		return "blocked by policy";
	case CLOSE_BLOCKED_UNKNOWN:
		return "blocked by policy: the client's owner is unknown (on_unknown)";
	case CLOSE_PROXY_REFUSED:
		return "forward proxy refused the tunnel";
	case CLOSE_PROXY_FAILED:
		return "forward proxy failed before the tunnel was up";
	case CLOSE_PROXY_UNRESOLVED:
		return "forward proxy's name does not resolve";
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

	/* Most sessions log nothing: then format nothing either. */
	if (log_get_level() < (failed ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG))
		return;
	endpoint_format_addr(&r->client, c, sizeof(c));
	endpoint_format_addr(&r->orig_dst, d, sizeof(d));
	if (failed)
		log_info(fmt, (unsigned long long)r->id, c, (unsigned)r->client.port, d,
		    (unsigned)r->orig_dst.port, conn_state_name(r->state), r->close_reason,
		    r->error != NULL ? ": " : "", r->error != NULL ? r->error : "",
		    (unsigned long long)r->bytes_up, (unsigned long long)r->bytes_down, ms);
	else
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

/* One of the session's handles (its timer, a socket) is released; the last frees it. */
static void
handle_gone(struct session *s)
{
	struct worker *w = s->w;

	if (--s->handles > 0)
		return;
	if (s->counted)
		uidcount_remove(&w->uids, s->counted_uid);
	free(s->exe);
	free(s->pass_on);
	conn_detail_free(s->rec.detail); /* never submitted: an event always takes it */
	worker_session_remove(w, &s->link);
	free(s);
}

static void
on_timer_closed(uv_handle_t *h)
{
	handle_gone(h->data);
}

static struct half *
half_of(struct evsock *es)
{
	return (struct half *)((char *)es - offsetof(struct half, es));
}

static void
on_socket_closed(struct evsock *es)
{
	handle_gone(half_of(es)->s);
}

/* A reset tells the peer the connection did not end cleanly. */
static void
close_half(struct half *h, int reset)
{
	if (!h->open)
		return;
	h->open = 0;
	evsock_close(&h->es, reset, on_socket_closed);
}

static int
refused_reason(enum close_reason r)
{
	return r == CLOSE_NOT_REDIRECTED || r == CLOSE_LOOP || r == CLOSE_LOOP_REPEATED ||
	       r == CLOSE_UID_LIMIT || r == CLOSE_RESERVED;
}

/*
 * Refusals a local user can make at will (connections straight to the
 * listener, connections over a limit) are counted per uid and second
 * (table refused_connections), not recorded one row each: a flood of them
 * must not take the writer's queue from other users' connections.
 */
static int
counted_reason(enum close_reason r)
{
	return r == CLOSE_NOT_REDIRECTED || r == CLOSE_UID_LIMIT || r == CLOSE_RESERVED;
}

/* The final event, or parked until the store's queue has room for it (never dropped). */
static void
submit_final(struct session *s)
{
	struct worker *w = s->w;

	if (store_submit(w->store, &s->rec) != -EAGAIN) {
		s->rec.detail = NULL;
		return;
	}
	s->handles++; /* parked: freed once submitted (session_retry_finals) */
	s->final.prev = w->finals.prev;
	s->final.next = &w->finals;
	w->finals.prev->next = &s->final;
	w->finals.prev = &s->final;
	worker_finals_waiting(w);
}

static struct session *
of_final(struct session_link *l)
{
	return (struct session *)((char *)l - offsetof(struct session, final));
}

static void
unpark(struct session *s)
{
	s->final.prev->next = s->final.next;
	s->final.next->prev = s->final.prev;
	s->rec.detail = NULL;
	handle_gone(s);
}

void
session_retry_finals(struct worker *w)
{
	while (w->finals.next != &w->finals) {
		struct session *s = of_final(w->finals.next);

		if (store_submit(w->store, &s->rec) == -EAGAIN)
			return; /* still full: in order, next time */
		unpark(s);
	}
	uv_timer_stop(&w->finals_timer);
}

void
session_drop_finals(struct worker *w)
{
	while (w->finals.next != &w->finals) {
		struct session *s = of_final(w->finals.next);

		store_drop(w->store, &s->rec);
		unpark(s);
	}
	uv_timer_stop(&w->finals_timer);
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
	s->rec.error = err != 0 ? err_str(err) : NULL;
	if (refused_reason(reason))
		s->rec.verdict = VERDICT_REFUSE;
	if (counted_reason(reason)) {
		if (s->rec.uid < 0 && w->owner != NULL)
			s->rec.uid = owner_uid(w->owner, &s->rec.client, &s->rec.orig_dst);
		worker_count_refusal(w, s->rec.uid, s->rec.close_reason);
	} else {
		submit_final(s);
	}
	/* A counted refusal is not logged either: a flood of them would flood the log. */
	session_log(s, (failed || reason != CLOSE_COMPLETED) && !counted_reason(reason));

	stat_sub(&w->stats.active, 1);
	stat_add(&w->stats.bytes_up, s->rec.bytes_up);
	stat_add(&w->stats.bytes_down, s->rec.bytes_down);
	if (refused_reason(reason))
		stat_add(&w->stats.refused, 1);
	else if (reason == CLOSE_BLOCKED || reason == CLOSE_BLOCKED_UNKNOWN)
		stat_add(&w->stats.blocked, 1);
	else if (failed)
		stat_add(&w->stats.failed, 1);

	if (s->pre != NULL && s->pre->resolving)
		resolver_cancel(&s->pre->resolve);
	prelude_free(s);
	bufpool_put(&w->pool, s->client.pending);
	bufpool_put(&w->pool, s->upstream.pending);
	s->client.pending = s->upstream.pending = NULL;
	/* The timer goes first: its close callback, from the loop, is the last
	 * handle_gone, so the session outlives this call and the loop's batch. */
	if (s->timer_open) {
		s->timer_open = 0;
		uv_close((uv_handle_t *)&s->timer, on_timer_closed);
	}
	close_half(&s->client, reason != CLOSE_COMPLETED);
	close_half(&s->upstream, reason != CLOSE_COMPLETED);
}

void
session_shutdown(struct session_link *l)
{
	struct session *s = (struct session *)((char *)l - offsetof(struct session, link));

	session_close(s, CLOSE_SHUTDOWN, 0);
}

/* ---- relay ---- */

#define PUMP_READS 4 /* buffers read from one side per turn; then the other sessions' turn */

static enum close_reason
error_reason(const struct half *h)
{
	return h == &h->s->client ? CLOSE_CLIENT_ERROR : CLOSE_UPSTREAM_ERROR;
}

/*
 * A read from h into buf: bytes (n > 0), 0 at its end, or a negative errno
 * (-EAGAIN: nothing now). A short read empties the socket, so h is
 * not readable until its next edge; if its FIN had arrived, that was the
 * end, and the read that would return 0 is saved.
 */
static long
half_read(struct half *h, char *buf, size_t len)
{
	long n = sock_recv(h->es.fd, buf, len);

	if (n > 0) {
		h->bytes += (uint64_t)n;
		if ((size_t)n < len) {
			h->readable = 0;
			h->eof = h->hup;
		}
		return n;
	}
	if (n == 0) {
		h->readable = 0;
		h->eof = 1;
		return 0;
	}
	n = -sock_errno();
	if (n == -EAGAIN)
		h->readable = 0;
	return n;
}

/*
 * Write what h read and its peer has not taken. Returns 1 when all is
 * written (the buffer goes back to the pool), 0 when the rest waits for the
 * peer to be writable, -1 when the session closed.
 */
static int
flush(struct half *h)
{
	struct half *p = h->peer;
	long n;

	if (h->pending == NULL)
		return 1;
	n = sock_send(p->es.fd, h->pending + h->pending_off, h->pending_len - h->pending_off);
	if (n < 0) {
		int e = -sock_errno();

		if (e == -EAGAIN)
			return 0;
		session_close(h->s, error_reason(p), e);
		return -1;
	}
	h->pending_off += (uint32_t)n;
	if (h->pending_off < h->pending_len)
		return 0;
	bufpool_put(&h->s->w->pool, h->pending);
	h->pending = NULL;
	return 1;
}

/*
 * h sent FIN and all its bytes reached the peer: pass the FIN on. When the
 * peer's FIN has already been passed to h, this is the last step of the
 * session: close() sends the FIN, and the session is complete.
 */
static void
forward_eof(struct half *h)
{
	struct half *p = h->peer;

	if (p->eof && h->shut) {
		session_close(h->s, CLOSE_COMPLETED, 0);
		return;
	}
	if (p->shut)
		return;
	if (shutdown(p->es.fd, SHUT_WR) != 0) {
		int e = -sock_errno();

		if (e != -ENOTCONN) {
			session_close(h->s, error_reason(p), e);
			return;
		}
	}
	p->shut = 1;
}

/*
 * Move h's bytes on as far as they go: what waits for the peer first, then
 * fresh reads, then its FIN. Stops when the peer is full (its next edge
 * resumes), when h is empty (h's next edge resumes), or after PUMP_READS
 * buffers (evsock_again resumes, on the loop's next turn).
 */
static void
advance(struct half *h)
{
	struct session *s = h->s;

	for (int i = 0;; i++) {
		char *b;
		long n;

		if (s->state != SESSION_RELAYING || flush(h) != 1)
			return;
		if (h->eof) {
			forward_eof(h);
			return;
		}
		if (!h->readable)
			return;
		if (i == PUMP_READS) {
			evsock_again(&h->es);
			return;
		}
		if ((b = bufpool_get(&s->w->pool)) == NULL) {
			session_close(s, CLOSE_LOCAL_ERROR, -ENOBUFS);
			return;
		}
		n = half_read(h, b, BUFPOOL_BUF_SIZE);
		if (n <= 0) {
			bufpool_put(&s->w->pool, b);
			if (n < 0 && n != -EAGAIN) {
				session_close(s, error_reason(h), (int)n);
				return;
			}
			continue; /* 0: forward the FIN; -EAGAIN: wait for the edge */
		}
		s->last_activity_ms = uv_now(&s->w->loop);
		h->pending = b;
		h->pending_off = 0;
		h->pending_len = (uint32_t)n;
	}
}

/* ---- timers ---- */

static void end_peek(struct session *s);

static void
on_timer(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t idle_ms =
	    (uint64_t)atomic_load_explicit(&s->w->idle_timeout_s, memory_order_relaxed) * 1000;
	uint64_t quiet;

	if (s->state == SESSION_PEEKING) {
		end_peek(s);
		return;
	}
	if (s->state == SESSION_RESOLVING || s->state == SESSION_CONNECTING ||
	    s->state == SESSION_HANDSHAKE) {
		session_close(s, CLOSE_CONNECT_TIMEOUT, -ETIMEDOUT);
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

static void peek_read(struct session *s);

/* ---- connect ---- */

/* What each side's socket should report, for pollers that only report what
 * is asked for (Windows). Edge-triggered Linux ignores it. */
static void
session_want(struct session *s)
{
	struct half *c = &s->client, *u = &s->upstream;
	unsigned cw = 0, uw = 0;

	switch (s->state) {
	case SESSION_PEEKING:
		cw = EVIO_READ;
		break;
	case SESSION_CONNECTING:
		uw = EVIO_WRITE;
		break;
	case SESSION_HANDSHAKE:
		uw =
		    EVIO_READ |
		    (s->pre != NULL && s->pre->request_sent < s->pre->request_len ? EVIO_WRITE : 0);
		break;
	case SESSION_RELAYING:
		cw = (!c->eof && c->pending == NULL ? EVIO_READ : 0) |
		     (u->pending != NULL ? EVIO_WRITE : 0);
		uw = (!u->eof && u->pending == NULL ? EVIO_READ : 0) |
		     (c->pending != NULL ? EVIO_WRITE : 0);
		break;
	default:
		return;
	}
	if (c->open)
		evsock_want(&c->es, cw);
	if (u->open)
		evsock_want(&u->es, uw);
}

/* Both sides connected (through the proxy, for forward): relay. */
static void
start_relay(struct session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint64_t idle_ms =
	    (uint64_t)atomic_load_explicit(&s->w->idle_timeout_s, memory_order_relaxed) * 1000;

	s->state = SESSION_RELAYING;
	s->rec.state = CONN_RELAYING;
	s->rec.connect_us = (int64_t)((uv_hrtime() - s->connect_start_ns) / 1000);
	if (getsockname(s->upstream.es.fd, (struct sockaddr *)&ss, &len) == 0 &&
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
	if (s->pre != NULL && s->pre->peek != NULL && s->pre->peek_len > 0) {
		s->client.pending = s->pre->peek;
		s->client.pending_off = 0;
		s->client.pending_len = (uint32_t)s->pre->peek_len;
		s->pre->peek = NULL;
	}
	prelude_free(s);
	advance(&s->client);
	advance(&s->upstream);
}

/* ---- forward: the CONNECT handshake ---- */

#define ANSWER_MAX 8192 /* a proxy's answer head; more is not a proxy we know */

/* The end of an HTTP head ("\r\n\r\n") in buf, or NULL. (memmem is not on Windows.) */
static char *
header_end(char *buf, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return buf + i;
	return NULL;
}

/* Read the proxy's answer; a complete 2xx head opens the tunnel. */
static void
read_answer(struct session *s)
{
	struct half *u = &s->upstream;
	struct prelude *p = s->pre;
	char *end;
	size_t head, rest;
	long n;
	int code;

	if (p->answer == NULL && (p->answer = bufpool_get(&s->w->pool)) == NULL) {
		session_close(s, CLOSE_LOCAL_ERROR, -ENOBUFS);
		return;
	}
	n = half_read(u, p->answer + p->answer_len, ANSWER_MAX - p->answer_len);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		session_close(s, CLOSE_PROXY_FAILED, n == 0 ? 0 : (int)n);
		return;
	}
	u->bytes -= (uint64_t)n; /* the answer is the proxy's, not the destination's */
	p->answer_len += (size_t)n;
	end = header_end(p->answer, p->answer_len);
	if (end == NULL) {
		if (p->answer_len == ANSWER_MAX)
			session_close(s, CLOSE_PROXY_FAILED, -E2BIG);
		else if (u->eof)
			session_close(s, CLOSE_PROXY_FAILED, 0);
		return;
	}
	/* "HTTP/1.1 200 Connection established": any 2xx opens the tunnel. */
	*end = '\0';
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
		u->bytes += rest;
		u->pending = b;
		u->pending_off = 0;
		u->pending_len = (uint32_t)rest;
	}
	start_relay(s);
}

/* Write the CONNECT request, then read the answer. */
static void
handshake(struct session *s)
{
	struct half *u = &s->upstream;
	struct prelude *p = s->pre;

	if (p->request_sent < p->request_len) {
		long n = sock_send(
		    u->es.fd, p->request + p->request_sent, p->request_len - p->request_sent);

		if (n < 0) {
			int e = -sock_errno();

			if (e != -EAGAIN)
				session_close(s, CLOSE_PROXY_FAILED, e);
			return;
		}
		p->request_sent += (size_t)n;
		if (p->request_sent < p->request_len)
			return; /* the rest when writable */
	}
	if (u->readable)
		read_answer(s);
}

/* Ask the proxy for a tunnel to the original destination. */
static void
send_connect(struct session *s)
{
	char host[ADDR_STRLEN];
	const struct endpoint *d = &s->rec.orig_dst;
	struct prelude *p = s->pre;
	int n;

	endpoint_format_addr(d, host, sizeof(host));
	n = snprintf(p->request, sizeof(p->request),
	    d->family == AF_INET6 ? "CONNECT [%s]:%u HTTP/1.1\r\nHost: [%s]:%u\r\n\r\n"
				  : "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n",
	    host, (unsigned)d->port, host, (unsigned)d->port);
	p->request_len = (size_t)n;
	p->request_sent = 0;
	s->state = SESSION_HANDSHAKE; /* the connect timer runs on through the handshake */
	handshake(s);
}

static void
connected(struct session *s)
{
	if (s->forward)
		send_connect(s);
	else
		start_relay(s);
}

/* A socket of the session has events: what they mean depends on the state. */
static void
on_socket_event(struct evsock *es, unsigned ev)
{
	struct half *h = half_of(es);
	struct session *s = h->s;

	if (ev & EVIO_READ)
		h->readable = 1;
	if (ev & EVIO_HUP)
		h->hup = 1;
	if (ev & EVIO_ERROR) {
		int e = evsock_error(es);

		if (e != 0) {
			enum close_reason why = error_reason(h);

			if (h == &s->upstream && s->state == SESSION_CONNECTING)
				why = CLOSE_CONNECT_FAILED;
			else if (h == &s->upstream && s->state == SESSION_HANDSHAKE)
				why = CLOSE_PROXY_FAILED;
			session_close(s, why, e);
			return;
		}
	}
	switch (s->state) {
	case SESSION_PEEKING:
		if (h == &s->client && h->readable)
			peek_read(s);
		break;
	case SESSION_CONNECTING:
		if (h == &s->upstream && (ev & EVIO_WRITE))
			connected(s);
		break;
	case SESSION_HANDSHAKE:
		if (h == &s->upstream)
			handshake(s);
		break;
	case SESSION_RELAYING:
		if ((ev & EVIO_WRITE) && h->peer->pending != NULL)
			advance(h->peer);
		if (h->pending == NULL)
			advance(h);
		break;
	default:
		break;
	}
	session_want(s);
}

/* Watch a side's socket; the session owns fd from here. */
static int
half_open(struct session *s, struct half *h, sock_t fd, unsigned want)
{
	int r;

	if ((r = evsock_open(&s->w->io, &h->es, fd, want, on_socket_event)) != 0) {
		sock_close(fd);
		return r;
	}
	h->open = 1;
	s->handles++;
	return 0;
}

/* Open the upstream socket, marked before connect so no rule redirects it again. */
static void
session_connect(struct session *s)
{
	struct worker *w = s->w;
	struct sockaddr_storage ss;
	sock_t fd;
	int one = 1, r;

	if (s->forward)
		ss = s->pre->proxy;
	else if (endpoint_to_sockaddr(&s->rec.orig_dst, &ss) < 0) {
		session_close(s, CLOSE_NO_ORIGINAL_DST, -EAFNOSUPPORT);
		return;
	}
	if ((fd = sock_stream(ss.ss_family)) == SOCK_INVALID) {
		session_close(s, CLOSE_LOCAL_ERROR, -sock_errno());
		return;
	}
	if ((r = redirect_prepare_upstream(fd, w->cfg, s->rec.records_mark, s->rec.redirect_state,
		 s->pass_on, s->pass_on_len)) != 0) {
		sock_close(fd);
		session_close(s, CLOSE_LOCAL_ERROR, r);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
	s->connect_start_ns = uv_hrtime();
	/* In progress is the rule (EINPROGRESS; Windows: WSAEWOULDBLOCK, mapped to EAGAIN). */
	if (connect(fd, (struct sockaddr *)&ss,
		ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in)) != 0 &&
	    sock_errno() != EINPROGRESS && sock_errno() != EAGAIN) {
		r = -sock_errno();
		sock_close(fd);
		session_close(s, CLOSE_CONNECT_FAILED, r);
		return;
	}
	/* Its first edge, writable, says the connect ended (an error edge: failed). */
	if ((r = half_open(s, &s->upstream, fd, EVIO_WRITE)) != 0) {
		session_close(s, CLOSE_LOCAL_ERROR, r);
		return;
	}
	s->state = SESSION_CONNECTING;
	uv_timer_start(&s->timer, on_timer,
	    atomic_load_explicit(&w->connect_timeout_ms, memory_order_relaxed), 0);
	session_want(s);
}

/* The forward proxy's name came back (or not), from libuv's thread pool. */
static void
on_proxy_resolved(struct resolve_req *req, int status, const struct sockaddr_storage *addr)
{
	struct prelude *p = (struct prelude *)((char *)req - offsetof(struct prelude, resolve));
	struct session *s = p->s;

	p->resolving = 0;
	if (s->state == SESSION_CLOSING) { /* closed meanwhile: it waited for this */
		prelude_free(s);
		handle_gone(s);
		return;
	}
	if (status != 0) {
		session_close(s, CLOSE_PROXY_UNRESOLVED, 0);
		handle_gone(s);
		return;
	}
	p->proxy = *addr;
	s->state = SESSION_ACCEPTED;
	session_connect(s);
	handle_gone(s);
}

static int
is_own_listener(const struct worker *w, const struct endpoint *dst, const struct endpoint *local)
{
	if (dst->port != w->cfg->listen_port)
		return 0;
	return endpoint_is_loopback(dst) ||
	       (dst->family == local->family && memcmp(dst->addr, local->addr, 16) == 0);
}

/* How strict an action is, for an ambiguous request: block, forward, allow. */
static int
strictness(enum policy_action a)
{
	return a == POLICY_BLOCK ? 3 : a == POLICY_FORWARD ? 2 : a == POLICY_ALLOW ? 1 : 0;
}

/*
 * The verdict for the session's inputs. A request that names two hosts
 * (two Host headers, a target whose host is not the Host header's) is
 * judged by both, and the stricter verdict holds: naming a harmless host
 * as well cannot smuggle a blocked one past its rule.
 */
static struct policy_verdict
judge(const struct policy *p, struct session *s)
{
	const struct sniff_names *nm = s->pre != NULL ? &s->pre->names : NULL;
	struct policy_input in = {&s->rec.orig_dst, s->rec.redirect_state,
	    nm != NULL ? nm->name : NULL, s->rec.uid, s->exe};
	struct policy_verdict v = policy_evaluate(p, &in), alt;

	if (nm != NULL && nm->alt[0] != '\0') {
		in.server_name = nm->alt;
		alt = policy_evaluate(p, &in);
		if (strictness(alt.action) > strictness(v.action))
			v = alt;
		log_info("session %llu: the request names two hosts, %s and %s: judged by %s",
		    (unsigned long long)s->rec.id, nm->name, nm->alt, policy_action_name(v.action));
	}
	return v;
}

/* The policy's verdict, recorded on the row and counted per rule; then act on it. */
static void
decide(struct session *s)
{
	struct worker *w = s->w;
	struct policy *p = policy_acquire(w->policy, w->index);
	struct policy_verdict v = judge(p, s);
	const struct forward *fwd = policy_forward_to(p, v.rule);
	struct conn_detail *d;
	int rc;

	policy_count_hit(p, v.rule);
	if ((d = detail(s)) != NULL) {
		d->policy_version = policy_version(p);
		if (v.rule >= 0)
			d->rule_id = strdup(policy_rule_id(p, (size_t)v.rule));
	}
	if (fwd != NULL) {
		if (prelude(s) == NULL) {
			policy_release(w->policy, w->index);
			session_close(s, CLOSE_LOCAL_ERROR, -ENOMEM);
			return;
		}
		s->forward = 1;
		rc = fwd->is_addr ? 1
				  : resolver_lookup(w->resolver, &s->pre->resolve, fwd->host,
					fwd->port, on_proxy_resolved, &s->pre->proxy);
		if (fwd->is_addr)
			s->pre->proxy = fwd->addr;
	}
	policy_release(w->policy, w->index);
	s->rec.verdict = policy_action_verdict(v.action);
	if (v.action == POLICY_BLOCK) {
		session_close(s, v.owner_unknown ? CLOSE_BLOCKED_UNKNOWN : CLOSE_BLOCKED, 0);
		return;
	}
	submit(s);
	if (fwd == NULL || rc == 1) {
		session_connect(s);
	} else if (rc == 0) { /* the name is being looked up: connect when it comes */
		s->pre->resolving = 1;
		s->handles++; /* the lookup's callback is the session's to wait for */
		s->state = SESSION_RESOLVING;
		uv_timer_start(&s->timer, on_timer,
		    atomic_load_explicit(&w->connect_timeout_ms, memory_order_relaxed), 0);
	} else {
		session_close(s, rc == -ENOENT ? CLOSE_PROXY_UNRESOLVED : CLOSE_LOCAL_ERROR,
		    rc == -ENOENT ? 0 : rc);
	}
}

/*
 * The local user and program behind the client end (owner.h). The search
 * may read /proc for tens of milliseconds: it runs on libuv's thread pool,
 * never on the loop, and the session waits for it (SESSION_OWNER).
 */
struct owner_work {
	uv_work_t req;
	struct session *s;
	struct owner_ctx *ctx;
	struct endpoint client, dst;
	int with_process, peek;
	struct owner o;
	int rc;
};

static void start_peek(struct session *s);

static void
owner_work(uv_work_t *req)
{
	struct owner_work *ow = req->data;

	ow->rc = owner_lookup(ow->ctx, &ow->client, &ow->dst, ow->with_process, &ow->o);
}

static void
owner_done(uv_work_t *req, int status)
{
	struct owner_work *ow = req->data;
	struct session *s = ow->s;

	if (s->state == SESSION_CLOSING) { /* closed meanwhile: it waited for this */
		free(ow);
		handle_gone(s);
		return;
	}
	if (status == 0 && ow->rc == 0) {
		s->rec.uid = ow->o.uid;
		s->rec.pid = ow->o.pid;
		if (ow->with_process)
			log_debug("session %llu: owner uid %d, pid %d (%s)",
			    (unsigned long long)s->rec.id, (int)ow->o.uid, (int)ow->o.pid,
			    ow->o.pid < 0   ? "not found"
			    : ow->o.by_hook ? "by the connect hook"
					    : "by a /proc search");
		if (ow->o.exe[0] != '\0') {
			struct conn_detail *d = detail(s);

			s->exe = strdup(ow->o.exe);
			if (d != NULL)
				d->exe = strdup(ow->o.exe);
		}
	}
	s->state = SESSION_ACCEPTED;
	if (ow->peek) {
		submit(s); /* the row exists while we wait */
		start_peek(s);
	} else {
		decide(s);
	}
	free(ow);
	handle_gone(s);
}

/* Look the owner up, then peek (or decide). Returns 0, or -1 to go on without it. */
static int
find_owner(struct session *s, int with_process, int peek)
{
	struct owner_work *ow = malloc(sizeof(*ow));

	if (ow == NULL)
		return -1;
	ow->req.data = ow;
	ow->s = s;
	ow->ctx = s->w->owner;
	ow->client = s->rec.client;
	ow->dst = s->rec.orig_dst;
	ow->with_process = with_process;
	ow->peek = peek;
	if (uv_queue_work(&s->w->loop, &ow->req, owner_work, owner_done) != 0) {
		free(ow);
		return -1;
	}
	s->state = SESSION_OWNER;
	s->handles++; /* the lookup's callback is the session's to wait for */
	return 0;
}

/* ---- the server name: the client's first bytes, bounded in size and time ---- */

#define PEEK_MAX        16384 /* a ClientHello fits; a request head nearly always */
#define PEEK_TIMEOUT_MS 1000  /* a client that waits for the server to speak first */

static void
end_peek(struct session *s)
{
	enum sniff_result r;

	struct prelude *p = s->pre;

	uv_timer_stop(&s->timer);
	if (p->peek != NULL) {
		r = sniff_server_name((const uint8_t *)p->peek, p->peek_len, &p->names);
		if (r == SNIFF_FOUND) {
			struct conn_detail *d = detail(s);

			if (d != NULL) {
				d->server_name = strdup(p->names.name);
				d->server_name_source = sniff_source_name(p->names.source);
			}
		} else {
			p->names.name[0] = p->names.alt[0] = '\0';
		}
	}
	s->state = SESSION_ACCEPTED;
	decide(s);
}

/* Read more of the client's first bytes; enough for a name (or no name to be had) ends it. */
static void
peek_read(struct session *s)
{
	struct half *h = &s->client;
	struct prelude *p = s->pre;
	long n;

	if (p->peek == NULL && (p->peek = bufpool_get(&s->w->pool)) == NULL) {
		session_close(s, CLOSE_LOCAL_ERROR, -ENOBUFS);
		return;
	}
	n = half_read(h, p->peek + p->peek_len, PEEK_MAX - p->peek_len);
	if (n == -EAGAIN)
		return;
	if (n < 0) {
		session_close(s, CLOSE_CLIENT_ERROR, (int)n);
		return;
	}
	p->peek_len += (size_t)n;
	/* At the client's FIN, what came is relayed, then the FIN, as it came. */
	if (h->eof || p->peek_len == PEEK_MAX ||
	    sniff_server_name((const uint8_t *)p->peek, p->peek_len, &p->names) != SNIFF_MORE)
		end_peek(s);
}

static void
start_peek(struct session *s)
{
	if (prelude(s) == NULL) {
		session_close(s, CLOSE_LOCAL_ERROR, -ENOMEM);
		return;
	}
	s->state = SESSION_PEEKING;
	uv_timer_start(&s->timer, on_timer, PEEK_TIMEOUT_MS, 0);
	session_want(s);
	/* Bytes that came before the socket was watched are reported by its first edge. */
}

/*
 * Fair share between the host's users: no user other than a system one
 * (uid <= system_uid_max) holds more than max_sessions_per_uid sessions,
 * and the last eighth of max_sessions is for system users alone, so that
 * one user holding idle connections cannot deny everyone else (root's curl
 * among them). The uid is one sock_diag round trip. Returns 0 (admitted,
 * counted), or -1 with the session closed (a counted refusal).
 */
static int
admit(struct session *s)
{
	struct worker *w = s->w;
	unsigned max_per_uid = atomic_load_explicit(&w->max_per_uid, memory_order_relaxed);
	int32_t uid;

	if (max_per_uid == 0)
		return 0;
	if (s->rec.uid < 0 && w->owner != NULL)
		s->rec.uid = owner_uid(w->owner, &s->rec.client, &s->rec.orig_dst);
	uid = s->rec.uid;
	if (uid < 0 ||
	    (uint32_t)uid > atomic_load_explicit(&w->system_uid_max, memory_order_relaxed)) {
		if (w->n_sessions > w->max_sessions - w->reserve) {
			session_close(s, CLOSE_RESERVED, 0);
			return -1;
		}
		if (uid >= 0 && uidcount_get(&w->uids, (uint32_t)uid) >= max_per_uid) {
			session_close(s, CLOSE_UID_LIMIT, 0);
			return -1;
		}
	}
	if (uid >= 0) {
		uidcount_add(&w->uids, (uint32_t)uid);
		s->counted = 1;
		s->counted_uid = (uint32_t)uid;
	}
	return 0;
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
	worker_session_add(w, &s->link);
	stat_add(&w->stats.accepted, 1);
	stat_add(&w->stats.active, 1);

	s->rec.id = store_next_id(w->store);
	s->rec.opened_at_us = clock_wall_us();
	s->rec.connect_us = -1;
	s->rec.uid = -1;
	s->rec.pid = -1;
	s->rec.verdict = VERDICT_ALLOW;
	s->rec.state = CONN_OPEN;
	s->rec.redirect_state = REDIRECT_NONE;

	uv_timer_init(&w->loop, &s->timer);
	s->timer.data = s;
	s->timer_open = 1;
	s->handles++;
	s->client.s = s->upstream.s = s;
	s->client.peer = &s->upstream;
	s->upstream.peer = &s->client;
	if ((r = half_open(s, &s->client, fd, 0)) != 0) {
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
	s->rec.redirect_state = ri.state;
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
	if (admit(s) != 0)
		return;
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
		if (owner != 0 && w->owner != NULL &&
		    find_owner(s, (owner & POLICY_NEEDS_EXE) != 0, peek) == 0)
			return; /* owner_done goes on */
		if (peek) {
			submit(s); /* the row exists while we wait */
			start_peek(s);
			return;
		}
	}
	decide(s);
}
