/*
 * conn.h: the words of the connection record, in one place.
 *
 * A connection's state, its verdict and its redirect state are stored as
 * text (the database, the API, the ECS export) and compared as enums (the
 * proxy, the policy). Each list below is the only spelling of its words:
 * the store's SQL binds these names, the API's filters are checked against
 * them, the policy parses them, and a unit test holds the schema's CHECK to
 * the same list.
 */
#ifndef RA_CONN_H
#define RA_CONN_H

#include <stddef.h>

/* Where a connection is in its life. */
enum conn_state {
	CONN_OPEN,        /* accepted, not yet relaying */
	CONN_RELAYING,    /* connected to its destination */
	CONN_CLOSED,      /* ended after relaying */
	CONN_FAILED,      /* ended without reaching its destination */
	CONN_INTERRUPTED, /* the agent stopped first (written by crash recovery) */
	CONN_STATE_COUNT,
};

/* What was decided for it: the policy's actions, and refuse (not ours to relay). */
enum conn_verdict {
	VERDICT_ALLOW,
	VERDICT_BLOCK,
	VERDICT_BYPASS,
	VERDICT_FORWARD, /* relayed through an HTTP CONNECT proxy */
	VERDICT_REFUSE,  /* not redirected, or a loop to the agent's own listener */
	VERDICT_COUNT,
};

/*
 * What the redirect records say (os/redirect.h). On Linux the records are a
 * set of mark bits, so by_self and previously_by_self are told apart by
 * where the connection comes from.
 */
enum redirect_state {
	REDIRECT_NONE,               /* no cooperating proxy handled it before */
	REDIRECT_BY_SELF,            /* this agent's own bit already set: a loop */
	REDIRECT_BY_OTHER,           /* another proxy handled it first */
	REDIRECT_PREVIOUSLY_BY_SELF, /* this agent, then another, then back here */
	REDIRECT_STATE_COUNT,
};

/* The names, indexed by the enums (each list ends with NULL). */
extern const char *const conn_state_names[CONN_STATE_COUNT + 1];
extern const char *const conn_verdict_names[VERDICT_COUNT + 1];
extern const char *const redirect_state_names[REDIRECT_STATE_COUNT + 1];

/* The name of a value; an out-of-range value gets "unknown". */
const char *conn_state_name(enum conn_state st);
const char *conn_verdict_name(enum conn_verdict v);
const char *redirect_state_name(enum redirect_state st);

/* The value of a name. Returns 0, or -1 when name is not in the list. */
int conn_state_parse(const char *name, enum conn_state *out);
int conn_verdict_parse(const char *name, enum conn_verdict *out);
int redirect_state_parse(const char *name, enum redirect_state *out);

/* The names of a list joined as "a, b, c" into buf (for messages). Returns buf. */
const char *conn_names_join(const char *const *names, char *buf, size_t len);

#endif
