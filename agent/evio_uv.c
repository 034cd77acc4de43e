/*
 * evio_uv.c: the relay's readiness events on Windows (evio.h).
 *
 * One uv_poll handle per socket (libuv polls sockets through AFD there),
 * level-triggered: it is started for what the relay wants, so a socket the
 * relay does not read from (its peer's output is full) stays quiet.
 */
#include "evio.h"

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
	if (events & UV_WRITABLE)
		out |= EVIO_WRITE;
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
	es->want = 0;
	if ((r = uv_poll_init_socket(io->loop, &es->poll, fd)) != 0) {
		es->fd = SOCK_INVALID;
		return r; /* no handle was made */
	}
	es->poll.data = es;
	evsock_want(es, want);
	return 0;
}

void
evsock_want(struct evsock *es, unsigned want)
{
	if (es->fd == SOCK_INVALID || want == es->want)
		return;
	es->want = want;
	if (want == 0)
		uv_poll_stop(&es->poll);
	else
		uv_poll_start(&es->poll, uv_events(want), on_poll);
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

	closesocket(es->closing);
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
	es->closing = es->fd;
	es->fd = SOCK_INVALID;
	es->closed = closed;
	/* The socket is closed once libuv has let go of it. */
	uv_close((uv_handle_t *)&es->poll, on_poll_closed);
}
