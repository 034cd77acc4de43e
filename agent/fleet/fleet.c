/*
 * fleet.c: the NATS connection (fleet.h), with the NATS C client.
 *
 * A thread of its own makes the connection, and makes it again whenever
 * the library gives up on it: the library reconnects by itself after a
 * disconnect, but drops a server that refuses its credentials twice and
 * then closes for good. Each attempt is a plain connect, so a refusal comes
 * back with its reason ("Authorization Violation", "SSL handshake error:
 * unable to get local issuer certificate"), which is what an operator needs
 * to read in the log and the health. Every new connection gets a new
 * generation number: users of the old one (a JetStream context) notice and
 * make theirs again (fleet_jetstream).
 */
#include "fleet.h"

#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "platform.h"

#define FLEET_MAX_SERVERS  16
#define FLEET_RETRY_MIN_MS 250
#define FLEET_RETRY_MAX_MS 5000
#define FLEET_DRAIN_MS     2000 /* a replaced connection's time to finish what it was doing */

struct fleet {
	natsOptions *opts; /* the fleet thread's (and fleet_close's) */
	pthread_t thread;
	int running;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	natsConnection *nc; /* the current connection, or NULL between attempts */
	unsigned gen;       /* counts connections made */
	int connected;
	int closed;   /* the library closed nc: make a new one */
	int stopping; /* fleet_close: stop trying */
	char last_error[512];
	char server[256];              /* the one connected to, redacted */
	char servers[CONFIG_URLS_MAX]; /* all of them, redacted: for messages */
	unsigned seed;                 /* the jitter's */
	uint64_t print;                /* what opts were made from (fleet_reconfigure) */
	/* fleet_reconfigure's options, taken up by the thread for its next connection */
	natsOptions *next_opts;
	char next_servers[CONFIG_URLS_MAX];
};

int
fleet_available(void)
{
	return 1;
}

/*
 * The servers as they may be logged: "nats://user:secret@host:4222" becomes
 * "nats://host:4222" (URLs in the config may carry a password or a token).
 */
static void
redact(const char *urls, char *out, size_t len)
{
	size_t o = 0;

	while (*urls != '\0' && o + 1 < len) {
		const char *end = urls + strcspn(urls, ", \t"), *scheme = strstr(urls, "://");
		const char *at = NULL;

		for (const char *c = urls; c < end; c++)
			if (*c == '@')
				at = c;
		if (scheme != NULL && scheme < end && at != NULL) {
			o += (size_t)snprintf(
			    out + o, len - o, "%.*s", (int)(scheme + 3 - urls), urls);
			urls = at + 1;
		}
		while (urls < end && o + 1 < len)
			out[o++] = *urls++;
		while ((*urls == ',' || *urls == ' ' || *urls == '\t') && o + 1 < len)
			out[o++] = *urls++;
	}
	out[o < len ? o : len - 1] = '\0';
}

static void
set_error(struct fleet *f, const char *what)
{
	int changed;

	pthread_mutex_lock(&f->lock);
	changed = strcmp(f->last_error, what) != 0;
	snprintf(f->last_error, sizeof(f->last_error), "%s", what);
	pthread_mutex_unlock(&f->lock);
	if (changed)
		log_warnx("fleet: %s", what);
}

/* "STATUS: library text" for the latest failure of a NATS call. */
static void
nats_reason(natsStatus s, const char *text, const char *what, char *out, size_t len)
{
	const char *where;

	/* The library's text starts with its source position: "(conn.c:1905): ". */
	if (text != NULL && text[0] == '(' && (where = strstr(text, "): ")) != NULL)
		text = where + 3;
	snprintf(out, len, "%s: %s%s%.300s", what, natsStatus_GetText(s),
	    text != NULL && text[0] != '\0' ? ": " : "", text != NULL ? text : "");
}

