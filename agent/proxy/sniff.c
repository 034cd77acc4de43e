/*
 * sniff.c: the server name from a client's first bytes (sniff.h).
 */
#include "sniff.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/*
 * Copy a DNS name: letters, digits, '-', '.', '_' only; lower case, without
 * the root's trailing dot ("Social.Example." is "social.example"): the same
 * name is the same string, however the client spelt it.
 */
static enum sniff_result
take_name(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	if (n > 0 && p[n - 1] == '.')
		n--;
	if (n == 0 || n > SNIFF_NAME_MAX || n >= outlen || p[0] == '.')
		return SNIFF_NONE;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum(p[i]) && p[i] != '-' && p[i] != '.' && p[i] != '_')
			return SNIFF_NONE;
		out[i] = (char)tolower(p[i]);
	}
	out[n] = '\0';
	return SNIFF_FOUND;
}

static unsigned
be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* A TLS ClientHello: record header, handshake header, then fields to skip. */
static enum sniff_result
tls_sni(const uint8_t *b, size_t len, char *out, size_t outlen)
{
	size_t rec_len, end, at, n;

	if (len < 5)
		return SNIFF_MORE;
	rec_len = be16(b + 3);
	/* The name sits in the first record; a record is at most 16 KiB + 2 KiB. */
	if (rec_len < 4 || rec_len > 18432)
		return SNIFF_NONE;
	if (len < 5 + rec_len)
		return SNIFF_MORE;
	end = 5 + rec_len;
	if (b[5] != 0x01) /* ClientHello */
		return SNIFF_NONE;
	at = 5 + 4 + 2 + 32; /* handshake header, client_version, random */
	if (at + 1 > end)
		return SNIFF_NONE;
	at += 1 + b[at]; /* session_id */
	if (at + 2 > end)
		return SNIFF_NONE;
	at += 2 + be16(b + at); /* cipher_suites */
	if (at + 1 > end)
		return SNIFF_NONE;
	at += 1 + b[at]; /* compression_methods */
	if (at + 2 > end)
		return SNIFF_NONE; /* no extensions */
	n = be16(b + at);
	at += 2;
	if (at + n < end)
		end = at + n;
	while (at + 4 <= end) {
		unsigned type = be16(b + at), elen = be16(b + at + 2);

		at += 4;
		if (at + elen > end)
			return SNIFF_NONE;
		if (type == 0x0000) { /* server_name: list length, then entries */
			size_t p = at + 2, lend = at + elen;

			while (p + 3 <= lend) {
				unsigned kind = b[p], nlen = be16(b + p + 1);

				if (p + 3 + nlen > lend)
					return SNIFF_NONE;
				if (kind == 0) /* host_name */
					return take_name(b + p + 3, nlen, out, outlen);
				p += 3 + nlen;
			}
			return SNIFF_NONE;
		}
		at += elen;
	}
	return SNIFF_NONE;
}

static const char *const methods[] = {
    "GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "TRACE ", "CONNECT "};

/* Whether b could still become, or is, one of the request methods. */
static int
http_start(const uint8_t *b, size_t len, int *partial)
{
	*partial = 0;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t m = strlen(methods[i]);

		if (len >= m && memcmp(b, methods[i], m) == 0)
			return 1;
		if (len < m && memcmp(b, methods[i], len) == 0)
			*partial = 1;
	}
	return 0;
}

/* The host of an authority ("user@host:port", "[v6]:port"), as a name; else SNIFF_NONE. */
static enum sniff_result
authority_host(const uint8_t *v, const uint8_t *ve, char *out, size_t outlen)
{
	const uint8_t *at;

	for (at = ve; at > v && at[-1] != '@'; at--)
		;
	if (at > v)
		v = at;          /* userinfo@ */
	if (ve > v && *v == '[') /* a literal IPv6 address: not a name */
		return SNIFF_NONE;
	for (const uint8_t *c = v; c < ve; c++)
		if (*c == ':') {
			ve = c; /* drop the port */
			break;
		}
	return take_name(v, (size_t)(ve - v), out, outlen);
}

