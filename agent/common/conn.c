/*
 * conn.c: the record's words (conn.h).
 */
#include "conn.h"

#include <stdio.h>
#include <string.h>

const char *const conn_state_names[CONN_STATE_COUNT + 1] = {
    [CONN_OPEN] = "open",
    [CONN_RELAYING] = "relaying",
    [CONN_CLOSED] = "closed",
    [CONN_FAILED] = "failed",
    [CONN_INTERRUPTED] = "interrupted",
    [CONN_STATE_COUNT] = NULL,
};

const char *const conn_verdict_names[VERDICT_COUNT + 1] = {
    [VERDICT_ALLOW] = "allow",
    [VERDICT_BLOCK] = "block",
    [VERDICT_BYPASS] = "bypass",
    [VERDICT_FORWARD] = "forward",
    [VERDICT_REFUSE] = "refuse",
    [VERDICT_COUNT] = NULL,
};

const char *const redirect_state_names[REDIRECT_STATE_COUNT + 1] = {
    [REDIRECT_NONE] = "none",
    [REDIRECT_BY_SELF] = "by_self",
    [REDIRECT_BY_OTHER] = "by_other",
    [REDIRECT_PREVIOUSLY_BY_SELF] = "previously_by_self",
    [REDIRECT_STATE_COUNT] = NULL,
};

static const char *
name_of(const char *const *names, unsigned n, unsigned v)
{
	return v < n ? names[v] : "unknown";
}

static int
parse(const char *const *names, const char *name, unsigned *out)
{
	for (unsigned i = 0; names[i] != NULL; i++) {
		if (strcmp(names[i], name) == 0) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

const char *
conn_state_name(enum conn_state st)
{
	return name_of(conn_state_names, CONN_STATE_COUNT, (unsigned)st);
}

const char *
conn_verdict_name(enum conn_verdict v)
{
	return name_of(conn_verdict_names, VERDICT_COUNT, (unsigned)v);
}

const char *
redirect_state_name(enum redirect_state st)
{
	return name_of(redirect_state_names, REDIRECT_STATE_COUNT, (unsigned)st);
}

int
conn_state_parse(const char *name, enum conn_state *out)
{
	unsigned v;

	if (parse(conn_state_names, name, &v) != 0)
		return -1;
	*out = (enum conn_state)v;
	return 0;
}

int
conn_verdict_parse(const char *name, enum conn_verdict *out)
{
	unsigned v;

	if (parse(conn_verdict_names, name, &v) != 0)
		return -1;
	*out = (enum conn_verdict)v;
	return 0;
}

int
redirect_state_parse(const char *name, enum redirect_state *out)
{
	unsigned v;

	if (parse(redirect_state_names, name, &v) != 0)
		return -1;
	*out = (enum redirect_state)v;
	return 0;
}

const char *
conn_names_join(const char *const *names, char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (unsigned i = 0; names[i] != NULL && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i > 0 ? ", " : "", names[i]);
	return buf;
}
