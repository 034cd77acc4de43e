/*
 * evio_uv.h: the Windows backend's fields of struct evsock and struct evio
 * (evio.h; the code is evio_uv.c). Included by evio.h only.
 */
#ifndef RA_EVIO_UV_H
#define RA_EVIO_UV_H

struct evsock_backend {
	uv_poll_t poll;
	unsigned want;
	unsigned wrote : 1; /* a writable event came: the connect, if any, is over */
	int error;          /* SO_ERROR read at that event (it clears it), for evsock_error */
	sock_t closing;     /* closed once libuv lets go of the poll handle */
};

struct evio_backend {
	int unused; /* no handles of its own */
};

#endif
