/*
 * evio.h: readiness events for the relay's sockets, one set per event loop.
 *
 * The relay works on plain non-blocking sockets (recv, send, shutdown) and
 * asks only to be told when a socket may be readable or writable. On Linux
 * that saves what libuv's stream API costs per connection: about seven
 * epoll_ctl calls (ADD, ADD/MOD as reading and writing start and stop, a
 * DEL after EOF, a DEL at close), a FIONBIO ioctl and an SO_ERROR read.
 *
 *   Linux (evio_epoll.c): one epoll set per loop, which the loop watches as
 *   a single uv_poll handle. A socket joins it once, edge-triggered, for
 *   reading, writing and the peer's FIN, and leaves it when it is closed:
 *   two epoll_ctl calls per relayed connection, none while it runs.
 *   Windows (evio_uv.c): one uv_poll handle per socket, level-triggered,
 *   started for what the relay says it wants (evsock_want).
 *
 * Edges are not repeated, so the relay keeps its own note of what is
 * readable and reads until a short read or EAGAIN. When it stops early to
 * let other sessions run, evsock_again() calls it back on the next turn of
 * the loop.
 */
#ifndef RA_EVIO_H
#define RA_EVIO_H

#include <uv.h>

#include "platform.h"

enum {
	EVIO_READ = 1,  /* bytes, a FIN or an error to read */
	EVIO_WRITE = 2, /* room to write; for a connecting socket, the connect ended */
	EVIO_HUP = 4,   /* the peer's FIN arrived: reading ends at the data's end */
	EVIO_ERROR = 8, /* the socket has an error (evio_pending_error says which) */
};

struct evsock;
struct evio;

/* events: EVIO_* bits. Called from the loop; the socket may be closed in it. */
typedef void (*evsock_cb)(struct evsock *es, unsigned events);

/* A socket watched by an evio. Embedded in its owner; see evsock_open. */
struct evsock {
	sock_t fd; /* SOCK_INVALID once closed */
	evsock_cb cb;
	struct evio *io;
	void (*closed)(struct evsock *es);
#ifdef _WIN32
	uv_poll_t poll;
	unsigned want;
	sock_t closing; /* closed once libuv lets go of the poll handle */
#else
	struct evsock *again_prev, *again_next; /* on io's list for evsock_again */
	unsigned again_pass;
	unsigned queued;
#endif
};

struct evio {
	uv_loop_t *loop;
#ifndef _WIN32
	int epfd;
	uv_poll_t poll; /* the epoll set, readable when a socket has events */
	uv_idle_t idle; /* runs while sockets wait on the again list */
	struct evsock *again_head, *again_tail;
	unsigned again_pass;
	unsigned handles; /* poll and idle, until closed */
#endif
};

/* Set up io on loop (loop thread). Returns 0 or a libuv error code. */
int evio_init(struct evio *io, uv_loop_t *loop);

/* Close io's own handles; every socket must be closed already. */
void evio_close(struct evio *io);

/*
 * Watch fd (non-blocking, connected or connecting) for the events in want
 * (EVIO_READ, EVIO_WRITE; Linux watches both regardless). Returns 0, or a
 * libuv error code with fd left open for the caller to close.
 */
int evsock_open(struct evio *io, struct evsock *es, sock_t fd, unsigned want, evsock_cb cb);

/* What the relay wants to hear about now (Windows; a no-op for Linux's edges). */
void evsock_want(struct evsock *es, unsigned want);

/* Call es back with EVIO_READ on the next turn of the loop (Linux; Windows
 * repeats level-triggered events by itself). */
void evsock_again(struct evsock *es);

/*
 * Stop watching and close the socket, with a reset (RST) instead of a FIN
 * when reset is set. closed(es) runs once es is no longer used: at once on
 * Linux, from the loop on Windows. Events already fetched for es are dropped.
 */
void evsock_close(struct evsock *es, int reset, void (*closed)(struct evsock *es));

/* The last socket call's error as a libuv error code (UV_EAGAIN, UV_ECONNRESET, ...). */
static inline int
evio_sock_error(void)
{
#ifdef _WIN32
	return uv_translate_sys_error(WSAGetLastError());
#else
	return uv_translate_sys_error(errno);
#endif
}

/* The socket's pending error (SO_ERROR, which it clears) as a libuv error code; 0: none. */
static inline int
evio_pending_error(sock_t fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&e, &len) != 0)
		return evio_sock_error();
	return e != 0 ? uv_translate_sys_error(e) : 0;
}

#endif
