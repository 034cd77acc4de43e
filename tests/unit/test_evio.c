/* Unit tests: the relay's socket events on Linux (agent/evio_epoll.c), on socket pairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evio.h"

struct probe {
	struct evsock es;
	int other;          /* the pair's other end, written by the test */
	unsigned calls;     /* callbacks */
	unsigned events;    /* their bits, or-ed */
	size_t read_max;    /* bytes read per callback; 0: read nothing */
	size_t got;         /* bytes read in all */
	int again;          /* ask again after a full read */
	struct probe *kill; /* close this one from the callback */
	unsigned closed;    /* its closed callback ran */
};

static void
on_closed(struct evsock *es)
{
	((struct probe *)es)->closed++;
}

static void
on_event(struct evsock *es, unsigned ev)
{
	struct probe *p = (struct probe *)es;
	char buf[4096];

	p->calls++;
	p->events |= ev;
	if (p->kill != NULL) {
		evsock_close(&p->kill->es, 0, on_closed);
		p->kill = NULL;
	}
	if (p->read_max > 0) {
		ssize_t n = recv(es->fd, buf, p->read_max, 0);

		if (n > 0)
			p->got += (size_t)n;
		if (n == (ssize_t)p->read_max && p->again)
			evsock_again(es);
	}
}

static void
pair_open(struct evio *io, struct probe *p)
{
	int sv[2];

	memset(p, 0, sizeof(*p));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	p->other = sv[1];
	assert_int_equal(evsock_open(io, &p->es, sv[0], EVIO_READ, on_event), 0);
}

static void
turns(uv_loop_t *loop, int n)
{
	for (int i = 0; i < n; i++)
		uv_run(loop, UV_RUN_NOWAIT);
}

static void
finish(uv_loop_t *loop, struct evio *io)
{
	evio_close(io);
	uv_run(loop, UV_RUN_DEFAULT); /* returns once io's handles are closed */
	assert_int_equal(uv_loop_close(loop), 0);
}

/* An edge is reported once: bytes left unread do not call again. */
static void
test_edge_once(void **state)
{
	uv_loop_t loop;
	struct evio io;
	struct probe p;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(evio_init(&io, &loop), 0);
	pair_open(&io, &p);
	turns(&loop, 3);
	assert_int_equal(p.calls, 1); /* writable, at once */
	assert_true(p.events & EVIO_WRITE);
	assert_false(p.events & EVIO_READ);

	assert_int_equal(write(p.other, "hello", 5), 5);
	p.events = 0;
	turns(&loop, 3);
	assert_int_equal(p.calls, 2);
	assert_true(p.events & EVIO_READ);
	turns(&loop, 3);
	assert_int_equal(p.calls, 2); /* unread, but no new edge */

	assert_int_equal(write(p.other, "x", 1), 1);
	turns(&loop, 3);
	assert_int_equal(p.calls, 3); /* new bytes, new edge */

	/* The peer's FIN. */
	p.events = 0;
	shutdown(p.other, SHUT_WR);
	turns(&loop, 3);
	assert_int_equal(p.calls, 4);
	assert_true(p.events & EVIO_HUP);
	assert_true(p.events & EVIO_READ);

	evsock_close(&p.es, 0, on_closed);
	assert_int_equal(p.closed, 1); /* at once on Linux */
	assert_int_equal(p.es.fd, SOCK_INVALID);
	close(p.other);
	finish(&loop, &io);
}

/* A reader that stops early is called back until it has read everything. */
static void
test_again(void **state)
{
	uv_loop_t loop;
	struct evio io;
	struct probe p;
	char data[10000];

	(void)state;
	memset(data, 'a', sizeof(data));
	uv_loop_init(&loop);
	assert_int_equal(evio_init(&io, &loop), 0);
	pair_open(&io, &p);
	p.read_max = 1000;
	p.again = 1;
	assert_int_equal(write(p.other, data, sizeof(data)), (ssize_t)sizeof(data));
	turns(&loop, 20);
	assert_int_equal(p.got, sizeof(data));
	/* One edge, then one call per turn: 10 reads of 1000 and a last, empty one. */
	assert_in_range(p.calls, 11, 13);
	assert_false(uv_is_active((uv_handle_t *)&io.be.idle)); /* nothing left to ask again */

	/* Closed while waiting to be called again: never called. */
	assert_int_equal(write(p.other, data, 3000), 3000);
	turns(&loop, 1);
	assert_true(p.es.be.queued);
	evsock_close(&p.es, 0, on_closed);
	assert_null(io.be.again_head);
	{
		unsigned before = p.calls;

		turns(&loop, 3);
		assert_int_equal(p.calls, before);
	}
	close(p.other);
	finish(&loop, &io);
}

/* A callback closes another socket whose events came in the same batch: they are dropped. */
static void
test_close_in_batch(void **state)
{
	uv_loop_t loop;
	struct evio io;
	struct probe a, b;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(evio_init(&io, &loop), 0);
	pair_open(&io, &a);
	pair_open(&io, &b);
	turns(&loop, 2); /* the first, writable, edges */
	a.calls = b.calls = 0;
	a.kill = &b;
	b.kill = &a;
	assert_int_equal(write(a.other, "1", 1), 1);
	assert_int_equal(write(b.other, "2", 1), 1);
	turns(&loop, 2);
	/* Whichever came first closed the other, which was not called. */
	assert_int_equal(a.calls + b.calls, 1);
	assert_int_equal(a.closed + b.closed, 1);
	if (a.closed == 0)
		evsock_close(&a.es, 1, on_closed);
	else
		evsock_close(&b.es, 1, on_closed);
	close(a.other);
	close(b.other);
	finish(&loop, &io);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_edge_once),
	    cmocka_unit_test(test_again),
	    cmocka_unit_test(test_close_in_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
