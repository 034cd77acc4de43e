/*
 * redirect_win.c: redirect.h on Windows. The companion WFP callout driver
 * (kernel mode, not in this repository) redirects the chosen connections to
 * the listener and attaches a redirect context holding the original
 * addresses; the agent installs no rules of its own. For each accepted
 * connection: the original destination comes from the context, the records
 * blob is read and set again, unchanged, on the upstream socket before it
 * connects (redirect_wfp.c), which is how the callout knows that connection
 * as ours and lets it pass.
 *
 * States: user mode cannot read the callout's redirect state, so a
 * connection is "none", or "by_self" when it comes from one of the agent's
 * own upstream sockets (a loop: the callout redirected our own connection).
 *
 * Not yet run on Windows: see README, "Windows".
 */
#include "redirect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policy.h"
#include "redirect_wfp.h"

struct redirect {
	int bypass_warned;
};

int
redirect_setup(const struct config *cfg, struct redirect **out, char *err, size_t errlen)
{
	if (cfg->mode != MODE_REDIRECT) {
		snprintf(err, errlen, "[proxy] mode = tproxy is Linux only");
		return -EINVAL;
	}
	if ((*out = calloc(1, sizeof(**out))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	log_info("WFP: connections are redirected by the callout driver; records are passed on");
	return 0;
}

void
redirect_teardown(struct redirect *r)
{
	free(r);
}

int
redirect_reload(struct redirect *r, const struct policy *p, char *err, size_t errlen)
{
	(void)r, (void)p, (void)err, (void)errlen;
	return 0; /* the callout driver's filters are not the agent's */
}

/* The callout driver redirects; the agent leaves nothing behind to remove. */
int
redirect_cleanup(const struct config *cfg, int force, char *msg, size_t msglen)
{
	(void)cfg, (void)force;
	snprintf(msg, msglen, "nothing to remove: on Windows the agent installs no rules");
	return 0;
}

/* The agent installs nothing on Windows, so nothing of its own can be missing. */
int
redirect_rules_present(struct redirect *r)
{
	(void)r;
	return 1;
}

int
redirect_prepare_listener(sock_t fd, int family, const struct config *cfg)
{
	(void)fd, (void)family, (void)cfg; /* loopback, no transparent mode */
	return 0;
}

static int
wfp_errno(int error)
{
	return error == WSAEOPNOTSUPP           ? -EOPNOTSUPP
	       : error == WSA_NOT_ENOUGH_MEMORY ? -ENOMEM
						: -EIO;
}

int
redirect_query(sock_t fd, const struct endpoint *local, const struct endpoint *peer,
    const struct config *cfg, struct redirect_info *out)
{
	struct wfp_blob ctx = {NULL, 0}, rec = {NULL, 0};
	SOCKADDR_STORAGE remote, orig_local;
	int e;

	memset(out, 0, sizeof(*out));
	if ((e = wfp_query_context(fd, &ctx)) != 0) {
		log_debug("redirect context: %s", wfp_error_reason(e));
		return wfp_errno(e);
	}
	/* No context: the client connected to the listener itself. */
	if (ctx.len == 0) {
		out->orig_dst = *local;
		return -ENOENT;
	}
	if (wfp_context_addresses(&ctx, &remote, &orig_local) != 0 ||
	    endpoint_from_sockaddr(&out->orig_dst, (struct sockaddr *)&remote) != 0) {
		log_debug("redirect context of %zu bytes: not the callout's layout", ctx.len);
		wfp_blob_free(&ctx);
		return -EPROTO;
	}
	wfp_blob_free(&ctx);
	if ((e = wfp_query_records(fd, &rec)) != 0) {
		log_debug("redirect records: %s", wfp_error_reason(e));
		return wfp_errno(e);
	}
	out->pass_on = rec.data; /* the session owns it from here */
	out->pass_on_len = rec.len;
	out->state = redirect_from_own_upstream(peer) ? REDIRECT_BY_SELF : REDIRECT_NONE;
	redirect_info_encode(out, cfg, peer);
	return 0;
}

int
redirect_prepare_upstream(sock_t fd, const struct config *cfg, uint32_t records_mark,
    enum redirect_state state, const void *pass_on, size_t pass_on_len)
{
	struct wfp_blob rec = {(uint8_t *)pass_on, pass_on_len};
	int e;

	(void)cfg, (void)records_mark, (void)state;
	if (pass_on == NULL || pass_on_len == 0)
		return 0; /* nothing redirected it: nothing to pass on */
	if ((e = wfp_set_records(fd, &rec)) != 0) {
		log_debug("set redirect records: %s", wfp_error_reason(e));
		return wfp_errno(e);
	}
	return 0;
}

/*
 * Bypass means "never redirected": on Windows that is the callout's filter,
 * which this agent does not manage. Such connections are relayed and
 * recorded instead; say so once.
 */
int
redirect_apply_bypass(struct redirect *r, const struct policy *p, char *err, size_t errlen)
{
	struct policy_bypass one;

	(void)err, (void)errlen;
	if (r != NULL && !r->bypass_warned && p != NULL && policy_bypass_list(p, &one, 1) > 0) {
		log_warnx("bypass rules are not applied on Windows (the callout's filters decide "
			  "what is redirected): matching connections are relayed and recorded");
		r->bypass_warned = 1;
	}
	return 0;
}
