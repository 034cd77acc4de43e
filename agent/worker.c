#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "session.h"

struct workers {
	struct worker *w;
	unsigned n;
};

static const struct {
	int family;
	const char *addr;
} listen_addrs[WORKER_MAX_LISTENERS] = {
    {AF_INET, "127.0.0.1"},
    {AF_INET6, "::1"},
};

/* ---- accept ---- */

static unsigned
listener_index(const struct worker *w, const uv_stream_t *server)
{
	return (unsigned)((const uv_tcp_t *)server - w->listeners);
}

static void
log_ratelimited(time_t *last, const char *what, int err)
{
	time_t now = time(NULL);

	if (now == *last)
		return;
	*last = now;
	log_warnx("%s: %s", what, uv_strerror(err));
}

static void
on_connection(uv_stream_t *server, int status)
{
	static _Thread_local time_t last_error_log, last_pause_log;
	struct worker *w = server->data;

	if (status < 0) {
		/* libuv already took the connection off the queue (its EMFILE
		 * trick) so the listener does not spin; the client sees a reset. */
		stat_add(&w->stats.accept_errors, 1);
		log_ratelimited(&last_error_log, "accept failed", status);
		return;
	}
	if (w->draining)
		return;
	if (w->n_sessions >= w->max_sessions) {
		/* Not accepting makes libuv stop watching this listener until
		 * uv_accept runs again: the kernel backlog holds the rest. */
		w->paused |= 1u << listener_index(w, server);
		stat_add(&w->stats.accept_paused, 1);
		log_ratelimited(&last_pause_log, "max_sessions reached, accept paused", UV_EBUSY);
		return;
	}
	session_accept(w, server);
}

/* ---- stop and drain ---- */

static void
worker_finish(struct worker *w)
{
	if (!uv_is_closing((uv_handle_t *)&w->stop_async))
		uv_close((uv_handle_t *)&w->stop_async, NULL);
	if (!uv_is_closing((uv_handle_t *)&w->drain_timer))
		uv_close((uv_handle_t *)&w->drain_timer, NULL);
}

void
worker_session_gone(struct worker *w)
{
	w->n_sessions--;
	if (w->draining) {
		if (w->n_sessions == 0)
			worker_finish(w);
		return;
	}
	for (unsigned i = 0; i < w->n_listeners && w->n_sessions < w->max_sessions; i++) {
		if (w->paused & (1u << i)) {
			w->paused &= ~(1u << i);
			session_accept(w, (uv_stream_t *)&w->listeners[i]);
		}
	}
}

static void
on_drain_deadline(uv_timer_t *t)
{
	struct worker *w = t->data;

	if (w->n_sessions > 0)
		log_info("worker %u: drain deadline passed, closing %u sessions", w->index,
		    w->n_sessions);
	session_close_all(w);
}

static void
on_stop(uv_async_t *a)
{
	struct worker *w = a->data;

	w->draining = 1;
	for (unsigned i = 0; i < w->n_listeners; i++)
		uv_close((uv_handle_t *)&w->listeners[i], NULL);
	if (w->n_sessions == 0) {
		worker_finish(w);
		return;
	}
	uv_timer_start(&w->drain_timer, on_drain_deadline, w->cfg->drain_timeout_ms, 0);
}