static void
on_reconnected(natsConnection *nc, void *arg)
{
	struct fleet *f = arg;
	char url[256] = "";

	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	pthread_mutex_lock(&f->lock);
	if (nc != f->nc) { /* one fleet_reconfigure replaced */
		pthread_mutex_unlock(&f->lock);
		return;
	}
	/* (a drop just before it became f->nc had its callback ignored) */
	f->connected = natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
	f->last_error[0] = '\0';
	redact(url, f->server, sizeof(f->server));
	pthread_mutex_unlock(&f->lock);
	log_info("fleet: connected to %s", f->server);
}

static void
on_disconnected(natsConnection *nc, void *arg)
{
	struct fleet *f = arg;
	const char *text = NULL;
	char why[600];

	natsConnection_GetLastError(nc, &text);
	snprintf(why, sizeof(why), "disconnected from %s%s%.300s", f->server,
	    text != NULL && text[0] != '\0' ? ": " : "", text != NULL ? text : "");
	pthread_mutex_lock(&f->lock);
	if (nc != f->nc) { /* a replaced connection, closed on purpose */
		pthread_mutex_unlock(&f->lock);
		return;
	}
	f->connected = 0;
	pthread_mutex_unlock(&f->lock);
	set_error(f, why);
}

/* The library gave up on the connection (or fleet_close closed it). */
static void
on_closed(natsConnection *nc, void *arg)
{
	struct fleet *f = arg;

	pthread_mutex_lock(&f->lock);
	if (nc != f->nc) { /* a replaced connection */
		pthread_mutex_unlock(&f->lock);
		return;
	}
	f->connected = 0;
	f->closed = 1;
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->lock);
}

/* Asynchronous errors: a permission violation, a slow consumer, ... */
static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
	struct fleet *f = arg;
	const char *text = NULL;
	char why[600];

	(void)sub;
	pthread_mutex_lock(&f->lock);
	if (nc != f->nc) { /* a replaced connection */
		pthread_mutex_unlock(&f->lock);
		return;
	}
	pthread_mutex_unlock(&f->lock);
	natsConnection_GetLastError(nc, &text);
	nats_reason(err, text, "NATS", why, sizeof(why));
	set_error(f, why);
}

/* 250 ms doubling to 5 s, +-25%: a fleet's agents do not all come back at once. */
static int64_t
next_delay(struct fleet *f, int attempts)
{
	int64_t base = FLEET_RETRY_MIN_MS;

	for (int i = 1; i < attempts && base < FLEET_RETRY_MAX_MS; i++)
		base *= 2;
	if (base > FLEET_RETRY_MAX_MS)
		base = FLEET_RETRY_MAX_MS;
	f->seed = f->seed * 1103515245u + 12345u;
	return base * 3 / 4 + (int64_t)(f->seed >> 16) % (base / 2 + 1);
}

static int64_t
reconnect_delay(natsConnection *nc, int attempts, void *arg)
{
	(void)nc;
	return next_delay(arg, attempts);
}

/* Wait ms, or until fleet_close or fleet_reconfigure. Returns 1 when stopping. Under no lock. */
static int
pause_ms(struct fleet *f, int64_t ms)
{
	struct timespec until;
	int stopping;

	clock_deadline_ms(&until, (unsigned)ms);
	pthread_mutex_lock(&f->lock);
	while (!f->stopping && f->next_opts == NULL &&
	       pthread_cond_timedwait(&f->wake, &f->lock, &until) != ETIMEDOUT)
		;
	stopping = f->stopping;
	pthread_mutex_unlock(&f->lock);
	return stopping;
}

/*
 * A connection replaced by fleet_reconfigure while it still worked is
 * drained, not cut: a console's call being answered on it (an Agent.Reload
 * that changed the settings) still gets its reply out. It closes itself
 * once drained, within FLEET_DRAIN_MS; retire() then destroys it.
 */
static natsConnection *
drain(natsConnection *old)
{
	if (natsConnection_DrainTimeout(old, FLEET_DRAIN_MS) == NATS_OK)
		return old;
	natsConnection_Destroy(old); /* not connected: nothing to drain */
	return NULL;
}

