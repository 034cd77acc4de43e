/*
 * wfp_filters.h: the agent's own objects in the Windows Filtering Platform,
 * managed from user mode (fwpmu.h), so that the companion callout driver
 * only redirects and the agent decides what: the same split as nft rules
 * and the agent's listener on Linux.
 *
 * At start, in one transaction of a dynamic session (the engine removes
 * them when the agent's session ends, however it ends):
 *   - a provider and a sublayer of the agent's (wfp_keys.h);
 *   - the callouts at ALE_CONNECT_REDIRECT_V4 and _V6 that the driver
 *     registers in the kernel under the same keys;
 *   - per layer, in the sublayer, the highest weight first: permit the
 *     agent's own executable (its upstream sockets are never redirected),
 *     permit loopback, permit [proxy] exclude_cidrs, permit each policy
 *     bypass rule, and hand TCP to [proxy] redirect_ports (within
 *     redirect_cidrs, when given) to the callout.
 * A new policy replaces the bypass filters in a transaction of their own.
 *
 * The plan (wfp_plan_*) is what the filters are, made from the config and
 * the bypass rules without any Windows call: tests/windows runs it.
 *
 * Not yet run on Windows: wine has no filter engine (FwpmEngineOpen0 answers
 * RPC_S_CANNOT_SUPPORT). See deploy/windows/README.md.
 */
#ifndef RA_WFP_FILTERS_H
#define RA_WFP_FILTERS_H

#include <windows.h>
#include <winsock2.h>

#include <fwpmu.h>
#include <stddef.h>

#include "config.h"
#include "policy.h"

enum wfp_kind {
	WFP_PERMIT_SELF,     /* the agent's executable */
	WFP_PERMIT_LOOPBACK, /* loopback traffic */
	WFP_PERMIT_EXCLUDED, /* [proxy] exclude_cidrs */
	WFP_PERMIT_BYPASS,   /* one policy bypass rule */
	WFP_CALLOUT,         /* to the driver: redirected */
};

/* Weights within the sublayer: a higher one is decided first. */
#define WFP_WEIGHT_SELF     15
#define WFP_WEIGHT_LOOPBACK 14
#define WFP_WEIGHT_EXCLUDED 13
#define WFP_WEIGHT_BYPASS   12
#define WFP_WEIGHT_CALLOUT  1

struct wfp_filter {
	int v6; /* the layer: ALE_CONNECT_REDIRECT_V6, else _V4 */
	enum wfp_kind kind;
	UINT8 weight;
	FWPM_FILTER_CONDITION0 *conds; /* into the plan */
	UINT32 n_conds;
	/* The callout's: where to redirect, for the driver (the filter's
	 * rawContext): agent pid << 32 | v6 << 16 | listener port. */
	UINT64 context;
};

/* Filters and the condition values they point into, allocated once. */
struct wfp_plan {
	struct wfp_filter *filters;
	size_t n_filters;
	FWPM_FILTER_CONDITION0 *conds;
	size_t n_conds, max_conds;
	FWP_V4_ADDR_AND_MASK *v4;
	FWP_V6_ADDR_AND_MASK *v6;
	FWP_RANGE0 *ranges;
	size_t n_v4, n_v6, n_ranges;
};

/*
 * The base filters, both layers: self (when app_id is not NULL; the plan
 * points at it, the caller keeps it), loopback, excluded, callout (to
 * [proxy] listen_port of process agent_pid). Returns 0, or -ENOMEM with
 * nothing to free.
 */
int wfp_plan_base(
    struct wfp_plan *p, const struct config *cfg, FWP_BYTE_BLOB *app_id, UINT32 agent_pid);

/* One permit filter per bypass rule and layer it applies to. Returns 0 or -ENOMEM. */
int wfp_plan_bypass(struct wfp_plan *p, const struct policy_bypass *rules, size_t n);

void wfp_plan_free(struct wfp_plan *p);

struct wfp_filters;

/*
 * Open the filter engine (a dynamic session) and add the provider, the
 * sublayer, the callouts and the base filters in one transaction. Returns
 * 0 with *out set, or -1 with err naming the step and the error (and
 * nothing left in the engine).
 */
int wfp_filters_install(
    const struct config *cfg, struct wfp_filters **out, char *err, size_t errlen);

/*
 * Replace the base filters with cfg's (a reload changed the CIDRs or
 * ports), in one transaction. Returns 0, or -1 with err set (the old stay).
 */
int wfp_filters_set_base(struct wfp_filters *f, const struct config *cfg, char *err, size_t errlen);

/* Replace the bypass filters, in one transaction. Returns 0, or -1 with err set (the old stay). */
int wfp_filters_set_bypass(
    struct wfp_filters *f, const struct policy_bypass *rules, size_t n, char *err, size_t errlen);

/* Remove everything (closing the dynamic session does) and free f. NULL is ignored. */
void wfp_filters_remove(struct wfp_filters *f);

#endif
