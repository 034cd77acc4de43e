/*
 * wfp_filters.c: the agent's WFP provider, sublayer, callouts and filters
 * (wfp_filters.h).
 */
#include "wfp_filters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wfp_keys.h"

#define WFP_RPC_S_CANNOT_SUPPORT   1764L /* what wine answers */
#define WFP_EPT_S_NOT_REGISTERED   1753L /* the Base Filtering Engine is not running */
#define WFP_FWP_E_ALREADY_EXISTS   ((DWORD)0x80320009L)
#define WFP_FWP_E_CALLOUT_NOTFOUND ((DWORD)0x80320001L)

/* ---- the plan: no Windows call ---- */

static int
plan_alloc(struct wfp_plan *p, size_t filters, size_t conds, size_t addrs, size_t ranges)
{
	memset(p, 0, sizeof(*p));
	p->filters = calloc(filters + 1, sizeof(*p->filters));
	p->conds = calloc(conds + 1, sizeof(*p->conds));
	p->v4 = calloc(addrs + 1, sizeof(*p->v4));
	p->v6 = calloc(addrs + 1, sizeof(*p->v6));
	p->ranges = calloc(ranges + 1, sizeof(*p->ranges));
	p->max_conds = conds;
	if (p->filters == NULL || p->conds == NULL || p->v4 == NULL || p->v6 == NULL ||
	    p->ranges == NULL) {
		wfp_plan_free(p);
		return -ENOMEM;
	}
	return 0;
}

void
wfp_plan_free(struct wfp_plan *p)
{
	free(p->filters);
	free(p->conds);
	free(p->v4);
	free(p->v6);
	free(p->ranges);
	memset(p, 0, sizeof(*p));
}

static struct wfp_filter *
begin_filter(struct wfp_plan *p, int v6, enum wfp_kind kind, UINT8 weight)
{
	struct wfp_filter *f = &p->filters[p->n_filters++];

	f->v6 = v6;
	f->kind = kind;
	f->weight = weight;
	f->conds = &p->conds[p->n_conds];
	f->n_conds = 0;
	return f;
}

static FWPM_FILTER_CONDITION0 *
add_cond(struct wfp_plan *p, struct wfp_filter *f, const GUID *field, FWP_MATCH_TYPE match)
{
	FWPM_FILTER_CONDITION0 *c = &p->conds[p->n_conds++];

	memset(c, 0, sizeof(*c));
	c->fieldKey = *field;
	c->matchType = match;
	f->n_conds++;
	return c;
}

/* A port or a range of them, as the remote port. */
static void
add_port(struct wfp_plan *p, struct wfp_filter *f, const struct port_range *pr)
{
	FWPM_FILTER_CONDITION0 *c;

	if (pr->lo == pr->hi) {
		c = add_cond(p, f, &RA_CONDITION_IP_REMOTE_PORT, FWP_MATCH_EQUAL);
		c->conditionValue.type = FWP_UINT16;
		c->conditionValue.uint16 = pr->lo;
		return;
	}
	c = add_cond(p, f, &RA_CONDITION_IP_REMOTE_PORT, FWP_MATCH_RANGE);
	c->conditionValue.type = FWP_RANGE_TYPE;
	c->conditionValue.rangeValue = &p->ranges[p->n_ranges++];
	c->conditionValue.rangeValue->valueLow.type = FWP_UINT16;
	c->conditionValue.rangeValue->valueLow.uint16 = pr->lo;
	c->conditionValue.rangeValue->valueHigh.type = FWP_UINT16;
	c->conditionValue.rangeValue->valueHigh.uint16 = pr->hi;
}

