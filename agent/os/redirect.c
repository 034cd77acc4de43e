/*
 * redirect.c: the parts of redirect.h that do not depend on the platform:
 * the listener's address, the registry of the agent's own
 * upstream ports, and the records and context kept with each row.
 */
#include "redirect.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

const char *
redirect_listen_addr(const struct config *cfg, int family)
{
	if (cfg->mode == MODE_TPROXY)
		return family == AF_INET6 ? "::" : "0.0.0.0";
	return family == AF_INET6 ? "::1" : "127.0.0.1";
}

/*
 * Local ports of the agent's live upstream sockets, per family, counted
 * (connect() may give two sockets one port towards different peers). A
 * connection that arrives from one of them came straight back from us.
 */
static _Atomic uint16_t upstream_ports[2][65536];

void
redirect_note_upstream(const struct endpoint *local, int delta)
{
	if (local->family == 0)
		return;
	if (delta > 0)
		atomic_fetch_add_explicit(&upstream_ports[local->family == AF_INET6][local->port],
		    1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&upstream_ports[local->family == AF_INET6][local->port],
		    1, memory_order_relaxed);
}

int
redirect_from_own_upstream(const struct endpoint *peer)
{
	return peer->family != 0 &&
	       atomic_load_explicit(&upstream_ports[peer->family == AF_INET6][peer->port],
		   memory_order_relaxed) != 0;
}

void
redirect_info_encode(
    struct redirect_info *out, const struct config *cfg, const struct endpoint *peer)
{
	struct records_v1 rec;
	struct context_v1 ctx;

	memset(&rec, 0, sizeof(rec));
	rec.incoming_mark = out->records_mark;
	rec.own_mark = cfg->mark;
	rec.orig_dst = out->orig_dst;
	out->records_len = (uint8_t)records_encode(out->records, sizeof(out->records), &rec);
	memset(&ctx, 0, sizeof(ctx));
	ctx.orig_dst = out->orig_dst;
	ctx.orig_src = *peer;
	snprintf(ctx.agent_id, sizeof(ctx.agent_id), "%s", cfg->agent_id);
	out->context_len = (uint8_t)context_encode(out->context, sizeof(out->context), &ctx);
}
