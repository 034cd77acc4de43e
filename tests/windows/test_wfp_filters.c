/*
 * The agent's WFP filters (agent/os/wfp_filters.c), run under wine: the
 * plan made from the config and the policy's bypass rules (layers, kinds,
 * weights, every condition's field, match and value), and what wine's
 * filter engine answers when the agent installs them (it has none).
 */
#include <windows.h>
#include <winsock2.h>

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "wfp_filters.h"
#include "wfp_keys.h"

static int
same_guid(const GUID *a, const GUID *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static const FWPM_FILTER_CONDITION0 *
cond(const struct wfp_filter *f, UINT32 i)
{
	return i < f->n_conds ? &f->conds[i] : NULL;
}

static int
is_port(const FWPM_FILTER_CONDITION0 *c, UINT16 port)
{
	return c != NULL && same_guid(&c->fieldKey, &RA_CONDITION_IP_REMOTE_PORT) &&
	       c->matchType == FWP_MATCH_EQUAL && c->conditionValue.type == FWP_UINT16 &&
	       c->conditionValue.uint16 == port;
}

static int
is_range(const FWPM_FILTER_CONDITION0 *c, UINT16 lo, UINT16 hi)
{
	return c != NULL && same_guid(&c->fieldKey, &RA_CONDITION_IP_REMOTE_PORT) &&
	       c->matchType == FWP_MATCH_RANGE && c->conditionValue.type == FWP_RANGE_TYPE &&
	       c->conditionValue.rangeValue->valueLow.type == FWP_UINT16 &&
	       c->conditionValue.rangeValue->valueLow.uint16 == lo &&
	       c->conditionValue.rangeValue->valueHigh.uint16 == hi;
}

static int
is_v4(const FWPM_FILTER_CONDITION0 *c, UINT32 addr, UINT32 mask)
{
	return c != NULL && same_guid(&c->fieldKey, &RA_CONDITION_IP_REMOTE_ADDRESS) &&
	       c->matchType == FWP_MATCH_EQUAL && c->conditionValue.type == FWP_V4_ADDR_MASK &&
	       c->conditionValue.v4AddrMask->addr == addr &&
	       c->conditionValue.v4AddrMask->mask == mask;
}

static int
is_v6(const FWPM_FILTER_CONDITION0 *c, const UINT8 *prefix, size_t len, UINT8 bits)
{
	return c != NULL && same_guid(&c->fieldKey, &RA_CONDITION_IP_REMOTE_ADDRESS) &&
	       c->conditionValue.type == FWP_V6_ADDR_MASK &&
	       memcmp(c->conditionValue.v6AddrMask->addr, prefix, len) == 0 &&
	       c->conditionValue.v6AddrMask->prefixLength == bits;
}

static void
load(struct config *cfg, const char *text)
{
	char err[256];

	config_defaults(cfg);
	CHECK_EQ(config_load_string(cfg, "test.conf", text, err, sizeof(err)), 0);
}

static void
test_base(void)
{
	static struct config cfg;
	static const UINT8 fd00[] = {0xfd, 0x00};
	UINT8 id_bytes[] = "\\device\\harddiskvolume1\\redirect-agent.exe";
	FWP_BYTE_BLOB app_id = {sizeof(id_bytes), id_bytes};
	struct wfp_plan p;
	const struct wfp_filter *f;

	load(&cfg, "[proxy]\n"
		   "redirect_ports = 80, 443, 8000-8080\n"
		   "redirect_cidrs = 10.0.0.0/8, fd00::/8\n"
		   "exclude_cidrs = 10.1.0.0/16\n");
	CHECK_EQ(wfp_plan_base(&p, &cfg, &app_id, 4242), 0);
	/* v4: self, loopback, excluded, callout; v6: self, loopback, callout. */
	CHECK_EQ(p.n_filters, 7);
	if (p.n_filters != 7)
		return;
	f = &p.filters[0];
	CHECK(!f->v6 && f->kind == WFP_PERMIT_SELF && f->weight == WFP_WEIGHT_SELF);
	CHECK(f->n_conds == 1 && same_guid(&cond(f, 0)->fieldKey, &RA_CONDITION_ALE_APP_ID) &&
	      cond(f, 0)->conditionValue.type == FWP_BYTE_BLOB_TYPE &&
	      cond(f, 0)->conditionValue.byteBlob == &app_id);
	f = &p.filters[1];
	CHECK(!f->v6 && f->kind == WFP_PERMIT_LOOPBACK && f->weight == WFP_WEIGHT_LOOPBACK);
	CHECK(f->n_conds == 1 && same_guid(&cond(f, 0)->fieldKey, &RA_CONDITION_FLAGS) &&
	      cond(f, 0)->matchType == FWP_MATCH_FLAGS_ANY_SET &&
	      cond(f, 0)->conditionValue.uint32 == FWP_CONDITION_FLAG_IS_LOOPBACK);
	f = &p.filters[2];
	CHECK(!f->v6 && f->kind == WFP_PERMIT_EXCLUDED && f->weight == WFP_WEIGHT_EXCLUDED);
	CHECK(f->n_conds == 1 && is_v4(cond(f, 0), 0x0a010000, 0xffff0000));
	f = &p.filters[3];
	CHECK(!f->v6 && f->kind == WFP_CALLOUT && f->weight == WFP_WEIGHT_CALLOUT);
	/* the driver's instructions: pid 4242, IPv4, listener port 15001 */
	CHECK(f->context == ((UINT64)4242 << 32 | 15001));
	CHECK(p.filters[0].context == 0); /* only callout filters carry one */
	CHECK_EQ(f->n_conds, 5);
	CHECK(same_guid(&cond(f, 0)->fieldKey, &RA_CONDITION_IP_PROTOCOL) &&
	      cond(f, 0)->conditionValue.type == FWP_UINT8 &&
	      cond(f, 0)->conditionValue.uint8 == IPPROTO_TCP);
	CHECK(is_port(cond(f, 1), 80));
	CHECK(is_port(cond(f, 2), 443));
	CHECK(is_range(cond(f, 3), 8000, 8080));
	CHECK(is_v4(cond(f, 4), 0x0a000000, 0xff000000));
	CHECK(p.filters[4].v6 && p.filters[4].kind == WFP_PERMIT_SELF);
	CHECK(p.filters[5].v6 && p.filters[5].kind == WFP_PERMIT_LOOPBACK);
	f = &p.filters[6];
	CHECK(f->v6 && f->kind == WFP_CALLOUT && f->n_conds == 5);
	CHECK(f->context == ((UINT64)4242 << 32 | 1 << 16 | 15001));
	CHECK(is_range(cond(f, 3), 8000, 8080));
	CHECK(is_v6(cond(f, 4), fd00, sizeof(fd00), 8));
	wfp_plan_free(&p);

	/* Destinations of one family only: no callout filter on the other layer. */
	load(&cfg, "[proxy]\nredirect_ports = 443\nredirect_cidrs = 192.168.0.0/16\n"
		   "exclude_cidrs = 192.168.9.0/24\n");
	CHECK_EQ(wfp_plan_base(&p, &cfg, NULL, 4242), 0);
	CHECK_EQ(p.n_filters, 4); /* v4: loopback, excluded, callout; v6: loopback */
	if (p.n_filters == 4) {
		CHECK(p.filters[0].kind == WFP_PERMIT_LOOPBACK && !p.filters[0].v6);
		CHECK(is_v4(cond(&p.filters[1], 0), 0xc0a80900, 0xffffff00));
		CHECK(p.filters[2].kind == WFP_CALLOUT && !p.filters[2].v6);
		CHECK(is_v4(cond(&p.filters[2], 2), 0xc0a80000, 0xffff0000));
		CHECK(p.filters[3].kind == WFP_PERMIT_LOOPBACK && p.filters[3].v6);
	}
	wfp_plan_free(&p);

	/* The defaults: everywhere (0.0.0.0/0 and ::/0, zero masks) but loopback. */
	load(&cfg, "");
	CHECK_EQ(wfp_plan_base(&p, &cfg, NULL, 4242), 0);
	CHECK_EQ(p.n_filters, 6); /* per layer: loopback, excluded, callout */
	if (p.n_filters == 6) {
		static const UINT8 one[16] = {[15] = 1};

		CHECK(is_v4(cond(&p.filters[1], 0), 0x7f000000, 0xff000000));
		CHECK(p.filters[2].n_conds == 4 && is_port(cond(&p.filters[2], 1), 80) &&
		      is_port(cond(&p.filters[2], 2), 443) && is_v4(cond(&p.filters[2], 3), 0, 0));
		CHECK(is_v6(cond(&p.filters[4], 0), one, sizeof(one), 128));
		CHECK(p.filters[5].v6 && p.filters[5].kind == WFP_CALLOUT &&
		      is_v6(cond(&p.filters[5], 3), one, 0, 0));
	}
	wfp_plan_free(&p);
}

static void
test_bypass(void)
{
	static const struct cidr both[] = {
	    {AF_INET, {192, 168, 1, 0}, 24},
	    {AF_INET6, {0x20, 0x01, 0x0d, 0xb8}, 32},
	};
	static const struct cidr v6only[] = {{AF_INET6, {0xfe, 0x80}, 10}};
	static const struct port_range ssh[] = {{22, 22}}, rdp[] = {{3389, 3389}, {5900, 5910}};
	static const UINT8 db8[] = {0x20, 0x01, 0x0d, 0xb8}, fe80[] = {0xfe, 0x80};
	const struct policy_bypass rules[] = {
	    {both, 2, ssh, 1},    /* both layers: an address each and the port */
	    {NULL, 0, rdp, 2},    /* ports only: both layers */
	    {v6only, 1, NULL, 0}, /* IPv6 only */
	};
	struct wfp_plan p;

	CHECK_EQ(wfp_plan_bypass(&p, rules, 3), 0);
	CHECK_EQ(p.n_filters, 5);
	if (p.n_filters == 5) {
		for (size_t i = 0; i < p.n_filters; i++)
			CHECK(p.filters[i].kind == WFP_PERMIT_BYPASS &&
			      p.filters[i].weight == WFP_WEIGHT_BYPASS);
		/* rule 1, v4 then v6: the family's address and the port */
		CHECK(!p.filters[0].v6 && p.filters[0].n_conds == 2);
		CHECK(is_v4(cond(&p.filters[0], 0), 0xc0a80100, 0xffffff00));
		CHECK(is_port(cond(&p.filters[0], 1), 22));
		CHECK(p.filters[1].v6 && p.filters[1].n_conds == 2);
		CHECK(is_v6(cond(&p.filters[1], 0), db8, sizeof(db8), 32));
		/* rule 2: ports on both layers */
		CHECK(!p.filters[2].v6 && p.filters[2].n_conds == 2);
		CHECK(is_port(cond(&p.filters[2], 0), 3389));
		CHECK(is_range(cond(&p.filters[2], 1), 5900, 5910));
		CHECK(p.filters[3].v6 && p.filters[3].n_conds == 2);
		/* rule 3: IPv6 only */
		CHECK(p.filters[4].v6 && p.filters[4].n_conds == 1);
		CHECK(is_v6(cond(&p.filters[4], 0), fe80, sizeof(fe80), 10));
	}
	wfp_plan_free(&p);
	CHECK_EQ(wfp_plan_bypass(&p, rules, 0), 0);
	CHECK_EQ(p.n_filters, 0);
	wfp_plan_free(&p);
}

/*
 * The install itself. Wine has no filter engine: there it must fail at its
 * first step, saying so. On Windows (an MSYS2 run) it may succeed (as an
 * administrator: then the objects go again at once) or fail naming a step.
 */
static void
test_engine(void)
{
	static struct config cfg;
	struct wfp_filters *f = (struct wfp_filters *)1;
	char err[256] = "";
	int under_wine = GetProcAddress(GetModuleHandleA("ntdll.dll"), "wine_get_version") != NULL;
	int rc;

	load(&cfg, "[proxy]\nredirect_ports = 80\n");
	rc = wfp_filters_install(&cfg, &f, err, sizeof(err));
	printf("install%s: %s\n", under_wine ? " under wine" : "", rc == 0 ? "installed" : err);
	if (under_wine) {
		CHECK_EQ(rc, -1);
		CHECK(f == NULL);
		CHECK(strncmp(err, "WFP: open the filter engine: not supported", 42) == 0);
	} else if (rc == 0) {
		CHECK(f != NULL);
		wfp_filters_remove(f);
	} else {
		CHECK(f == NULL && strncmp(err, "WFP: ", 5) == 0);
	}
}

int
main(void)
{
	test_base();
	test_bypass();
	test_engine();
	return check_finish("test_wfp_filters");
}