/* An address block as the remote address; WFP wants IPv4 in host order. */
static void
add_cidr(struct wfp_plan *p, struct wfp_filter *f, const struct cidr *cidr)
{
	FWPM_FILTER_CONDITION0 *c =
	    add_cond(p, f, &RA_CONDITION_IP_REMOTE_ADDRESS, FWP_MATCH_EQUAL);

	if (cidr->family == AF_INET) {
		FWP_V4_ADDR_AND_MASK *m = &p->v4[p->n_v4++];

		m->addr = (UINT32)cidr->addr[0] << 24 | (UINT32)cidr->addr[1] << 16 |
			  (UINT32)cidr->addr[2] << 8 | cidr->addr[3];
		m->mask = cidr->prefix == 0 ? 0 : 0xffffffffu << (32 - cidr->prefix);
		c->conditionValue.type = FWP_V4_ADDR_MASK;
		c->conditionValue.v4AddrMask = m;
	} else {
		FWP_V6_ADDR_AND_MASK *m = &p->v6[p->n_v6++];

		memcpy(m->addr, cidr->addr, 16);
		m->prefixLength = cidr->prefix;
		c->conditionValue.type = FWP_V6_ADDR_MASK;
		c->conditionValue.v6AddrMask = m;
	}
}

static size_t
count_family(const struct cidr *c, size_t n, int family)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += c[i].family == family;
	return k;
}

static void
add_cidrs(struct wfp_plan *p, struct wfp_filter *f, const struct cidr *c, size_t n, int family)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].family == family)
			add_cidr(p, f, &c[i]);
}

int
wfp_plan_base(struct wfp_plan *p, const struct config *cfg, FWP_BYTE_BLOB *app_id, UINT32 agent_pid)
{
	size_t addrs = cfg->n_exclude_cidrs + cfg->n_redirect_cidrs;

	if (plan_alloc(p, 8, 2 * (3 + cfg->n_redirect_ports) + 2 * addrs, addrs,
		2 * cfg->n_redirect_ports) != 0)
		return -ENOMEM;
	for (int v6 = 0; v6 <= 1; v6++) {
		int family = v6 ? AF_INET6 : AF_INET;
		struct wfp_filter *f;
		FWPM_FILTER_CONDITION0 *c;

		if (app_id != NULL) {
			f = begin_filter(p, v6, WFP_PERMIT_SELF, WFP_WEIGHT_SELF);
			c = add_cond(p, f, &RA_CONDITION_ALE_APP_ID, FWP_MATCH_EQUAL);
			c->conditionValue.type = FWP_BYTE_BLOB_TYPE;
			c->conditionValue.byteBlob = app_id;
		}
		f = begin_filter(p, v6, WFP_PERMIT_LOOPBACK, WFP_WEIGHT_LOOPBACK);
		c = add_cond(p, f, &RA_CONDITION_FLAGS, FWP_MATCH_FLAGS_ANY_SET);
		c->conditionValue.type = FWP_UINT32;
		c->conditionValue.uint32 = FWP_CONDITION_FLAG_IS_LOOPBACK;
		if (count_family(cfg->exclude_cidrs, cfg->n_exclude_cidrs, family) > 0) {
			f = begin_filter(p, v6, WFP_PERMIT_EXCLUDED, WFP_WEIGHT_EXCLUDED);
			add_cidrs(p, f, cfg->exclude_cidrs, cfg->n_exclude_cidrs, family);
		}
		/* Destinations given, none of this family: nothing of it is redirected. */
		if (cfg->n_redirect_cidrs > 0 &&
		    count_family(cfg->redirect_cidrs, cfg->n_redirect_cidrs, family) == 0)
			continue;
		f = begin_filter(p, v6, WFP_CALLOUT, WFP_WEIGHT_CALLOUT);
		f->context = (UINT64)agent_pid << 32 | (UINT64)v6 << 16 | cfg->listen_port;
		c = add_cond(p, f, &RA_CONDITION_IP_PROTOCOL, FWP_MATCH_EQUAL);
		c->conditionValue.type = FWP_UINT8;
		c->conditionValue.uint8 = IPPROTO_TCP;
		for (size_t i = 0; i < cfg->n_redirect_ports; i++)
			add_port(p, f, &cfg->redirect_ports[i]);
		add_cidrs(p, f, cfg->redirect_cidrs, cfg->n_redirect_cidrs, family);
	}
	return 0;
}

