/*
 * bufpool.h: fixed-size relay buffers, recycled per event loop.
 *
 * A buffer is taken only when a socket is readable and given back as soon
 * as its bytes are written, so an idle connection holds none. One pool per
 * loop thread: no locking.
 */
#ifndef RA_BUFPOOL_H
#define RA_BUFPOOL_H

#include <stddef.h>

#define BUFPOOL_BUF_SIZE (256 * 1024)
#define BUFPOOL_KEEP     16 /* free buffers kept for reuse; more go back to malloc */

struct bufpool {
	void *free[BUFPOOL_KEEP];
	unsigned n_free;
	size_t in_use;
};

/* A BUFPOOL_BUF_SIZE buffer, or NULL when memory is exhausted. */
void *bufpool_get(struct bufpool *p);

/* Give back a buffer from bufpool_get. NULL is ignored. */
void bufpool_put(struct bufpool *p, void *buf);

/* Free the cached buffers. Every buffer must have been put back. */
void bufpool_destroy(struct bufpool *p);

#endif
