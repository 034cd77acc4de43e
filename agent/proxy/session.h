/*
 * session.h: one relayed connection.
 *
 * A session is two halves, the client side (accepted from the redirect) and
 * the upstream side (our connection to the original destination), that
 * point at each other. Its life is one state enum and ends in one function,
 * session_close(), which copes with half-built sessions, writes the final
 * record, logs one summary line and is the only path to free.
 *
 * Private to proxy/: worker.c hands accepted sockets over and closes what
 * is left at its drain deadline; nothing outside the loops sees a session.
 */
#ifndef RA_SESSION_H
#define RA_SESSION_H

#include <uv.h>

#include "platform.h"

struct worker;
struct session;
struct endpoint;

/* A worker's list entry, embedded in each session (worker_internal.h). */
struct session_link {
	struct session_link *prev, *next;
};

enum close_reason {
	CLOSE_COMPLETED,        /* both sides closed cleanly */
	CLOSE_CLIENT_ERROR,     /* the client reset or failed */
	CLOSE_UPSTREAM_ERROR,   /* the destination reset or failed */
	CLOSE_CONNECT_FAILED,   /* the destination refused or was unreachable */
	CLOSE_CONNECT_TIMEOUT,  /* no answer within connect_timeout_ms */
	CLOSE_IDLE_TIMEOUT,     /* nothing moved for idle_timeout_s */
	CLOSE_NOT_REDIRECTED,   /* a direct connection to the listener */
	CLOSE_UID_LIMIT,        /* its user holds max_sessions_per_uid sessions */
	CLOSE_RESERVED,         /* the last sessions are kept for system users */
	CLOSE_LOOP,             /* the original destination is our own listener */
	CLOSE_LOOP_REPEATED,    /* came back although it left with the escape mark */
	CLOSE_BLOCKED,          /* the policy said block */
	CLOSE_BLOCKED_UNKNOWN,  /* a rule about the owner, who is unknown: its on_unknown */
	CLOSE_PROXY_REFUSED,    /* forward: the CONNECT proxy answered other than 2xx */
	CLOSE_PROXY_FAILED,     /* forward: the proxy closed or failed before answering */
	CLOSE_PROXY_UNRESOLVED, /* forward: the proxy's name does not resolve (now) */
	CLOSE_NO_ORIGINAL_DST,  /* the kernel could not say where it was going */
	CLOSE_LOCAL_ERROR,      /* out of fds or memory for the upstream side */
	CLOSE_SHUTDOWN,         /* the agent stopped before the session ended */
};

const char *session_close_reason_name(enum close_reason r);

/*
 * Take over fd, a connection just accepted from a listener (peer: its
 * address, as accept4 returned it; local: the listener's bound address), and
 * start relaying it. The fd is owned by the session from here (closed on every
 * path). Any failure is recorded on the connection's row and closes that
 * connection only. Loop thread only.
 */
void session_accept(
    struct worker *w, sock_t fd, const struct sockaddr *peer, const struct endpoint *local);

/*
 * End the session: record state, bytes, reason and error (a negative
 * errno, 0 for none), log the summary, close its sockets and timer, and
 * free the session once the loop has released them (never within this
 * call). Safe to call more than once and on a session still connecting.
 */
void session_close(struct session *s, enum close_reason reason, int err);

/* Close the session holding l with CLOSE_SHUTDOWN (the worker's drain deadline). */
void session_shutdown(struct session_link *l);

#endif