int
wfp_plan_bypass(struct wfp_plan *p, const struct policy_bypass *rules, size_t n)
{
	size_t conds = 0, addrs = 0, ports = 0;

	for (size_t i = 0; i < n; i++) {
		addrs += rules[i].n_cidrs;
		ports += rules[i].n_ports;
	}
	conds = 2 * (addrs + ports);
	if (plan_alloc(p, 2 * n, conds, addrs, 2 * ports) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct policy_bypass *r = &rules[i];

		for (int v6 = 0; v6 <= 1; v6++) {
			int family = v6 ? AF_INET6 : AF_INET;
			struct wfp_filter *f;

			/* Addresses given, none of this family: the rule is not for this layer. */
			if (r->n_cidrs > 0 && count_family(r->cidrs, r->n_cidrs, family) == 0)
				continue;
			f = begin_filter(p, v6, WFP_PERMIT_BYPASS, WFP_WEIGHT_BYPASS);
			add_cidrs(p, f, r->cidrs, r->n_cidrs, family);
			for (size_t k = 0; k < r->n_ports; k++)
				add_port(p, f, &r->ports[k]);
		}
	}
	return 0;
}

/* ---- the engine ---- */

struct wfp_filters {
	HANDLE engine;
	FWP_BYTE_BLOB *app_id; /* the engine's memory (FwpmFreeMemory0) */
	UINT64 *base_ids;      /* the base filters (a reload replaces them) */
	size_t n_base;
	UINT64 *bypass_ids;
	size_t n_bypass;
};

/* What a WFP or RPC error means, for a log line. */
static void
describe(const char *step, DWORD e, char *err, size_t errlen)
{
	const char *why = e == WFP_RPC_S_CANNOT_SUPPORT
			      ? "not supported on this system (no filter engine; wine has none)"
			  : e == ERROR_ACCESS_DENIED
			      ? "access denied (run as an Administrator or as the service)"
			  : e == WFP_EPT_S_NOT_REGISTERED
			      ? "the Base Filtering Engine service (BFE) is not running"
			  : e == WFP_FWP_E_ALREADY_EXISTS
			      ? "the agent's objects already exist (another agent running?)"
			  : e == WFP_FWP_E_CALLOUT_NOTFOUND ? "callout not found"
							    : NULL;

	if (why != NULL)
		snprintf(err, errlen, "WFP: %s: %s (error 0x%lx)", step, why, (unsigned long)e);
	else
		snprintf(err, errlen, "WFP: %s: error 0x%lx", step, (unsigned long)e);
}

static const wchar_t *const kind_names[] = {
    [WFP_PERMIT_SELF] = L"redirect-agent: its own connections",
    [WFP_PERMIT_LOOPBACK] = L"redirect-agent: loopback",
    [WFP_PERMIT_EXCLUDED] = L"redirect-agent: exclude_cidrs",
    [WFP_PERMIT_BYPASS] = L"redirect-agent: policy bypass",
    [WFP_CALLOUT] = L"redirect-agent: redirected to the agent",
};

/* Add the plan's filters (ids[i] receives filter i's id when ids is not NULL). */
static DWORD
add_filters(HANDLE engine, const struct wfp_plan *p, UINT64 *ids)
{
	for (size_t i = 0; i < p->n_filters; i++) {
		const struct wfp_filter *pf = &p->filters[i];
		FWPM_FILTER0 f;
		UINT64 id = 0;
		DWORD e;

		memset(&f, 0, sizeof(f));
		f.displayData.name = (wchar_t *)kind_names[pf->kind];
		f.providerKey = (GUID *)&RA_WFP_PROVIDER;
		f.layerKey =
		    pf->v6 ? RA_LAYER_ALE_CONNECT_REDIRECT_V6 : RA_LAYER_ALE_CONNECT_REDIRECT_V4;
		f.subLayerKey = RA_WFP_SUBLAYER;
		f.weight.type = FWP_UINT8;
		f.weight.uint8 = pf->weight;
		f.numFilterConditions = pf->n_conds;
		f.filterCondition = pf->n_conds > 0 ? pf->conds : NULL;
		if (pf->kind == WFP_CALLOUT) {
			/* The callout decides (permit after redirecting); which action
			 * type suits an absent driver was never checked on Windows. */
			f.action.type = FWP_ACTION_CALLOUT_UNKNOWN;
			f.action.calloutKey = pf->v6 ? RA_WFP_CALLOUT_V6 : RA_WFP_CALLOUT_V4;
			f.rawContext = pf->context; /* the driver's FWPS_FILTER1.context */
		} else {
			f.action.type = FWP_ACTION_PERMIT;
		}
		if ((e = FwpmFilterAdd0(engine, &f, NULL, &id)) != ERROR_SUCCESS)
			return e;
		if (ids != NULL)
			ids[i] = id;
	}
	return ERROR_SUCCESS;
}

