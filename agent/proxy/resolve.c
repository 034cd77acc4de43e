/*
 * resolve.c: forward proxies' names, off the loop and cached (resolve.h).
 */
#include "resolve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char host[RESOLVE_HOST_MAX];
	uint16_t port;
	int ok;
	struct sockaddr_storage addr;
	uint64_t expires_ms; /* uv_now; 0: unused */
};

struct resolver {
	uv_loop_t *loop;
	struct entry cache[RESOLVE_CACHE];
};

struct resolver *
resolver_new(uv_loop_t *loop)
{
	struct resolver *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->loop = loop;
	return r;
}

void
resolver_free(struct resolver *r)
{
	free(r);
}

static struct entry *
find(struct resolver *r, const char *host, uint16_t port)
{
	uint64_t now = uv_now(r->loop);

	for (size_t i = 0; i < RESOLVE_CACHE; i++) {
		struct entry *e = &r->cache[i];

		if (e->expires_ms > now && e->port == port && strcmp(e->host, host) == 0)
			return e;
	}
	return NULL;
}

static void
remember(struct resolver *r, const char *host, uint16_t port, const struct sockaddr_storage *addr)
{
	struct entry *e = &r->cache[0];
	uint64_t now = uv_now(r->loop);

	/* The same name's old entry, a free one, or the one that expires first. */
	for (size_t i = 0; i < RESOLVE_CACHE; i++) {
		struct entry *c = &r->cache[i];

		if (c->port == port && strcmp(c->host, host) == 0) {
			e = c;
			break;
		}
		if (c->expires_ms < e->expires_ms)
			e = c;
	}
	snprintf(e->host, sizeof(e->host), "%s", host);
	e->port = port;
	e->ok = addr != NULL;
	if (addr != NULL)
		e->addr = *addr;
	e->expires_ms = now + (addr != NULL ? RESOLVE_TTL_S : RESOLVE_FAIL_TTL_S) * 1000u;
}

static void
on_gai(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
	struct resolve_req *req = (struct resolve_req *)gai;
	struct sockaddr_storage ss;
	int found = 0;

	if (status == 0 && res != NULL && res->ai_addrlen <= sizeof(ss)) {
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, res->ai_addr, res->ai_addrlen);
		found = 1;
	}
	uv_freeaddrinfo(res);
	if (status == UV_ECANCELED) {
		req->cb(req, -ECANCELED, NULL);
		return;
	}
	remember(req->r, req->host, req->port, found ? &ss : NULL);
	req->cb(req, found ? 0 : -ENOENT, found ? &ss : NULL);
}

int
resolver_lookup(struct resolver *r, struct resolve_req *req, const char *host, uint16_t port,
    resolve_cb cb, struct sockaddr_storage *out)
{
	struct addrinfo hints;
	struct entry *e = find(r, host, port);
	char service[8];
	int rc;

	if (e != NULL) {
		if (!e->ok)
			return -ENOENT;
		*out = e->addr;
		return 1;
	}
	memset(req, 0, sizeof(*req));
	req->r = r;
	req->port = port;
	req->cb = cb;
	snprintf(req->host, sizeof(req->host), "%s", host);
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = uv_getaddrinfo(r->loop, &req->gai, on_gai, req->host, service, &hints)) != 0)
		return rc == UV_ENOMEM ? -ENOMEM : -EIO;
	return 0;
}

void
resolver_cancel(struct resolve_req *req)
{
	(void)uv_cancel((uv_req_t *)&req->gai);
}