static void
retire(struct fleet *f, natsConnection **old)
{
	for (int i = 0; *old != NULL && i < (FLEET_DRAIN_MS + 500) / 50; i++)
		if (natsConnection_IsClosed(*old) || pause_ms(f, 50)) /* stopping: cut it */
			break;
	natsConnection_Destroy(*old); /* NULL is ignored */
	*old = NULL;
}

/* Connect, and connect again whenever the library closes the connection. */
static void *
fleet_main(void *arg)
{
	struct fleet *f = arg;
	int attempts = 0;

	platform_thread_name("ra-fleet");
	for (;;) {
		natsConnection *nc = NULL, *old, *draining = NULL;
		const char *text = NULL;
		char why[600];
		int replaced = 0, closed;
		natsStatus s;

		pthread_mutex_lock(&f->lock);
		while (!f->stopping && f->nc != NULL && !f->closed && f->next_opts == NULL)
			pthread_cond_wait(&f->wake, &f->lock);
		if (f->stopping) {
			pthread_mutex_unlock(&f->lock);
			break;
		}
		if (f->next_opts != NULL) { /* fleet_reconfigure: the next connection uses them */
			natsOptions_Destroy(f->opts); /* a connection keeps its own copy */
			f->opts = f->next_opts;
			f->next_opts = NULL;
			memcpy(f->servers, f->next_servers, sizeof(f->servers));
			replaced = f->nc != NULL && !f->closed;
			attempts = 0;
		}
		old = f->nc;
		f->nc = NULL;
		f->connected = 0;
		f->closed = 0;
		pthread_mutex_unlock(&f->lock);
		/* Users keep the old one alive through their own references. */
		if (old != NULL) {
			if (replaced)
				draining = drain(old);
			else
				natsConnection_Destroy(old);
			attempts = 0;
		}
		s = natsConnection_Connect(&nc, f->opts);
		if (s != NATS_OK) {
			text = nats_GetLastError(NULL);
			nats_reason(s, text, "cannot connect", why, sizeof(why));
			snprintf(why + strlen(why), sizeof(why) - strlen(why), " (servers %.200s)",
			    f->servers);
			set_error(f, why);
			natsConnection_Destroy(nc);
			retire(f, &draining);
			if (pause_ms(f, next_delay(f, ++attempts)))
				break;
			continue;
		}
		attempts = 0;
		pthread_mutex_lock(&f->lock);
		f->nc = nc;
		f->gen++;
		/* closed before it was ours (its callback ignored): make another */
		closed = f->closed = natsConnection_IsClosed(nc);
		pthread_mutex_unlock(&f->lock);
		if (!closed)
			on_reconnected(nc, f);
		retire(f, &draining);
	}
	return NULL;
}

/* Split "a, b,c" into at most max URLs (pointers into buf). */
static int
split_urls(char *buf, const char **urls, int max)
{
	int n = 0;

	for (char *p = buf; *p != '\0' && n < max;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			*p++ = '\0';
		if (*p == '\0')
			break;
		urls[n++] = p;
		p += strcspn(p, ", \t");
	}
	return n;
}

/* FNV-1a over n bytes, on from h. */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	for (const unsigned char *c = p; n-- > 0; c++)
		h = (h ^ *c) * 1099511628211u;
	return h;
}

/*
 * What a connection is made from: the settings and the files' contents
 * (a certificate rotated in place is a change too).
 */
static uint64_t
fingerprint(const struct config *cfg, const char *uuid)
{
	const char *parts[] = {cfg->fleet_servers, cfg->fleet_tls_ca, cfg->fleet_tls_cert,
	    cfg->fleet_tls_key, cfg->fleet_creds, cfg->agent_id, uuid};
	uint64_t h = 14695981039346656037u;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char buf[4096];
		size_t n;
		FILE *fp;

		h = fnv(h, parts[i], strlen(parts[i]) + 1);
		if (i == 0 || i >= 5 || parts[i][0] == '\0' || (fp = fopen(parts[i], "rb")) == NULL)
			continue;
		while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
			h = fnv(h, buf, n);
		fclose(fp);
	}
	return h;
}

