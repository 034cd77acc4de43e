/*
 * worker.c: the event loops, their listeners, and draining at stop
 * (worker.h, worker_internal.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "host.h"
#include "log.h"
#include "owner.h"
#include "platform.h"
#include "redirect.h"
#include "resolve.h"
#include "worker_internal.h"

struct workers {
	struct worker *w;
	unsigned n;
};

/* One listener per family, on the address redirect_listen_addr() names. */
static const int listen_families[WORKER_MAX_LISTENERS] = {AF_INET, AF_INET6};

/* ---- accept ---- */

#define ACCEPT_PER_WAKEUP 64  /* then let the loop serve the sessions */
#define ACCEPT_RETRY_MS   250 /* after EMFILE, try again this soon at the latest */

static void on_listen_readable(uv_poll_t *p, int status, int events);

static void
log_ratelimited(time_t *last, const char *fmt, const char *detail)
{
	time_t now = time(NULL);

	if (now == *last)
		return;
	*last = now;
	log_warnx(fmt, detail);
}

/* Stop watching the listener: pending connections wait in the kernel backlog. */
static void
listener_pause(struct listener *l)
{
	if (l->paused)
		return;
	l->paused = 1;
	uv_poll_stop(&l->poll);
}

static void
listeners_resume(struct worker *w)
{
	for (unsigned i = 0; i < w->n_listeners; i++) {
		struct listener *l = &w->listeners[i];

		if (l->paused && !w->draining && w->n_sessions < w->max_sessions) {
			l->paused = 0;
			uv_poll_start(&l->poll, UV_READABLE, on_listen_readable);
		}
	}
}

static void
on_resume_timer(uv_timer_t *t)
{
	listeners_resume(t->data);
}

static void
on_listen_readable(uv_poll_t *p, int status, int events)
{
	static _Thread_local time_t last_error_log, last_pause_log;
	struct listener *l = p->data;
	struct worker *w = l->w;

	(void)events;
	if (status < 0) {
		log_ratelimited(&last_error_log, "listener error: %s", err_str(status));
		return;
	}
	for (int i = 0; i < ACCEPT_PER_WAKEUP; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		sock_t fd;
		int e;

		if (w->n_sessions >= w->max_sessions) {
			stat_add(&w->stats.accept_paused, 1);
			log_ratelimited(&last_pause_log, "%s",
			    "max_sessions reached: accepting paused "
			    "until a session ends");
			listener_pause(l);
			return;
		}
		fd = sock_accept(l->fd, (struct sockaddr *)&peer, &plen);
		if (fd != SOCK_INVALID) {
			session_accept(w, fd, (struct sockaddr *)&peer, &l->local);
			continue;
		}
		if ((e = sock_errno()) == EAGAIN || e == EWOULDBLOCK)
			return;
		if (e == EINTR || e == ECONNABORTED || e == ECONNRESET)
			continue;
		/* Out of descriptors or memory: leave the connection queued in the
		 * kernel and retry when a session ends or the timer fires, rather
		 * than spin on a listener that stays readable. */
		stat_add(&w->stats.accept_errors, 1);
		log_ratelimited(&last_error_log, "accept failed, pausing: %s", err_str(e));
		listener_pause(l);
		uv_timer_start(&w->resume_timer, on_resume_timer, ACCEPT_RETRY_MS, 0);
		return;
	}
}

/* ---- stop and drain ---- */

static void
on_beat(uv_timer_t *t)
{
	struct worker *w = t->data;

	atomic_store_explicit(&w->beat_ms, uv_hrtime() / 1000000, memory_order_relaxed);
}

/* ---- counted refusals ---- */

static void
flush_refusals(struct worker *w)
{
	if (w->n_refusals > 0)
		store_submit_refusals(w->store, w->refusals, w->n_refusals);
	w->n_refusals = 0;
}

static void
on_refusal_timer(uv_timer_t *t)
{
	flush_refusals(t->data);
}

void
worker_count_refusal(struct worker *w, int32_t uid, const char *reason)
{
	int64_t second = clock_wall_us() / 1000000 * 1000000;
	size_t i;

	if (w->n_refusals > 0 && w->refusals[0].at_us != second)
		flush_refusals(w);
	for (i = 0; i < w->n_refusals; i++)
		if (w->refusals[i].uid == uid && w->refusals[i].reason == reason)
			break;
	if (i == WORKER_REFUSALS) { /* many users at once: hand this second's over now */
		flush_refusals(w);
		i = 0;
	}
	if (i == w->n_refusals)
		w->refusals[w->n_refusals++] = (struct store_refusal){second, uid, reason, 0};
	w->refusals[i].count++;
	if (!uv_is_active((uv_handle_t *)&w->refusal_timer))
		uv_timer_start(&w->refusal_timer, on_refusal_timer, 1000, 0);
}

