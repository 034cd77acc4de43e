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
 *
 * Errors are negative errno values (err.h): a socket call's with
 * -sock_errno() (platform.h), a socket's pending one with evsock_error().
 */
#ifndef RA_EVIO_H
#define RA_EVIO_H

#include <uv.h>

#include "platform.h"

enum {
	EVIO_READ = 1,  /* bytes, a FIN or an error to read */
	EVIO_WRITE = 2, /* room to write; for a connecting socket, the connect ended */
	EVIO_HUP = 4,   /* the peer's FIN arrived: reading ends at the data's end */
	EVIO_ERROR = 8, /* the socket has an error (evsock_error says which) */
};

struct evsock;
struct evio;

/* events: EVIO_* bits. Called from the loop; the socket may be closed in it. */
typedef void (*evsock_cb)(struct evsock *es, unsigned events);

/* Each backend's own fields: struct evsock_backend and struct evio_backend. */
#ifdef _WIN32
#include "evio_uv.h"
#else
#include "evio_epoll.h"
#endif

/* A socket watched by an evio. Embedded in its owner; see evsock_open. */
struct evsock {
	sock_t fd; /* SOCK_INVALID once closed */
	evsock_cb cb;
	struct evio *io;
	void (*closed)(struct evsock *es);
	struct evsock_backend be;
};

struct evio {
	uv_loop_t *loop;
	struct evio_backend be;
};

/* Set up io on loop (loop thread). Returns 0 or a negative errno. */
int evio_init(struct evio *io, uv_loop_t *loop);

/* Close io's own handles; every socket must be closed already. */
void evio_close(struct evio *io);

/*
 * Watch fd (non-blocking, connected or connecting) for the events in want
 * (EVIO_READ, EVIO_WRITE; Linux watches both regardless). Returns 0, or a
 * negative errno with fd left open for the caller to close.
 */
int evsock_open(struct evio *io, struct evsock *es, sock_t fd, unsigned want, evsock_cb cb);

/* What the relay wants to hear about now (Windows; a no-op for Linux's edges). */
void evsock_want(struct evsock *es, unsigned want);

/* The socket's pending error (SO_ERROR, cleared by reading it) as a negative errno; 0: none. */
int evsock_error(struct evsock *es);

/* Call es back with EVIO_READ on the next turn of the loop (Linux; Windows
 * repeats level-triggered events by itself). */
void evsock_again(struct evsock *es);

/*
 * Stop watching and close the socket, with a reset (RST) instead of a FIN
 * when reset is set. closed(es) runs once es is no longer used: at once on
 * Linux, from the loop on Windows. Events already fetched for es are dropped.
 */
void evsock_close(struct evsock *es, int reset, void (*closed)(struct evsock *es));

#endif
