/*
 * redirect_win.c: redirect.h on Windows. The agent installs its WFP
 * provider, sublayer, callouts and filters at start (wfp_filters.c: what is
 * redirected, what is not, policy bypass rules); the companion callout
 * driver redirects what those filters hand it to the listener and attaches a
 * redirect context holding the original addresses. For each accepted
 * connection: the original destination comes from the context, the records
 * blob is read and set again, unchanged, on the upstream socket before it
 * connects (redirect_wfp.c), which is how the callout knows that connection
 * as ours and lets it pass.
 *
 * States: user mode cannot read the callout's redirect state, so a
 * connection is "none", or "by_self" when it comes from one of the agent's
 * own upstream sockets (a loop: the callout redirected our own connection).
 *
 * Not yet run on Windows: see deploy/windows/README.md.
 */
#include "redirect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policy.h"
#include "redirect_wfp.h"
#include "wfp_filters.h"

struct redirect {
	const struct config *cfg; /* the running config: a reload changes it in place */
	struct wfp_filters *wfp;  /* NULL: the filters could not be installed */
	int bypass_warned;
};

/*
 * Without its filters the agent still starts, serves its API and relays
 * what reaches it, and says why nothing is redirected: in its log and as
 * degraded health (redirect_rules_present). A host without a filter engine
 * (wine) or a start before the Base Filtering Engine is such a case.
 */
int
redirect_setup(const struct config *cfg, struct redirect **out, char *err, size_t errlen)
{
	char why[512];

	if (cfg->mode != MODE_REDIRECT) {
		snprintf(err, errlen, "[proxy] mode = tproxy is Linux only");
		return -EINVAL;
	}
	if ((*out = calloc(1, sizeof(**out))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	(*out)->cfg = cfg;
	if (cfg->fail_mode == FAIL_CLOSED)
		log_warnx("[proxy] fail_mode = closed is not implemented on Windows: the agent's "
			  "filters go with it (a dynamic WFP session)");
	if (wfp_filters_install(cfg, &(*out)->wfp, why, sizeof(why)) != 0)
		log_warnx("%s: connections are not redirected", why);
	return 0;
}

void
redirect_teardown(struct redirect *r)
{
	if (r == NULL)
		return;
	wfp_filters_remove(r->wfp);
	free(r);
}

/*
 * New CIDRs or ports: the base filters replaced in one transaction (the old
 * stay if that fails), then the bypass filters. Without filters (none could
 * be installed at start) a reload tries once more. Not run on Windows.
 */
int
redirect_reload(struct redirect *r, const struct policy *p, char *err, size_t errlen)
{
	if (r == NULL)
		return 0;
	if (r->wfp == NULL) {
		if (wfp_filters_install(r->cfg, &r->wfp, err, errlen) != 0) {
			log_warnx("%s: connections are still not redirected", err);
			return 0;
		}
	} else if (wfp_filters_set_base(r->wfp, r->cfg, err, errlen) != 0) {
		return -EIO;
	}
	return redirect_apply_bypass(r, p, err, errlen);
}

/* The filters live in a dynamic session: they went with the agent's process. */
int
redirect_cleanup(const struct config *cfg, int force, char *msg, size_t msglen)
{
	(void)cfg, (void)force;
	snprintf(msg, msglen,
	    "nothing to remove: on Windows the agent's WFP filters go with its process");
	return 0;
}

/* Whether the agent's filters are installed. */
int
redirect_rules_present(struct redirect *r)
{
	return r != NULL && r->wfp != NULL;
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
 * Bypass means "never redirected": a permit filter per rule, above the
 * callout's. Without the agent's filters nothing is redirected anyway.
 */
int
redirect_apply_bypass(struct redirect *r, const struct policy *p, char *err, size_t errlen)
{
	struct policy_bypass rules[POLICY_MAX_BYPASS_RULES];
	size_t n = p != NULL ? policy_bypass_list(p, rules, POLICY_MAX_BYPASS_RULES) : 0;

	if (r == NULL)
		return 0;
	if (r->wfp == NULL) {
		if (n > 0 && !r->bypass_warned) {
			log_warnx("bypass rules: the agent's WFP filters are not installed, so "
				  "nothing is redirected and nothing needs bypassing");
			r->bypass_warned = 1;
		}
		return 0;
	}
	if (n > POLICY_MAX_BYPASS_RULES)
		n = POLICY_MAX_BYPASS_RULES; /* the policy compiler refuses more */
	return wfp_filters_set_bypass(r->wfp, rules, n, err, errlen) == 0 ? 0 : -EIO;
}