/*
 * The library's options for cfg, with f's callbacks (f may be NULL: only
 * checked), and the servers as they may be logged. 0, or -1 with err set.
 */
static int
make_opts(natsOptions **out, struct fleet *f, const struct config *cfg, const char *uuid,
    char *redacted, size_t redacted_len, char *err, size_t errlen)
{
	char servers[CONFIG_URLS_MAX], name[128], inbox[64];
	const char *urls[FLEET_MAX_SERVERS];
	natsOptions *o = NULL;
	int n, secure = 0;
	natsStatus s;

	*out = NULL;
	snprintf(servers, sizeof(servers), "%s", cfg->fleet_servers);
	redact(cfg->fleet_servers, redacted, redacted_len);
	n = split_urls(servers, urls, FLEET_MAX_SERVERS);
	for (int i = 0; i < n; i++)
		secure |= strncmp(urls[i], "tls://", 6) == 0;
	snprintf(name, sizeof(name), "redirect-agent %s (%s)", uuid, cfg->agent_id);
	snprintf(inbox, sizeof(inbox), "_INBOX.agent-%s", uuid);
	if ((s = natsOptions_Create(&o)) != NATS_OK ||
	    (s = natsOptions_SetServers(o, urls, n)) != NATS_OK ||
	    (s = natsOptions_SetName(o, name)) != NATS_OK ||
	    (s = natsOptions_SetMaxReconnect(o, -1)) != NATS_OK ||
	    (s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, f)) != NATS_OK ||
	    (s = natsOptions_SetReconnectedCB(o, on_reconnected, f)) != NATS_OK ||
	    (s = natsOptions_SetDisconnectedCB(o, on_disconnected, f)) != NATS_OK ||
	    (s = natsOptions_SetClosedCB(o, on_closed, f)) != NATS_OK ||
	    (s = natsOptions_SetErrorHandler(o, on_error, f)) != NATS_OK ||
	    (s = natsOptions_SetPingInterval(o, 10000)) != NATS_OK ||
	    (s = natsOptions_SetMaxPingsOut(o, 3)) != NATS_OK ||
	    /* Console calls are answered at once, not at the flusher's next turn (~1 ms). */
	    (s = natsOptions_SetSendAsap(o, true)) != NATS_OK ||
	    /* Replies come back under the agent's own inbox: a server can then let each
	     * agent read only its own (deploy/nats/). */
	    (s = natsOptions_SetCustomInboxPrefix(o, inbox)) != NATS_OK) {
		nats_reason(s, nats_GetLastError(NULL), "NATS options", err, errlen);
		goto fail;
	}
	if (secure || cfg->fleet_tls_ca[0] != '\0') {
		if ((s = natsOptions_SetSecure(o, true)) != NATS_OK) {
			nats_reason(s, nats_GetLastError(NULL), "NATS options", err, errlen);
			goto fail;
		}
		if (cfg->fleet_tls_ca[0] != '\0' &&
		    (s = natsOptions_LoadCATrustedCertificates(o, cfg->fleet_tls_ca)) != NATS_OK) {
			nats_reason(s, nats_GetLastError(NULL), cfg->fleet_tls_ca, err, errlen);
			goto fail;
		}
	}
	if (cfg->fleet_tls_cert[0] != '\0' &&
	    (s = natsOptions_LoadCertificatesChain(o, cfg->fleet_tls_cert, cfg->fleet_tls_key)) !=
		NATS_OK) {
		nats_reason(s, nats_GetLastError(NULL), cfg->fleet_tls_cert, err, errlen);
		goto fail;
	}
	if (cfg->fleet_creds[0] != '\0' &&
	    (s = natsOptions_SetUserCredentialsFromFiles(o, cfg->fleet_creds, NULL)) != NATS_OK) {
		nats_reason(s, nats_GetLastError(NULL), cfg->fleet_creds, err, errlen);
		goto fail;
	}
	*out = o;
	return 0;
fail:
	natsOptions_Destroy(o);
	return -1;
}

