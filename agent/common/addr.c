#include "addr.h"

#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <afunix.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#endif

static void
set_err(char *err, size_t errlen, const char *fmt, const char *what)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, fmt, what);
}

static size_t
family_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

int
addr_parse_cidr(const char *s, struct cidr *out, char *err, size_t errlen)
{
	char host[ADDR_CIDR_STRLEN];
	const char *slash = strchr(s, '/');
	size_t hostlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned long prefix;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (hostlen == 0 || hostlen >= sizeof(host)) {
		set_err(err, errlen, "'%s' is not a CIDR", s);
		return -EINVAL;
	}
	memcpy(host, s, hostlen);
	host[hostlen] = '\0';

	if (inet_pton(AF_INET, host, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, host, out->addr) == 1)
		out->family = AF_INET6;
	else {
		set_err(err, errlen, "'%s' is not a CIDR", s);
		return -EINVAL;
	}
	len = family_len(out->family);

	if (slash == NULL) {
		prefix = len * 8;
	} else {
		char *end;

		if (!isdigit((unsigned char)slash[1])) {
			set_err(err, errlen, "'%s' has no prefix length after '/'", s);
			return -EINVAL;
		}
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || prefix > len * 8) {
			set_err(err, errlen, "'%s' has a bad prefix length", s);
			return -EINVAL;
		}
	}
	out->prefix = (uint8_t)prefix;

	for (size_t bit = prefix; bit < len * 8; bit++) {
		if (out->addr[bit / 8] & (0x80u >> (bit % 8))) {
			set_err(err, errlen, "'%s' has host bits set beyond its prefix", s);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Split s on commas and blanks and call fn for each token. Tokens longer than
 * the scratch buffer are errors rather than silently cut.
 */
static int
parse_list(const char *s, int (*fn)(const char *tok, void *arg, char *err, size_t errlen),
    void *arg, char *err, size_t errlen)
{
	char tok[128];

	while (*s != '\0') {
		size_t n = 0;
		int r;

		while (*s == ',' || isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		while (s[n] != '\0' && s[n] != ',' && !isspace((unsigned char)s[n]))
			n++;
		if (n >= sizeof(tok)) {
			set_err(err, errlen, "list entry too long near '%.40s'", s);
			return -EINVAL;
		}
		memcpy(tok, s, n);
		tok[n] = '\0';
		s += n;
		if ((r = fn(tok, arg, err, errlen)) != 0)
			return r;
	}
	return 0;
}

struct cidr_acc {
	struct cidr *out;
	size_t max, n;
};

static int
cidr_tok(const char *tok, void *arg, char *err, size_t errlen)
{
	struct cidr_acc *acc = arg;

	if (acc->n == acc->max) {
		set_err(err, errlen, "too many entries (at '%s')", tok);
		return -E2BIG;
	}
	if (addr_parse_cidr(tok, &acc->out[acc->n], err, errlen) != 0)
		return -EINVAL;
	acc->n++;
	return 0;
}

int
addr_parse_cidr_list(
    const char *s, struct cidr *out, size_t max, size_t *n, char *err, size_t errlen)
{
	struct cidr_acc acc = {out, max, 0};
	int r = parse_list(s, cidr_tok, &acc, err, errlen);

	*n = r == 0 ? acc.n : 0;
	return r;
}

struct port_acc {
	struct port_range *out;
	size_t max, n;
};

static int
port_tok(const char *tok, void *arg, char *err, size_t errlen)
{
	struct port_acc *acc = arg;
	int r;

	if (acc->n == acc->max) {
		set_err(err, errlen, "too many entries (at '%s')", tok);
		return -E2BIG;
	}
	if ((r = parse_port_range(tok, &acc->out[acc->n])) != 0) {
		set_err(err, errlen,
		    r == -ERANGE ? "'%s' is a reversed port range"
				 : "'%s' is not a port or port range (1-65535)",
		    tok);
		return -EINVAL;
	}
	acc->n++;
	return 0;
}

int
addr_parse_port_list(
    const char *s, struct port_range *out, size_t max, size_t *n, char *err, size_t errlen)
{
	struct port_acc acc = {out, max, 0};
	int r = parse_list(s, port_tok, &acc, err, errlen);

	*n = r == 0 ? acc.n : 0;
	return r;
}

const char *
addr_format_cidr(const struct cidr *c, char *buf, size_t len)
{
	char a[ADDR_STRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		a[0] = '\0';
	snprintf(buf, len, "%s/%u", a, (unsigned)c->prefix);
	return buf;
}

bool
addr_cidr_contains(const struct cidr *c, int family, const uint8_t *addr)
{
	unsigned full, rest;

	if (c->family != family)
		return false;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(c->addr, addr, full) != 0)
		return false;
	if (rest != 0) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rest));

		if ((c->addr[full] & mask) != (addr[full] & mask))
			return false;
	}
	return true;
}