static DWORD
add_objects(HANDLE engine, const struct wfp_plan *p, UINT64 *ids, const char **step)
{
	FWPM_PROVIDER0 provider;
	FWPM_SUBLAYER0 sublayer;
	FWPM_CALLOUT0 callout;
	DWORD e;

	memset(&provider, 0, sizeof(provider));
	provider.providerKey = RA_WFP_PROVIDER;
	provider.displayData.name = (wchar_t *)L"redirect-agent";
	provider.displayData.description =
	    (wchar_t *)L"redirects, relays and records TCP connections";
	*step = "add the provider";
	if ((e = FwpmProviderAdd0(engine, &provider, NULL)) != ERROR_SUCCESS)
		return e;
	memset(&sublayer, 0, sizeof(sublayer));
	sublayer.subLayerKey = RA_WFP_SUBLAYER;
	sublayer.displayData.name = (wchar_t *)L"redirect-agent";
	sublayer.providerKey = (GUID *)&RA_WFP_PROVIDER;
	sublayer.weight = 0x8000;
	*step = "add the sublayer";
	if ((e = FwpmSubLayerAdd0(engine, &sublayer, NULL)) != ERROR_SUCCESS)
		return e;
	for (int v6 = 0; v6 <= 1; v6++) {
		memset(&callout, 0, sizeof(callout));
		callout.calloutKey = v6 ? RA_WFP_CALLOUT_V6 : RA_WFP_CALLOUT_V4;
		callout.displayData.name = (wchar_t *)L"redirect-agent connect redirect";
		callout.providerKey = (GUID *)&RA_WFP_PROVIDER;
		callout.applicableLayer =
		    v6 ? RA_LAYER_ALE_CONNECT_REDIRECT_V6 : RA_LAYER_ALE_CONNECT_REDIRECT_V4;
		*step = "add the callouts";
		if ((e = FwpmCalloutAdd0(engine, &callout, NULL, NULL)) != ERROR_SUCCESS)
			return e;
	}
	*step = "add the filters";
	return add_filters(engine, p, ids);
}

int
wfp_filters_install(const struct config *cfg, struct wfp_filters **out, char *err, size_t errlen)
{
	struct wfp_filters *f = calloc(1, sizeof(*f));
	FWPM_SESSION0 session;
	struct wfp_plan plan = {0};
	wchar_t self[MAX_PATH];
	const char *step = "open the filter engine";
	DWORD e;

	*out = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "WFP: out of memory");
		return -1;
	}
	memset(&session, 0, sizeof(session));
	session.displayData.name = (wchar_t *)L"redirect-agent";
	session.flags = RA_FWPM_SESSION_FLAG_DYNAMIC; /* objects go with the session */
	if ((e = FwpmEngineOpen0(NULL, RPC_C_AUTHN_DEFAULT, NULL, &session, &f->engine)) !=
	    ERROR_SUCCESS) {
		f->engine = NULL;
		goto fail;
	}
	step = "find the agent's application id";
	if (GetModuleFileNameW(NULL, self, MAX_PATH) == 0 ||
	    (e = FwpmGetAppIdFromFileName0(self, &f->app_id)) != ERROR_SUCCESS) {
		e = e != ERROR_SUCCESS ? e : GetLastError();
		goto fail;
	}
	if (wfp_plan_base(&plan, cfg, f->app_id, (UINT32)GetCurrentProcessId()) != 0 ||
	    (f->base_ids = calloc(plan.n_filters + 1, sizeof(*f->base_ids))) == NULL) {
		snprintf(err, errlen, "WFP: out of memory");
		wfp_plan_free(&plan);
		wfp_filters_remove(f);
		return -1;
	}
	f->n_base = plan.n_filters;
	step = "begin a transaction";
	if ((e = FwpmTransactionBegin0(f->engine, 0)) != ERROR_SUCCESS)
		goto fail;
	if ((e = add_objects(f->engine, &plan, f->base_ids, &step)) != ERROR_SUCCESS) {
		FwpmTransactionAbort0(f->engine);
		goto fail;
	}
	step = "commit";
	if ((e = FwpmTransactionCommit0(f->engine)) != ERROR_SUCCESS)
		goto fail;
	log_info("WFP: provider, sublayer, 2 callouts and %zu filters installed", plan.n_filters);
	wfp_plan_free(&plan);
	*out = f;
	return 0;