/* One more name the request gives: the first is the name, a different one the alt. */
static void
note_name(struct sniff_names *out, int *have, const char *name)
{
	if (!*have) {
		snprintf(out->name, sizeof(out->name), "%s", name);
		*have = 1;
	} else if (strcmp(name, out->name) != 0 && out->alt[0] == '\0') {
		snprintf(out->alt, sizeof(out->alt), "%s", name);
	}
}

/*
 * The request's names: every Host header, and the host of an absolute-form
 * target ("GET http://host/ HTTP/1.1"). More than one distinct name makes
 * the request ambiguous: out->alt holds the second.
 */
static enum sniff_result
http_host(const uint8_t *b, size_t len, struct sniff_names *out)
{
	const uint8_t *line = memchr(b, '\n', len), *end = b + len, *target, *tend;
	char name[SNIFF_NAME_MAX + 1];
	int have = 0, hosts = 0, invalid = 0;

	if (line == NULL)
		return SNIFF_MORE;
	/* The target: after the method's blank, up to the next blank. */
	target = memchr(b, ' ', (size_t)(line - b));
	tend = target != NULL ? memchr(target + 1, ' ', (size_t)(line - target - 1)) : NULL;
	for (line++; line < end;) {
		const uint8_t *eol = memchr(line, '\n', (size_t)(end - line));
		const uint8_t *v, *ve;

		if (eol == NULL)
			return SNIFF_MORE;
		if (eol == line || (eol == line + 1 && line[0] == '\r'))
			break; /* the end of the head */
		if (eol - line > 5 && strncasecmp((const char *)line, "host:", 5) == 0) {
			for (v = line + 5; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
			for (ve = eol;
			     ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
				;
			hosts++;
			if (authority_host(v, ve, name, sizeof(name)) == SNIFF_FOUND)
				note_name(out, &have, name);
			else
				invalid = 1;
		}
		line = eol + 1;
	}
	if (line >= end)
		return SNIFF_MORE;
	/* Two Host headers, one of them not a name: ambiguous all the same. */
	if (have && hosts > 1 && invalid && out->alt[0] == '\0')
		snprintf(out->alt, sizeof(out->alt), "?");
	/* An absolute-form target names a host of its own. */
	if (target != NULL && tend != NULL) {
		const uint8_t *t = target + 1, *a = NULL;

		if ((size_t)(tend - t) > 7 && strncasecmp((const char *)t, "http://", 7) == 0)
			a = t + 7;
		else if ((size_t)(tend - t) > 8 && strncasecmp((const char *)t, "https://", 8) == 0)
			a = t + 8;
		if (a != NULL) {
			const uint8_t *ae = a;

			while (ae < tend && *ae != '/' && *ae != '?' && *ae != '#')
				ae++;
			if (authority_host(a, ae, name, sizeof(name)) == SNIFF_FOUND)
				note_name(out, &have, name);
		}
	}
	return have ? SNIFF_FOUND : SNIFF_NONE;
}

const char *
sniff_source_name(enum sniff_source s)
{
	return s == SNIFF_SNI ? "sni" : "host";
}

enum sniff_result
sniff_server_name(const uint8_t *buf, size_t len, struct sniff_names *out)
{
	int partial;

	out->name[0] = out->alt[0] = '\0';
	if (len == 0)
		return SNIFF_MORE;
	if (buf[0] == 0x16) { /* TLS handshake record */
		out->source = SNIFF_SNI;
		return tls_sni(buf, len, out->name, sizeof(out->name));
	}
	if (http_start(buf, len, &partial)) {
		out->source = SNIFF_HOST;
		return http_host(buf, len, out);
	}
	return partial ? SNIFF_MORE : SNIFF_NONE;
}