int
endpoint_from_sockaddr(struct endpoint *e, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(e, 0, sizeof(*e));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		e->family = AF_INET;
		e->port = ntohs(sin->sin_port);
		memcpy(e->addr, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		e->port = ntohs(sin6->sin6_port);
		if (memcmp(sin6->sin6_addr.s6_addr, v4mapped, 12) == 0) {
			e->family = AF_INET;
			memcpy(e->addr, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			e->family = AF_INET6;
			memcpy(e->addr, sin6->sin6_addr.s6_addr, 16);
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

int
addr_parse_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *out)
{
	struct endpoint e;

	memset(&e, 0, sizeof(e));
	e.port = port;
	if (inet_pton(AF_INET, host, e.addr) == 1)
		e.family = AF_INET;
	else if (inet_pton(AF_INET6, host, e.addr) == 1)
		e.family = AF_INET6;
	else
		return -EINVAL;
	return endpoint_to_sockaddr(&e, out) < 0 ? -EINVAL : 0;
}

int
endpoint_to_sockaddr(const struct endpoint *e, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (e->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(e->port);
		memcpy(&sin->sin_addr, e->addr, 4);
		return (int)sizeof(*sin);
	}
	if (e->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(e->port);
		memcpy(sin6->sin6_addr.s6_addr, e->addr, 16);
		return (int)sizeof(*sin6);
	}
	return -EAFNOSUPPORT;
}

/* Dotted quad without printf: the writer formats several per connection. */
static void
format_ipv4(const uint8_t *a, char *buf)
{
	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];

		if (v >= 100)
			*buf++ = (char)('0' + v / 100);
		if (v >= 10)
			*buf++ = (char)('0' + v / 10 % 10);
		*buf++ = (char)('0' + v % 10);
		*buf++ = i < 3 ? '.' : '\0';
	}
}

const char *
endpoint_format_addr(const struct endpoint *e, char *buf, size_t len)
{
	if (e->family == AF_INET && len >= INET_ADDRSTRLEN)
		format_ipv4(e->addr, buf);
	else if (e->family == 0 || inet_ntop(e->family, e->addr, buf, (socklen_t)len) == NULL)
		buf[0] = '\0';
	return buf;
}

bool
endpoint_equal(const struct endpoint *a, const struct endpoint *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->addr, b->addr, family_len(a->family)) == 0;
}

bool
endpoint_is_loopback(const struct endpoint *e)
{
	static const uint8_t v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

	if (e->family == AF_INET)
		return e->addr[0] == 127;
	if (e->family == AF_INET6)
		return memcmp(e->addr, v6lo, 16) == 0;
	return false;
}

int
addr_unix(struct sockaddr_un *sun, const char *path, char *err, size_t errlen)
{
	size_t len = strlen(path);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (len >= sizeof(sun->sun_path)) {
		set_err(err, errlen, "%s: socket path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sun->sun_path, path, len + 1);
	return 0;
}
