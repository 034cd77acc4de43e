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
#include "conn.h"
#include "platform.h"
#include "records.h"

/* What the records say about a connection: enum redirect_state (conn.h). */

#define REDIRECT_RECORDS_MAX RECORDS_V1_LEN
#define REDIRECT_CONTEXT_MAX CONTEXT_V1_MAXLEN

/* What the kernel tells about one accepted connection. */
struct redirect_info {
	struct endpoint orig_dst;  /* where the client was really going */
	uint32_t records_mark;     /* the cooperating proxies' bits on the SYN */
	enum redirect_state state; /* derived from records_mark and this agent's mark */
	/* A loop's second pass: it came back although marked to escape every
	 * redirect. Never relayed again. */
	unsigned escape_failed : 1;
	/* The serialized records and context (records.h), kept with the row. */
	uint8_t records_len, context_len;
	uint8_t records[REDIRECT_RECORDS_MAX];
	/* What the upstream socket must carry besides the mark: on Windows the
	 * WFP records blob as queried (heap; the caller frees it), NULL on Linux. */
	void *pass_on;
	size_t pass_on_len;
	uint8_t context[REDIRECT_CONTEXT_MAX];
};

struct policy;
struct redirect;

/*
 * Prepare the host: install the agent's redirect rules and the sysctls they
 * need. Replaces rules left behind by a crashed instance. Call at start-up,
 * before connections arrive. Returns 0 with *out set, or a negative errno
 * with the reason in err (and nothing left installed).
 */
int redirect_setup(const struct config *cfg, struct redirect **out, char *err, size_t errlen);

/*
 * Remove the rules (kept with [proxy] fail_mode = closed: connections to the
 * redirected ports are refused until the agent runs again) and free r.
 * NULL is ignored.
 */
void redirect_teardown(struct redirect *r);

/*
 * The configuration's redirect CIDRs, excludes or ports changed (a reload):
 * install the table again (atomically: one transaction replaces it) and the
 * bypass sets of p. Returns 0, or a negative errno with err set (the old
 * table stays).
 */
int redirect_reload(struct redirect *r, const struct policy *p, char *err, size_t errlen);

/*
 * After the agent exited, however (systemd's ExecStopPost): remove the
 * rules and routes of agent cfg->agent_id, as a stop would have. With
 * fail_mode = closed they stay, unless force. Refuses (-EBUSY) while a live
 * agent owns them. Returns 0 with what was done in msg, or a negative errno
 * with the reason in msg.
 */
int redirect_cleanup(const struct config *cfg, int force, char *msg, size_t msglen);

/*
 * Whether the installed rules are still in place (an admin may have flushed
 * them). Returns 1, 0, or a negative errno. Not thread-safe with itself: one
 * caller (the RPC thread) at a time, and not after redirect_teardown.
 */
int redirect_rules_present(struct redirect *r);

/*
 * Make a listening socket able to take intercepted connections (TPROXY mode:
 * IP_TRANSPARENT). Call before bind. Returns 0 or a negative errno.
 */
int redirect_prepare_listener(sock_t fd, int family, const struct config *cfg);

/* The address the listener binds for family: loopback, or any in TPROXY mode. */
const char *redirect_listen_addr(const struct config *cfg, int family);

/*
 * Find the original destination and the records of an accepted connection
 * whose local address is local and whose peer is peer. Returns 0; -ENOENT
 * when the connection was not redirected (the original destination is the
 * listener itself); another negative errno when the kernel cannot tell.
 */
int redirect_query(sock_t fd, const struct endpoint *local, const struct endpoint *peer,
    const struct config *cfg, struct redirect_info *out);

/*
 * Make the new upstream socket carry the records before it connects, so that
 * neither this agent nor a cooperating one redirects it again: on Linux the
 * incoming mark plus this agent's bit (a connection that looped, by_self or
 * previously_by_self, also gets the escape mark: it is then neither tracked
 * nor redirected by anyone); on Windows the WFP records blob, pass_on, from
 * redirect_query. Returns 0 or a negative errno.
 */
int redirect_prepare_upstream(sock_t fd, const struct config *cfg, uint32_t records_mark,
    enum redirect_state state, const void *pass_on, size_t pass_on_len);

/*
 * Stop redirecting what the policy's bypass rules match: the kernel skips
 * it from now on (Linux: the bypass sets of the agent's table). Replaces the
 * previous policy's. Same thread rules as redirect_rules_present. Returns 0
 * or a negative errno with err set.
 */
int redirect_apply_bypass(struct redirect *r, const struct policy *p, char *err, size_t errlen);

/*
 * Tell the backend that one of the agent's upstream sockets now uses (delta
 * +1) or no longer uses (-1) the local endpoint local, so that a connection
 * coming back from it can be recognised. Thread-safe, lock-free.
 */
void redirect_note_upstream(const struct endpoint *local, int delta);

/* Whether peer is the local end of one of the agent's live upstream sockets. */
int redirect_from_own_upstream(const struct endpoint *peer);

/*
 * Fill out's records and context (the layouts of records.h) from its
 * orig_dst and records_mark, the peer and this agent's config. For the
 * platform backends' redirect_query.
 */
void redirect_info_encode(
    struct redirect_info *out, const struct config *cfg, const struct endpoint *peer);

#endif
