/*
 * evio_epoll.h: the Linux backend's fields of struct evsock and struct evio
 * (evio.h; the code is evio_epoll.c). Included by evio.h only.
 */
#ifndef RA_EVIO_EPOLL_H
#define RA_EVIO_EPOLL_H

struct evsock_backend {
	struct evsock *again_prev, *again_next; /* on io's list for evsock_again */
	unsigned again_pass;
	unsigned queued;
};

struct evio_backend {
	int epfd;
	uv_poll_t poll; /* the epoll set, readable when a socket has events */
	uv_idle_t idle; /* runs while sockets wait on the again list */
	struct evsock *again_head, *again_tail;
	unsigned again_pass;
	unsigned handles; /* poll and idle, until closed */
};

#endif
