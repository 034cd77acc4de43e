/*
 * evio_uv.c: the relay's readiness events on Windows (evio.h).
 *
 * One uv_poll handle per socket (libuv polls sockets through AFD there),
 * level-triggered: it is started for what the relay wants, so a socket the
 * relay does not read from (its peer's output is full) stays quiet.
 */
#include "evio.h"

#include <errno.h>

/* libuv's codes here are its own Windows numbers: as errno values (err.h). */
static int
from_uv(int r)
{
	switch (r) {
	case 0:
		return 0;
	case UV_ENOMEM:
		return -ENOMEM;
	case UV_EBADF:
		return -EBADF;
	case UV_ENOTSOCK:
		return -ENOTSOCK;
	case UV_EINVAL:
		return -EINVAL;
	case UV_EEXIST:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static void
on_poll(uv_poll_t *p, int status, int events)
{
	struct evsock *es = p->data;
	unsigned out = 0;

	if (es->fd == SOCK_INVALID)
		return;
	if (status < 0)
		out |= EVIO_ERROR | EVIO_READ;
	if (events & UV_READABLE)
		out |= EVIO_READ;
	if (events & UV_WRITABLE) {
		out |= EVIO_WRITE;
		/*
		 * libuv's poll reports a refused connect as writable with status 0
		 * (seen under wine: SO_ERROR said 10061). The first writable event
		 * of a socket ends its connect, if it had one: ask SO_ERROR then.
		 */
		if (!es->be.wrote) {
			es->be.wrote = 1;
			if ((es->be.error = sock_pending_error(es->fd)) != 0)
				out = EVIO_ERROR | EVIO_READ;
		}
	}
	if (events & UV_DISCONNECT)
		out |= EVIO_HUP | EVIO_READ;
	es->cb(es, out);
}

int
evio_init(struct evio *io, uv_loop_t *loop)
{
	io->loop = loop;
	return 0;
}

void
evio_close(struct evio *io)
{
	(void)io; /* no handles of its own */
}

static int
uv_events(unsigned want)
{
	return ((want & EVIO_READ) ? UV_READABLE | UV_DISCONNECT : 0) |
	       ((want & EVIO_WRITE) ? UV_WRITABLE : 0);
}

int
evsock_open(struct evio *io, struct evsock *es, sock_t fd, unsigned want, evsock_cb cb)
{
	int r;

	es->fd = fd;
	es->cb = cb;
	es->io = io;
	es->closed = NULL;
	es->be.want = 0;
	es->be.wrote = 0;
	es->be.error = 0;
	if ((r = uv_poll_init_socket(io->loop, &es->be.poll, fd)) != 0) {
		es->fd = SOCK_INVALID;
		return from_uv(r); /* no handle was made */
	}
	es->be.poll.data = es;
	evsock_want(es, want);
	return 0;
}

void
evsock_want(struct evsock *es, unsigned want)
{
	if (es->fd == SOCK_INVALID || want == es->be.want)
		return;
	es->be.want = want;
	if (want == 0)
		uv_poll_stop(&es->be.poll);
	else
		uv_poll_start(&es->be.poll, uv_events(want), on_poll);
}

int
evsock_error(struct evsock *es)
{
	int e = es->be.error;

	es->be.error = 0;
	return e != 0 ? e : sock_pending_error(es->fd);
}

void
evsock_again(struct evsock *es)
{
	(void)es; /* level-triggered: a socket with bytes left is reported again */
}

static void
on_poll_closed(uv_handle_t *h)
{
	struct evsock *es = h->data;

	closesocket(es->be.closing);
	if (es->closed != NULL)
		es->closed(es);
}

void
evsock_close(struct evsock *es, int reset, void (*closed)(struct evsock *es))
{
	if (es->fd == SOCK_INVALID) {
		if (closed != NULL)
			closed(es);
		return;
	}
	if (reset) {
		struct linger l = {1, 0};

		setsockopt(es->fd, SOL_SOCKET, SO_LINGER, (const char *)&l, sizeof(l));
	}
	es->be.closing = es->fd;
	es->fd = SOCK_INVALID;
	es->closed = closed;
	/* The socket is closed once libuv has let go of it. */
	uv_close((uv_handle_t *)&es->be.poll, on_poll_closed);
}
