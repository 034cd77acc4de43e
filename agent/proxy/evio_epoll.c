/*
 * evio_epoll.c: the relay's readiness events on Linux (evio.h).
 *
 * One epoll set per loop holds every relay socket, edge-triggered for
 * reading, writing and the peer's FIN. The loop watches the set itself as
 * one uv_poll handle; when it is readable, one epoll_wait fetches up to
 * EVIO_BATCH sockets' events. A socket leaves the set when it is closed
 * (it is never duplicated), so it costs one epoll_ctl in all.
 */
#include "evio.h"

#include <errno.h>

#include <stddef.h>
#include <sys/epoll.h>

#define EVIO_BATCH 256 /* events per epoll_wait; more wait for the next turn */

static void
again_unlink(struct evio *io, struct evsock *es)
{
	if (!es->be.queued)
		return;
	if (es->be.again_prev != NULL)
		es->be.again_prev->be.again_next = es->be.again_next;
	else
		io->be.again_head = es->be.again_next;
	if (es->be.again_next != NULL)
		es->be.again_next->be.again_prev = es->be.again_prev;
	else
		io->be.again_tail = es->be.again_prev;
	es->be.again_prev = es->be.again_next = NULL;
	es->be.queued = 0;
}

static void
on_set_readable(uv_poll_t *p, int status, int events)
{
	struct evio *io = p->data;
	struct epoll_event ev[EVIO_BATCH];
	int n;

	(void)status, (void)events;
	n = epoll_wait(io->be.epfd, ev, EVIO_BATCH, 0);
	/*
	 * A callback may close other sockets of its session: they are marked
	 * closed (fd SOCK_INVALID) and their memory lives on until the loop's
	 * close callbacks, after this returns.
	 */
	for (int i = 0; i < n; i++) {
		struct evsock *es = ev[i].data.ptr;
		uint32_t e = ev[i].events;
		unsigned out = 0;

		if (es->fd == SOCK_INVALID)
			continue;
		if (e & (EPOLLIN | EPOLLHUP))
			out |= EVIO_READ;
		if (e & EPOLLOUT)
			out |= EVIO_WRITE;
		if (e & EPOLLRDHUP)
			out |= EVIO_HUP | EVIO_READ;
		if (e & EPOLLERR)
			out |= EVIO_ERROR;
		es->cb(es, out);
	}
}

/* The sockets that stopped reading early, in the order they asked. */
static void
on_idle(uv_idle_t *h)
{
	struct evio *io = h->data;
	unsigned pass = ++io->be.again_pass; /* those that ask again now wait for the next turn */
	struct evsock *es;

	while ((es = io->be.again_head) != NULL && es->be.again_pass != pass) {
		again_unlink(io, es);
		es->cb(es, EVIO_READ);
	}
	if (io->be.again_head == NULL)
		uv_idle_stop(&io->be.idle);
}

int
evio_init(struct evio *io, uv_loop_t *loop)
{
	int r;

	io->loop = loop;
	io->be.again_head = io->be.again_tail = NULL;
	io->be.again_pass = 0;
	io->be.handles = 0;
	if ((io->be.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	if ((r = uv_poll_init(loop, &io->be.poll, io->be.epfd)) != 0) {
		close(io->be.epfd);
		io->be.epfd = -1;
		return r;
	}
	io->be.poll.data = io;
	io->be.handles++;
	uv_idle_init(loop, &io->be.idle);
	io->be.idle.data = io;
	io->be.handles++;
	return uv_poll_start(&io->be.poll, UV_READABLE, on_set_readable);
}

static void
on_own_handle_closed(uv_handle_t *h)
{
	struct evio *io = h->data;

	if (--io->be.handles == 0) {
		close(io->be.epfd);
		io->be.epfd = -1;
	}
}

void
evio_close(struct evio *io)
{
	if (io->be.handles == 0)
		return;
	if (!uv_is_closing((uv_handle_t *)&io->be.poll))
		uv_close((uv_handle_t *)&io->be.poll, on_own_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&io->be.idle))
		uv_close((uv_handle_t *)&io->be.idle, on_own_handle_closed);
}

int
evsock_open(struct evio *io, struct evsock *es, sock_t fd, unsigned want, evsock_cb cb)
{
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = es};

	(void)want;
	es->fd = fd;
	es->cb = cb;
	es->io = io;
	es->closed = NULL;
	es->be.again_prev = es->be.again_next = NULL;
	es->be.queued = 0;
	if (epoll_ctl(io->be.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		es->fd = SOCK_INVALID;
		return -errno;
	}
	return 0;
}

void
evsock_want(struct evsock *es, unsigned want)
{
	(void)es, (void)want; /* every edge is reported anyway */
}

int
evsock_error(struct evsock *es)
{
	return sock_pending_error(es->fd);
}

void
evsock_again(struct evsock *es)
{
	struct evio *io = es->io;

	if (es->be.queued || es->fd == SOCK_INVALID)
		return;
	es->be.queued = 1;
	es->be.again_pass = io->be.again_pass;
	es->be.again_next = NULL;
	es->be.again_prev = io->be.again_tail;
	if (io->be.again_tail != NULL)
		io->be.again_tail->be.again_next = es;
	else
		io->be.again_head = es;
	io->be.again_tail = es;
	uv_idle_start(&io->be.idle, on_idle); /* no-op when already started */
}

void
evsock_close(struct evsock *es, int reset, void (*closed)(struct evsock *es))
{
	if (es->fd != SOCK_INVALID) {
		again_unlink(es->io, es);
		if (reset) {
			struct linger l = {1, 0};

			setsockopt(es->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(es->fd); /* leaves the epoll set with it */
		es->fd = SOCK_INVALID;
	}
	if (closed != NULL)
		closed(es);
}
