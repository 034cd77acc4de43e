/*
 * plain_relay: the reference point issue 2 names, "a plain single-threaded C
 * relay": accept what nft redirects, connect to SO_ORIGINAL_DST with a mark,
 * copy bytes both ways, pass FINs on. No policy, no record, no timers. For
 * bench.sh --plain only; not part of the product.
 *
 *   plain_relay PORT MARK      (listens on 127.0.0.1:PORT; runs until killed)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h, which clashes with netinet/in.h */
#endif

struct side {
	int fd;
	struct side *peer;
	char *pending; /* bytes read from this side the peer has not taken */
	size_t off, len;
	int eof, shut, readable, hup; /* hup: its FIN arrived (EPOLLRDHUP) */
};

struct conn {
	struct side a, b;
};

static char buf[BUF];
static struct conn *closed[512]; /* freed after the batch that closed them */
static int n_closed;

static void
conn_close(struct conn *c)
{
	close(c->a.fd);
	close(c->b.fd);
	free(c->a.pending);
	free(c->b.pending);
	c->a.fd = c->b.fd = -1; /* events already fetched for it are skipped */
	closed[n_closed++] = c; /* at most two per event, 256 events per batch */
}

/* Move s's bytes to its peer as far as they go. Returns -1 when the connection closed. */
static int
pump(struct conn *c, struct side *s)
{
	struct side *p = s->peer;

	for (;;) {
		if (s->pending != NULL) {
			ssize_t n = send(p->fd, s->pending + s->off, s->len - s->off, MSG_NOSIGNAL);

			if (n < 0 && errno != EAGAIN)
				return conn_close(c), -1;
			if (n > 0)
				s->off += (size_t)n;
			if (s->off < s->len)
				return 0;
			free(s->pending);
			s->pending = NULL;
		}
		if (s->eof) {
			if (!p->shut) {
				shutdown(p->fd, SHUT_WR);
				p->shut = 1;
			}
			if (p->eof && s->shut)
				return conn_close(c), -1;
			return 0;
		}
		if (!s->readable)
			return 0;
		ssize_t n = recv(s->fd, buf, BUF, 0);

		if (n == 0) {
			s->eof = 1;
			continue;
		}
		if (n < 0) {
			if (errno == EAGAIN) {
				s->readable = 0;
				return 0;
			}
			return conn_close(c), -1;
		}
		if ((size_t)n < BUF) { /* drained; with the FIN in, that was the end */
			s->readable = 0;
			s->eof = s->hup;
		}
		ssize_t w = send(p->fd, buf, (size_t)n, MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN)
			return conn_close(c), -1;
		if (w < 0)
			w = 0;
		if (w < n) {
			s->len = (size_t)(n - w);
			s->off = 0;
			s->pending = malloc(s->len);
			if (s->pending == NULL)
				return conn_close(c), -1;
			memcpy(s->pending, buf + w, s->len);
		}
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct epoll_event ev = {.events = EPOLLIN}, evs[256];
	unsigned long port = 0, mark = 0;
	char *end1 = NULL, *end2 = NULL;
	int one = 1, l, ep;

	if (argc == 3) {
		port = strtoul(argv[1], &end1, 10);
		mark = strtoul(argv[2], &end2, 0);
	}
	if (argc != 3 || *end1 != '\0' || *end2 != '\0' || port == 0 || port > 65535 || mark == 0 ||
	    mark > 0xffffffffUL) {
		fprintf(stderr, "usage: plain_relay PORT(1-65535) MARK(non-zero, 32 bits)\n");
		return 2;
	}
	sin.sin_port = htons((uint16_t)port);
	uint32_t so_mark = (uint32_t)mark;
	l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(l, 4096) != 0) {
		perror("plain_relay: listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.data.ptr = NULL; /* the listener */
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			struct side *s = evs[i].data.ptr;

			if (s == NULL) {
				for (int k = 0; k < 64; k++) {
					struct sockaddr_in dst;
					socklen_t dl = sizeof(dst);
					int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK), u;
					struct conn *c;

					if (fd < 0)
						break;
					if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dl) !=
						0 ||
					    (u = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) <
						0) {
						close(fd);
						continue;
					}
					setsockopt(
					    u, SOL_SOCKET, SO_MARK, &so_mark, sizeof(so_mark));
					setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					if (connect(u, (struct sockaddr *)&dst, sizeof(dst)) != 0 &&
					    errno != EINPROGRESS) {
						close(fd);
						close(u);
						continue;
					}
					if ((c = calloc(1, sizeof(*c))) == NULL) {
						close(fd);
						close(u);
						continue;
					}
					c->a.fd = fd;
					c->b.fd = u;
					c->a.peer = &c->b;
					c->b.peer = &c->a;
					ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
					ev.data.ptr = &c->a;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
					ev.data.ptr = &c->b;
					epoll_ctl(ep, EPOLL_CTL_ADD, u, &ev);
				}
				continue;
			}
			if (s->fd < 0)
				continue;
			/* Which conn: its first member, a, lies below b. */
			struct conn *c = (struct conn *)(s < s->peer ? s : s->peer);

			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
				s->readable = 1;
			if (evs[i].events & EPOLLRDHUP)
				s->hup = 1;
			if ((evs[i].events & EPOLLOUT) && pump(c, s->peer) < 0)
				continue;
			if (pump(c, s) < 0)
				continue;
		}
		while (n_closed > 0)
			free(closed[--n_closed]);
	}
}