int
fleet_open(struct fleet **out, const struct config *cfg, const char *uuid, char *err, size_t errlen)
{
	struct fleet *f = calloc(1, sizeof(*f));
	pthread_condattr_t ca;

	*out = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->wake, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(f->last_error, sizeof(f->last_error), "connecting");
	f->seed = (unsigned)(uintptr_t)f;
	f->print = fingerprint(cfg, uuid);
	if (make_opts(&f->opts, f, cfg, uuid, f->servers, sizeof(f->servers), err, errlen) != 0)
		goto fail;
	if (pthread_create(&f->thread, NULL, fleet_main, f) != 0) {
		snprintf(err, errlen, "cannot start the fleet thread");
		goto fail;
	}
	f->running = 1;
	log_info("fleet: connecting to %s", f->servers);
	*out = f;
	return 0;
fail:
	fleet_close(f);
	return -1;
}

int
fleet_check(const struct config *cfg, const char *uuid, char *err, size_t errlen)
{
	char servers[CONFIG_URLS_MAX];
	natsOptions *o;

	if (make_opts(&o, NULL, cfg, uuid, servers, sizeof(servers), err, errlen) != 0)
		return -1;
	natsOptions_Destroy(o);
	return 0;
}

int
fleet_reconfigure(
    struct fleet *f, const struct config *cfg, const char *uuid, char *err, size_t errlen)
{
	uint64_t print = fingerprint(cfg, uuid);
	char servers[CONFIG_URLS_MAX];
	natsOptions *o;

	if (print == f->print)
		return 0;
	if (make_opts(&o, f, cfg, uuid, servers, sizeof(servers), err, errlen) != 0)
		return -1;
	f->print = print;
	pthread_mutex_lock(&f->lock);
	natsOptions_Destroy(f->next_opts); /* two reloads in a row: the last one counts */
	f->next_opts = o;
	memcpy(f->next_servers, servers, sizeof(f->next_servers));
	snprintf(f->last_error, sizeof(f->last_error), "connecting");
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->lock);
	log_info("fleet: the connection settings changed: connecting to %s", servers);
	return 1;
}

void
fleet_close(struct fleet *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = 1;
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->lock);
	if (f->running)
		pthread_join(f->thread, NULL);
	if (f->nc != NULL) {
		struct timespec until;

		/* The library calls on_closed from its own thread: wait for it (2 s at
		 * most), so that no callback of ours runs after f is freed. */
		natsConnection_Close(f->nc);
		clock_deadline_ms(&until, 2000);
		pthread_mutex_lock(&f->lock);
		while (
		    !f->closed && pthread_cond_timedwait(&f->wake, &f->lock, &until) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&f->lock);
		natsConnection_Destroy(f->nc);
	}
	natsOptions_Destroy(f->opts);
	natsOptions_Destroy(f->next_opts);
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int
fleet_connected(struct fleet *f, char *why, size_t whylen)
{
	int up;

	pthread_mutex_lock(&f->lock);
	up = f->connected && f->nc != NULL &&
	     natsConnection_Status(f->nc) == NATS_CONN_STATUS_CONNECTED;
	if (!up)
		snprintf(why, whylen, "NATS: %.400s",
		    f->last_error[0] != '\0' ? f->last_error : "not connected");
	pthread_mutex_unlock(&f->lock);
	return up;
}

int
fleet_jetstream(struct fleet *f, void *js_options, void **js, unsigned *gen)
{
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	if (f->nc != NULL &&
	    natsConnection_JetStream((jsCtx **)js, f->nc, (jsOptions *)js_options) == NATS_OK) {
		*gen = f->gen;
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int
fleet_attach(struct fleet *f, int (*fn)(void *nc, void *arg), void *arg, unsigned *gen)
{
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	if (f->nc != NULL && f->connected) {
		rc = fn(f->nc, arg);
		*gen = f->gen;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

unsigned
fleet_generation(struct fleet *f)
{
	unsigned gen;

	pthread_mutex_lock(&f->lock);
	gen = f->gen;
	pthread_mutex_unlock(&f->lock);
	return gen;
}