static void
on_finals_timer(uv_timer_t *t)
{
	session_retry_finals(t->data);
}

void
worker_finals_waiting(struct worker *w)
{
	if (!uv_is_active((uv_handle_t *)&w->finals_timer))
		uv_timer_start(
		    &w->finals_timer, on_finals_timer, WORKER_FINALS_MS, WORKER_FINALS_MS);
}

static void
worker_finish(struct worker *w)
{
	uv_handle_t *hs[] = {(uv_handle_t *)&w->stop_async, (uv_handle_t *)&w->drain_timer,
	    (uv_handle_t *)&w->resume_timer, (uv_handle_t *)&w->beat_timer,
	    (uv_handle_t *)&w->refusal_timer, (uv_handle_t *)&w->finals_timer};

	flush_refusals(w);

	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
		if (!uv_is_closing(hs[i]))
			uv_close(hs[i], NULL);
	evio_close(&w->io); /* no session left: no socket in it */
}

void
worker_session_add(struct worker *w, struct session_link *l)
{
	l->prev = &w->sessions;
	l->next = w->sessions.next;
	w->sessions.next->prev = l;
	w->sessions.next = l;
	w->n_sessions++;
}

void
worker_session_remove(struct worker *w, struct session_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = NULL;
	w->n_sessions--;
	if (w->draining) {
		if (w->n_sessions == 0)
			worker_finish(w);
		return;
	}
	listeners_resume(w);
}

static void
on_listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	sock_close(l->fd);
	l->fd = SOCK_INVALID;
}

static void
on_drain_deadline(uv_timer_t *t)
{
	struct worker *w = t->data;

	if (w->n_sessions > 0)
		log_info("worker %u: drain deadline passed, closing %u sessions", w->index,
		    w->n_sessions);
	/* session_close never frees synchronously, so the list stays walkable. */
	for (struct session_link *l = w->sessions.next; l != &w->sessions; l = l->next)
		session_shutdown(l);
	session_drop_finals(w); /* the store has had its chance */
}

static void
on_stop(uv_async_t *a)
{
	struct worker *w = a->data;

	w->draining = 1;
	for (unsigned i = 0; i < w->n_listeners; i++)
		uv_close((uv_handle_t *)&w->listeners[i].poll, on_listener_closed);
	if (w->n_sessions == 0) {
		worker_finish(w);
		return;
	}
	uv_timer_start(&w->drain_timer, on_drain_deadline,
	    atomic_load_explicit(&w->drain_timeout_ms, memory_order_relaxed), 0);
}

static void
worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	/* Named threads: top -H, perf and the benchmark tell them apart. */
	snprintf(name, sizeof(name), "ra-worker-%u", w->index);
	platform_thread_name(name);
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* ---- listeners ---- */

/*
 * A bound (not yet listening) socket for one family. reuseport: other
 * workers will bind the same port (Linux). Returns 0 with *out set, or a
 * negative errno value.
 */
