/*
 * redirect.h: the one interface to the operating system's redirect mechanism.
 *
 * Linux (redirect_linux.c): an nft table the agent installs; the original
 * destination from SO_ORIGINAL_DST; redirect records are the socket mark.
 * Windows (redirect_wfp.c): a WFP callout; records and context are opaque
 * blobs read and set with the SIO_*_WFP_CONNECTION_REDIRECT_* ioctls.
 */
#ifndef RA_REDIRECT_H
#define RA_REDIRECT_H

#include <stdint.h>

#include "addr.h"
#include "config.h"

enum redirect_state {
	REDIRECT_NONE,               /* no cooperating proxy handled it before */
	REDIRECT_BY_SELF,            /* this agent's own bit already set: a loop */
	REDIRECT_BY_OTHER,           /* another proxy handled it first */
	REDIRECT_PREVIOUSLY_BY_SELF, /* this agent, then another, then back here */
};

const char *redirect_state_name(enum redirect_state st);

/* What the kernel tells about one accepted connection. */
struct redirect_info {
	struct endpoint orig_dst;  /* where the client was really going */
	uint32_t records_mark;     /* the accepted socket's mark (the SYN's fwmark) */
	enum redirect_state state; /* derived from records_mark and this agent's mark */
};

struct redirect;

/*
 * Prepare the host: install the agent's redirect rules and the sysctls they
 * need. Replaces rules left behind by a crashed instance. Call at start-up,
 * before connections arrive. Returns 0 with *out set, or a negative errno
 * with the reason in err (and nothing left installed).
 */
int redirect_setup(const struct config *cfg, struct redirect **out, char *err, size_t errlen);

/* Remove the rules and free r. NULL is ignored. */
void redirect_teardown(struct redirect *r);

/*
 * Whether the installed rules are still in place (an admin may have flushed
 * them). Returns 1, 0, or a negative errno. Not thread-safe with itself: one
 * caller (the RPC thread) at a time, and not after redirect_teardown.
 */
int redirect_rules_present(struct redirect *r);

/*
 * Find the original destination of an accepted connection whose local
 * address is local. Returns 0; -ENOENT when the connection was not redirected
 * (the original destination is the listener itself); another negative errno
 * when the kernel cannot tell.
 */
int redirect_query(
    int fd, const struct endpoint *local, const struct config *cfg, struct redirect_info *out);

/*
 * Make the new upstream socket carry the records before it connects, so that
 * neither this agent nor a cooperating one redirects it again. Returns 0 or a
 * negative errno.
 */
int redirect_prepare_upstream(int fd, const struct config *cfg, const struct redirect_info *info);

#endif