static void
worker_main(void *arg)
{
	struct worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* ---- listeners ---- */

static int
listen_socket(int family, const char *addr, uint16_t port, int reuseport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, addr, &sin->sin_addr);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		len = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* SO_REUSEADDR lets a restart bind over connections in TIME_WAIT; it
	 * never lets two sockets listen on one port. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
	    (family == AF_INET6 &&
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/*
 * SO_REUSEPORT would let a second agent (same uid) share our port and
 * silently take half our connections. A plain bind first proves the port is
 * free. Returns 1 when usable, 0 when the family is unavailable here.
 */
static int
probe_port(int family, const char *addr, uint16_t port, char *err, size_t errlen)
{
	int fd = listen_socket(family, addr, port, 0);

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	if (fd == -EADDRINUSE) {
		snprintf(err, errlen, "port %u on %s is already in use (another agent running?)",
		    (unsigned)port, addr);
		return -1;
	}
	if (family == AF_INET6 && (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT))
		return 0;
	snprintf(err, errlen, "cannot bind %s port %u: %s", addr, (unsigned)port, strerror(-fd));
	return -1;
}

static int
worker_init(struct worker *w, unsigned index, const unsigned char *use, const struct config *cfg,
    struct store *store, unsigned max_sessions, char *err, size_t errlen)
{
	w->index = index;
	w->cfg = cfg;
	w->store = store;
	w->max_sessions = max_sessions;
	if (uv_loop_init(&w->loop) != 0) {
		snprintf(err, errlen, "cannot create an event loop");
		return -1;
	}
	w->loop_ready = 1;
	uv_async_init(&w->loop, &w->stop_async, on_stop);
	w->stop_async.data = w;
	uv_timer_init(&w->loop, &w->drain_timer);
	w->drain_timer.data = w;

	for (unsigned i = 0; i < WORKER_MAX_LISTENERS; i++) {
		uv_tcp_t *l = &w->listeners[w->n_listeners];
		int fd, r;

		if (!use[i])
			continue;
		fd = listen_socket(
		    listen_addrs[i].family, listen_addrs[i].addr, cfg->listen_port, 1);
		if (fd < 0) {
			snprintf(err, errlen, "cannot bind %s port %u: %s", listen_addrs[i].addr,
			    (unsigned)cfg->listen_port, strerror(-fd));
			return -1;
		}
		uv_tcp_init(&w->loop, l);
		l->data = w;
		w->n_listeners++;
		if ((r = uv_tcp_open(l, fd)) != 0 ||
		    (r = uv_listen((uv_stream_t *)l, 4096, on_connection)) != 0) {
			snprintf(err, errlen, "cannot listen on %s port %u: %s",
			    listen_addrs[i].addr, (unsigned)cfg->listen_port, uv_strerror(r));
			return -1;
		}
	}
	return 0;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Release a worker whose loop is not (or no longer) running. */
static void
worker_destroy(struct worker *w)
{
	if (!w->loop_ready)
		return;
	uv_walk(&w->loop, close_walk, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&w->loop) != 0)
		log_warnx("worker %u: event loop still had handles at exit", w->index);
	if (w->pool.in_use != 0)
		log_warnx("worker %u: %zu relay buffers not returned", w->index, w->pool.in_use);
	bufpool_destroy(&w->pool);
}

int
workers_start(
    struct workers **out, const struct config *cfg, struct store *store, char *err, size_t errlen)
{
	struct workers *ws = calloc(1, sizeof(*ws));
	unsigned char use[WORKER_MAX_LISTENERS];
	unsigned n = cfg->workers, per_worker, started = 0;
	long cpus;

	*out = NULL;
	if (ws == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < WORKER_MAX_LISTENERS; i++) {
		int r = probe_port(
		    listen_addrs[i].family, listen_addrs[i].addr, cfg->listen_port, err, errlen);

		if (r < 0)
			goto fail;
		use[i] = (unsigned char)r;
		if (r == 0)
			log_warnx(
			    "IPv6 loopback unavailable: only IPv4 connections can be redirected");
	}
	if (n == 0) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? (unsigned)cpus : 1;
	}
	/* The session limit is split evenly: each worker decides alone. */
	per_worker = (cfg->max_sessions + n - 1) / n;
	ws->w = calloc(n, sizeof(*ws->w));
	if (ws->w == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (ws->n = 0; ws->n < n; ws->n++) {
		if (worker_init(&ws->w[ws->n], ws->n, use, cfg, store, per_worker, err, errlen) !=
		    0) {
			ws->n++;
			goto fail;
		}
	}
	for (; started < n; started++) {
		if (uv_thread_create(&ws->w[started].thread, worker_main, &ws->w[started]) != 0) {
			snprintf(err, errlen, "cannot start worker thread %u", started);
			goto fail;
		}
	}
	*out = ws;
	return 0;
fail:
	for (unsigned i = 0; i < started; i++) {
		uv_async_send(&ws->w[i].stop_async);
		uv_thread_join(&ws->w[i].thread);
	}
	for (unsigned i = 0; i < ws->n; i++)
		worker_destroy(&ws->w[i]);
	free(ws->w);
	free(ws);
	return -1;
}

void
workers_stop(struct workers *ws, struct proxy_stats_snapshot *final)
{
	if (ws == NULL)
		return;
	for (unsigned i = 0; i < ws->n; i++)
		uv_async_send(&ws->w[i].stop_async);
	for (unsigned i = 0; i < ws->n; i++) {
		uv_thread_join(&ws->w[i].thread);
		worker_destroy(&ws->w[i]);
	}
	if (final != NULL)
		workers_get_stats(ws, final);
	free(ws->w);
	free(ws);
}

#define LOAD(field) atomic_load_explicit(&w->stats.field, memory_order_relaxed)

void
workers_get_stats(struct workers *ws, struct proxy_stats_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		out->accepted += LOAD(accepted);
		out->active += LOAD(active);
		out->relayed += LOAD(relayed);
		out->failed += LOAD(failed);
		out->refused += LOAD(refused);
		out->by_self += LOAD(by_self);
		out->bytes_up += LOAD(bytes_up);
		out->bytes_down += LOAD(bytes_down);
		out->accept_errors += LOAD(accept_errors);
		out->accept_paused += LOAD(accept_paused);
	}
}