static int
listen_socket(const struct config *cfg, int family, int reuseport, sock_t *out)
{
	const char *addr = redirect_listen_addr(cfg, family);
	uint16_t port = cfg->listen_port;
	struct sockaddr_storage ss;
	socklen_t len;
	sock_t fd;
	int one = 1, r;

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
	if ((fd = sock_stream(family)) == SOCK_INVALID)
		return -sock_errno();
	if ((r = sock_listen_options(fd, reuseport)) != 0 ||
	    (r = redirect_prepare_listener(fd, family, cfg)) != 0) {
		sock_close(fd);
		return r;
	}
	if ((family == AF_INET6 &&
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, (const char *)&one, sizeof(one)) != 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0) {
		r = -sock_errno();
		sock_close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

/*
 * SO_REUSEPORT would let a second agent (same uid) share our port and
 * silently take half our connections. A plain bind first proves the port is
 * free. Returns 1 when usable, 0 when the family is unavailable here.
 */
static int
probe_port(const struct config *cfg, int family, char *err, size_t errlen)
{
	const char *addr = redirect_listen_addr(cfg, family);
	unsigned port = cfg->listen_port;
	sock_t fd;
	int r = listen_socket(cfg, family, 0, &fd);

	if (r == 0) {
		sock_close(fd);
		return 1;
	}
	if (r == -EADDRINUSE) {
		snprintf(err, errlen, "port %u on %s is already in use (another agent running?)",
		    (unsigned)port, addr);
		return -1;
	}
	if (family == AF_INET6 && (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT))
		return 0;
	snprintf(err, errlen, "cannot bind %s port %u: %s", addr, (unsigned)port, err_str(r));
	return -1;
}

/* A loop's share of [proxy] max_sessions_per_uid (0: no limit). */
static unsigned
per_uid_share(unsigned limit, unsigned n_workers)
{
	return limit > 0 ? (limit + n_workers - 1) / n_workers : 0;
}

static int
worker_init(struct worker *w, unsigned index, const unsigned char *use, const struct config *cfg,
    struct store *store, unsigned max_sessions, unsigned n_workers, char *err, size_t errlen)
{
	int rc;

	w->index = index;
	w->cfg = cfg;
	atomic_init(&w->idle_timeout_s, cfg->idle_timeout_s);
	atomic_init(&w->connect_timeout_ms, cfg->connect_timeout_ms);
	atomic_init(&w->drain_timeout_ms, cfg->drain_timeout_ms);
	w->store = store;
	w->max_sessions = max_sessions;
	w->sessions.prev = w->sessions.next = &w->sessions;
	w->finals.prev = w->finals.next = &w->finals;
	/* Fair share: the limit and the reserve, split evenly like max_sessions.
	 * The table is there even when the limit is off: a reload may set it. */
	w->n_workers = n_workers;
	atomic_init(&w->max_per_uid, 0);
	atomic_init(&w->system_uid_max, cfg->system_uid_max);
	if (cfg->mode == MODE_REDIRECT) {
		atomic_init(&w->max_per_uid, per_uid_share(cfg->max_sessions_per_uid, n_workers));
		w->reserve = max_sessions / 8;
		if (uidcount_init(&w->uids, max_sessions) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (uv_loop_init(&w->loop) != 0) {
		snprintf(err, errlen, "cannot create an event loop");
		return -1;
	}
	w->loop_ready = 1;
	if ((w->resolver = resolver_new(&w->loop)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((rc = evio_init(&w->io, &w->loop)) != 0) {
		snprintf(err, errlen, "cannot set up socket events: %s", err_str(rc));
		return -1;
	}
	/* Only the host's own connections have a local owner to look up. */
	if (cfg->mode == MODE_REDIRECT &&
	    (cfg->owner_lookup != OWNER_NEVER || cfg->max_sessions_per_uid > 0) &&
	    (w->owner = owner_open()) == NULL)
		log_warnx("worker %u: no sock_diag: client owners will not be recorded", index);
	uv_async_init(&w->loop, &w->stop_async, on_stop);
	w->stop_async.data = w;
	uv_timer_init(&w->loop, &w->drain_timer);
	w->drain_timer.data = w;

	uv_timer_init(&w->loop, &w->resume_timer);
	w->resume_timer.data = w;
	uv_timer_init(&w->loop, &w->refusal_timer);
	w->refusal_timer.data = w;
	uv_timer_init(&w->loop, &w->finals_timer);
	w->finals_timer.data = w;
	uv_timer_init(&w->loop, &w->beat_timer);
	w->beat_timer.data = w;
	on_beat(&w->beat_timer);
	uv_timer_start(&w->beat_timer, on_beat, 1000, 1000);
	uv_unref((uv_handle_t *)&w->beat_timer); /* a heartbeat never keeps a loop alive */

	for (unsigned i = 0; i < WORKER_MAX_LISTENERS; i++) {
		struct listener *l = &w->listeners[w->n_listeners];
		sock_t fd = SOCK_INVALID;
		int r;

		if (!use[i])
			continue;
		r = listen_socket(cfg, listen_families[i], 1, &fd);
		if (r == 0 && listen(fd, 4096) != 0)
			r = -sock_errno();
		if (r != 0) {
			int e = -r;

			if (fd != SOCK_INVALID)
				sock_close(fd);
			snprintf(err, errlen, "cannot listen on %s port %u: %s",
			    redirect_listen_addr(cfg, listen_families[i]),
			    (unsigned)cfg->listen_port, err_str(e));
			return -1;
		}
		l->fd = fd;
		l->w = w;
		{
			struct sockaddr_storage ss;
			socklen_t slen = sizeof(ss);

			if (getsockname(fd, (struct sockaddr *)&ss, &slen) != 0 ||
			    endpoint_from_sockaddr(&l->local, (struct sockaddr *)&ss) != 0) {
				snprintf(err, errlen, "getsockname on the listener: %s",
				    err_str(sock_errno()));
				sock_close(fd);
				return -1;
			}
		}
		uv_poll_init_socket(&w->loop, &l->poll, fd);
		l->poll.data = l;
		w->n_listeners++;
		uv_poll_start(&l->poll, UV_READABLE, on_listen_readable);
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
	evio_close(&w->io);
	uv_walk(&w->loop, close_walk, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < w->n_listeners; i++)
		if (w->listeners[i].fd != SOCK_INVALID)
			sock_close(w->listeners[i].fd);
	if (uv_loop_close(&w->loop) != 0)
		log_warnx("worker %u: event loop still had handles at exit", w->index);
	owner_close(w->owner);
	w->owner = NULL;
	resolver_free(w->resolver);
	uidcount_free(&w->uids);
	w->resolver = NULL;
	if (w->pool.in_use != 0)
		log_warnx("worker %u: %zu relay buffers not returned", w->index, w->pool.in_use);
	bufpool_destroy(&w->pool);
}

void
workers_set_limits(struct workers *ws, const struct config *cfg)
{
	for (unsigned i = 0; ws != NULL && i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		if (cfg->mode == MODE_REDIRECT)
			atomic_store_explicit(&w->max_per_uid,
			    per_uid_share(cfg->max_sessions_per_uid, w->n_workers),
			    memory_order_relaxed);
		atomic_store_explicit(
		    &w->system_uid_max, cfg->system_uid_max, memory_order_relaxed);

		atomic_store_explicit(
		    &w->idle_timeout_s, cfg->idle_timeout_s, memory_order_relaxed);
		atomic_store_explicit(
		    &w->connect_timeout_ms, cfg->connect_timeout_ms, memory_order_relaxed);
		atomic_store_explicit(
		    &w->drain_timeout_ms, cfg->drain_timeout_ms, memory_order_relaxed);
	}
}

unsigned
workers_count(const struct config *cfg)
{
	/* Without SO_REUSEPORT (Windows) one loop accepts and relays. */
	if (!PLATFORM_REUSEPORT)
		return 1;
	return cfg->workers != 0 ? cfg->workers : host_cpus();
}

int
workers_start(struct workers **out, const struct config *cfg, struct store *store,
    struct policy_holder *policy, char *err, size_t errlen)
{
	struct workers *ws = calloc(1, sizeof(*ws));
	unsigned char use[WORKER_MAX_LISTENERS];
	unsigned n = workers_count(cfg), per_worker, started = 0;

	*out = NULL;
	if (ws == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < WORKER_MAX_LISTENERS; i++) {
		int r = probe_port(cfg, listen_families[i], err, errlen);

		if (r < 0)
			goto fail;
		use[i] = (unsigned char)r;
		if (r == 0)
			log_warnx(
			    "IPv6 loopback unavailable: only IPv4 connections can be redirected");
	}
	/* The session limit is split evenly: each worker decides alone. */
	per_worker = (cfg->max_sessions + n - 1) / n;
	ws->w = calloc(n, sizeof(*ws->w));
	if (ws->w == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (ws->n = 0; ws->n < n; ws->n++) {
		ws->w[ws->n].policy = policy;
		if (worker_init(
			&ws->w[ws->n], ws->n, use, cfg, store, per_worker, n, err, errlen) != 0) {
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

int
workers_alive(struct workers *ws, uint64_t max_age_ms)
{
	uint64_t now = uv_hrtime() / 1000000;

	for (unsigned i = 0; i < ws->n; i++)
		if (now - atomic_load_explicit(&ws->w[i].beat_ms, memory_order_relaxed) >
		    max_age_ms)
			return 0;
	return 1;
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
		out->previously_by_self += LOAD(previously_by_self);
		out->blocked += LOAD(blocked);
		out->bytes_up += LOAD(bytes_up);
		out->bytes_down += LOAD(bytes_down);
		out->accept_errors += LOAD(accept_errors);
		out->accept_paused += LOAD(accept_paused);
	}
}
