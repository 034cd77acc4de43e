#include "bufpool.h"

#include <stdlib.h>

void *
bufpool_get(struct bufpool *p)
{
	void *b = p->n_free > 0 ? p->free[--p->n_free] : malloc(BUFPOOL_BUF_SIZE);

	if (b != NULL)
		p->in_use++;
	return b;
}

void
bufpool_put(struct bufpool *p, void *buf)
{
	if (buf == NULL)
		return;
	p->in_use--;
	if (p->n_free < BUFPOOL_KEEP)
		p->free[p->n_free++] = buf;
	else
		free(buf);
}

void
bufpool_destroy(struct bufpool *p)
{
	while (p->n_free > 0)
		free(p->free[--p->n_free]);
}