fail:
	describe(step, e, err, errlen);
	wfp_plan_free(&plan);
	wfp_filters_remove(f);
	return -1;
}

/*
 * Delete the filters old_ids names and add plan's, in one transaction;
 * ids receives the new filters' ids. The old stay if anything fails.
 */
static int
replace_filters(HANDLE engine, const UINT64 *old_ids, size_t n_old, const struct wfp_plan *plan,
    UINT64 *ids, const char *what, char *err, size_t errlen)
{
	char step[64];
	DWORD e;

	snprintf(step, sizeof(step), "begin a transaction");
	if ((e = FwpmTransactionBegin0(engine, 0)) != ERROR_SUCCESS)
		goto fail;
	snprintf(step, sizeof(step), "remove the old %s filters", what);
	for (size_t i = 0; i < n_old && e == ERROR_SUCCESS; i++)
		e = FwpmFilterDeleteById0(engine, old_ids[i]);
	if (e == ERROR_SUCCESS) {
		snprintf(step, sizeof(step), "add the %s filters", what);
		e = add_filters(engine, plan, ids);
	}
	if (e != ERROR_SUCCESS) {
		FwpmTransactionAbort0(engine);
		goto fail;
	}
	snprintf(step, sizeof(step), "commit");
	if ((e = FwpmTransactionCommit0(engine)) != ERROR_SUCCESS)
		goto fail;
	return 0;
fail:
	describe(step, e, err, errlen);
	return -1;
}

int
wfp_filters_set_base(struct wfp_filters *f, const struct config *cfg, char *err, size_t errlen)
{
	struct wfp_plan plan = {0};
	UINT64 *ids = NULL;

	if (wfp_plan_base(&plan, cfg, f->app_id, (UINT32)GetCurrentProcessId()) != 0 ||
	    (ids = calloc(plan.n_filters + 1, sizeof(*ids))) == NULL) {
		wfp_plan_free(&plan);
		snprintf(err, errlen, "WFP: out of memory");
		return -1;
	}
	if (replace_filters(f->engine, f->base_ids, f->n_base, &plan, ids, "base", err, errlen) !=
	    0) {
		free(ids);
		wfp_plan_free(&plan);
		return -1;
	}
	free(f->base_ids);
	f->base_ids = ids;
	f->n_base = plan.n_filters;
	log_info("WFP: %zu base filters installed again", plan.n_filters);
	wfp_plan_free(&plan);
	return 0;
}

int
wfp_filters_set_bypass(
    struct wfp_filters *f, const struct policy_bypass *rules, size_t n, char *err, size_t errlen)
{
	struct wfp_plan plan = {0};
	UINT64 *ids = NULL;

	if (wfp_plan_bypass(&plan, rules, n) != 0 ||
	    (ids = calloc(plan.n_filters + 1, sizeof(*ids))) == NULL) {
		wfp_plan_free(&plan);
		snprintf(err, errlen, "WFP: out of memory");
		return -1;
	}
	if (replace_filters(
		f->engine, f->bypass_ids, f->n_bypass, &plan, ids, "bypass", err, errlen) != 0) {
		free(ids);
		wfp_plan_free(&plan);
		return -1;
	}
	free(f->bypass_ids);
	f->bypass_ids = ids;
	f->n_bypass = plan.n_filters;
	wfp_plan_free(&plan);
	return 0;
}

void
wfp_filters_remove(struct wfp_filters *f)
{
	if (f == NULL)
		return;
	if (f->app_id != NULL)
		FwpmFreeMemory0((void **)&f->app_id);
	if (f->engine != NULL)
		FwpmEngineClose0(f->engine); /* a dynamic session: its objects go */
	free(f->base_ids);
	free(f->bypass_ids);
	free(f);
}
