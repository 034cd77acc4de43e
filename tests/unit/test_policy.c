/* Unit tests: policy documents, their problems, the verdict (agent/policy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static struct policy *
compile_ok(const char *json)
{
	struct policy_problems pr;
	struct policy *p = policy_compile(json, (size_t)-1, &pr);

	if (p == NULL)
		fail_msg("unexpected problem: %s", pr.n ? pr.msg[0] : "?");
	return p;
}

/* Compile a bad document; its problems joined with "; ". */
static char *
problems_of(const char *json)
{
	struct policy_problems pr;
	struct policy *p = policy_compile(json, (size_t)-1, &pr);
	static char buf[4096];
	size_t off = 0;

	assert_null(p);
	assert_true(pr.n > 0);
	buf[0] = '\0';
	for (size_t i = 0; i < pr.n; i++)
		off += (size_t)snprintf(
		    buf + off, sizeof(buf) - off, "%s%s", i ? "; " : "", pr.msg[i]);
	policy_problems_free(&pr);
	return buf;
}

static struct policy_verdict
judge(const struct policy *p, const char *addr, uint16_t port, unsigned state)
{
	struct endpoint e;
	struct policy_input in = {&e, state, NULL, -1, NULL};

	memset(&e, 0, sizeof(e));
	e.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	e.port = port;
	assert_int_equal(inet_pton(e.family, addr, e.addr), 1);
	return policy_evaluate(p, &in);
}

static void
test_problems_have_paths(void **state)
{
	(void)state;
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"allow\", "
					"\"match\": {\"dst_cidrs\": [\"10.0.0.1/8\"]}}]}"),
	    "rules[0].match.dst_cidrs[0]: not a CIDR: '10.0.0.1/8' has host bits set beyond its "
	    "prefix");
	assert_non_null(strstr(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"allow\"}, "
					   "{\"id\": \"b\", \"action\": \"allow\", \"match\": "
					   "{\"dst_cidrs\": [\"nope\", 7]}}]}"),
	    "rules[1].match.dst_cidrs[0]: not a CIDR"));
	assert_non_null(strstr(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"allow\", "
					   "\"match\": {\"dst_cidrs\": [7]}}]}"),
	    "rules[0].match.dst_cidrs[0]: not a CIDR (a string"));
	/* every problem, not just the first */
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a b\", \"action\": \"jump\", "
					"\"match\": {\"dst_ports\": [0, 65536, \"9-3\", \"x\"], "
					"\"colour\": 1}}], \"extra\": 1}"),
	    "extra: unknown field; "
	    "rules[0].id: 1 to 63 letters, digits, '_', '-', '.' or ':'; "
	    "rules[0].action: not one of allow, block, bypass, forward; "
	    "rules[0].match.dst_ports[0]: 0-0 is not a port range (1 to 65535, low first); "
	    "rules[0].match.dst_ports[1]: 65536-65536 is not a port range (1 to 65535, low first); "
	    "rules[0].match.dst_ports[2]: 9-3 is not a port range (1 to 65535, low first); "
	    "rules[0].match.dst_ports[3]: 'x' is not a port or a range like 8000-8080; "
	    "rules[0].match.colour: unknown field");
	assert_string_equal(problems_of("{\"rules\": [{\"action\": \"allow\"}, {\"id\": \"x\"}]}"),
	    "rules[0].id: required; rules[1].action: required");
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"allow\"}, "
					"{\"id\": \"a\", \"action\": \"block\"}]}"),
	    "rules: id 'a' is used more than once");
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"block\"}, "
					"{\"id\": \"b\", \"action\": \"bypass\"}]}"),
	    "rules[1]: a bypass rule must come before every allow or block rule (the kernel "
	    "skips its traffic before any rule is applied)");
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"forward\"}]}"),
	    "rules[0].forward_to: required with action forward");
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"allow\", "
					"\"forward_to\": \"10.0.0.1:3128\"}]}"),
	    "rules[0].forward_to: only for action forward");
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"forward\", "
					"\"forward_to\": \"10.0.0.1\"}]}"),
	    "rules[0].forward_to: not HOST:PORT (a CONNECT proxy, e.g. \"proxy.corp:3128\")");
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"forward\", "
					"\"forward_to\": \"10.0.0.1:0\"}]}"),
	    "rules[0].forward_to: '0' is not a port");
	/* A name is not looked up here: what DNS says never decides a document's validity. */
	policy_free(compile_ok("{\"rules\": [{\"id\": \"a\", \"action\": \"forward\", "
			       "\"forward_to\": \"no-such-host.invalid:3128\"}]}"));
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"forward\", "
					"\"forward_to\": \"bad name:3128\"}]}"),
	    "rules[0].forward_to: 'bad name' is not a host name or an address");
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"forward\", "
					"\"forward_to\": \"fd00::1:3128\"}]}"),
	    "rules[0].forward_to: an IPv6 address goes in brackets: [fd00::1]:3128");
	assert_string_equal(
	    problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"allow\", "
			"\"match\": {\"server_names\": [\"bad name\", \"*.\", 3]}}]}"),
	    "rules[0].match.server_names[0]: not a server name (\"host.example.com\", "
	    "\"*.example.com\" or \".example.com\"); rules[0].match.server_names[1]: not a server "
	    "name (\"host.example.com\", \"*.example.com\" or \".example.com\"); "
	    "rules[0].match.server_names[2]: not a server name (\"host.example.com\", "
	    "\"*.example.com\" or \".example.com\")");
	assert_string_equal(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"allow\", "
					"\"match\": {\"uids\": [-1, \"root\"], \"exe_paths\": "
					"[\"curl\"]}}]}"),
	    "rules[0].match.uids[0]: not a uid (0 to 4294967294); rules[0].match.uids[1]: not a "
	    "uid (0 to 4294967294); rules[0].match.exe_paths[0]: not an absolute path "
	    "(\"/usr/bin/curl\")");
	assert_non_null(strstr(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"bypass\", "
					   "\"match\": {\"server_names\": [\"x.org\"]}}]}"),
	    "rules[0].match: a bypass rule matches only dst_cidrs and dst_ports"));
	assert_string_equal(problems_of("{\"default_action\": \"bypass\"}"),
	    "default_action: not one of allow, block");
	assert_non_null(strstr(problems_of("{\"rules\": [}"), "not JSON: line 1"));
	assert_string_equal(problems_of("[1]"), "the document must be an object");
	assert_non_null(strstr(problems_of("{\"rules\": [], \"rules\": []}"), "not JSON"));
	assert_non_null(strstr(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"allow\", "
					   "\"match\": {\"redirect_states\": [\"sideways\"]}}]}"),
	    "rules[0].match.redirect_states[0]: not one of none"));
}

static void
test_first_match_wins(void **state)
{
	struct policy *p = compile_ok(
	    "{\"default_action\": \"block\", \"rules\": ["
	    "{\"id\": \"web-in-10\", \"action\": \"allow\", \"match\": "
	    "  {\"dst_cidrs\": [\"10.1.0.0/16\"], \"dst_ports\": [80, 443]}},"
	    "{\"id\": \"no-10\", \"action\": \"block\", \"match\": {\"dst_cidrs\": "
	    "[\"10.0.0.0/8\"]}},"
	    "{\"id\": \"host\", \"action\": \"allow\", \"match\": {\"dst_cidrs\": "
	    "[\"10.1.2.3/32\"]}},"
	    "{\"id\": \"v6\", \"action\": \"allow\", \"match\": {\"dst_cidrs\": [\"fd00::/8\"], "
	    "  \"dst_ports\": [\"8000-8080\", 65535]}},"
	    "{\"id\": \"chained\", \"action\": \"allow\", \"match\": {\"redirect_states\": "
	    "  [\"by_other\"]}}]}");
	struct policy_verdict v;

	(void)state;
	assert_int_equal(policy_n_rules(p), 5);
	v = judge(p, "10.1.2.3", 443, REDIRECT_NONE);
	assert_int_equal(v.rule, 0);
	assert_int_equal(v.action, POLICY_ALLOW);
	/* overlapping CIDRs: the earlier (wider) rule wins over the later host rule */
	v = judge(p, "10.1.2.3", 22, REDIRECT_NONE);
	assert_int_equal(v.rule, 1);
	assert_int_equal(v.action, POLICY_BLOCK);
	v = judge(p, "192.0.2.1", 80, REDIRECT_NONE);
	assert_int_equal(v.rule, -1);
	assert_int_equal(v.action, POLICY_BLOCK);
	v = judge(p, "fd12::1", 8080, REDIRECT_NONE);
	assert_int_equal(v.rule, 3);
	v = judge(p, "fd12::1", 8081, REDIRECT_NONE);
	assert_int_equal(v.rule, -1);
	v = judge(p, "fd12::1", 65535, REDIRECT_NONE);
	assert_int_equal(v.rule, 3);
	v = judge(p, "192.0.2.1", 80, REDIRECT_BY_OTHER);
	assert_int_equal(v.rule, 4);
	assert_string_equal(policy_rule_id(p, 4), "chained");
	policy_count_hit(p, 4);
	policy_count_hit(p, -1);
	policy_count_hit(p, -1);
	assert_int_equal(policy_hits(p, 4), 1);
	assert_int_equal(policy_hits(p, -1), 2);
	policy_free(p);
}

static void
test_empty_and_any(void **state)
{
	struct policy *p = compile_ok("{}");
	struct policy_verdict v;

	(void)state;
	assert_int_equal(policy_n_rules(p), 0);
	v = judge(p, "192.0.2.1", 1, REDIRECT_NONE);
	assert_int_equal(v.rule, -1);
	assert_int_equal(v.action, POLICY_ALLOW);
	policy_free(p);
	/* an empty match is every connection, both families */
	p = compile_ok("{\"rules\": [{\"id\": \"all\", \"action\": \"block\", \"match\": {}}]}");
	assert_int_equal(judge(p, "::1", 5, REDIRECT_NONE).rule, 0);
	assert_int_equal(judge(p, "0.0.0.0", 65535, REDIRECT_NONE).rule, 0);
	policy_free(p);
	p = policy_allow_all();
	assert_non_null(p);
	assert_string_equal(policy_document(p), "{\"default_action\":\"allow\",\"rules\":[]}");
	policy_free(p);
}

static void
test_bypass_list(void **state)
{
	struct policy *p = compile_ok("{\"rules\": ["
				      "{\"id\": \"b1\", \"action\": \"bypass\", \"match\": "
				      "  {\"dst_cidrs\": [\"10.9.0.0/16\", \"fd09::/32\"], "
				      "   \"dst_ports\": [443, \"80-81\"]}},"
				      "{\"id\": \"b2\", \"action\": \"bypass\", \"match\": "
				      "  {\"dst_ports\": [25]}},"
				      "{\"id\": \"x\", \"action\": \"block\"}]}");
	struct policy_bypass out[4];
	char text[64];

	(void)state;
	/* one entry per rule: its CIDRs and its merged port ranges, not their product */
	assert_int_equal(policy_bypass_list(p, out, 4), 2);
	assert_int_equal(out[0].n_cidrs, 2);
	assert_string_equal(addr_format_cidr(&out[0].cidrs[0], text, sizeof(text)), "10.9.0.0/16");
	assert_string_equal(addr_format_cidr(&out[0].cidrs[1], text, sizeof(text)), "fd09::/32");
	assert_int_equal(out[0].n_ports, 2);
	assert_int_equal(out[0].ports[0].lo, 80);
	assert_int_equal(out[0].ports[0].hi, 81);
	assert_int_equal(out[0].ports[1].lo, 443);
	assert_int_equal(out[1].n_cidrs, 0); /* any address */
	assert_int_equal(out[1].n_ports, 1);
	assert_int_equal(out[1].ports[0].lo, 25);
	/* the verdict agrees: a bypass match is bypass */
	assert_int_equal(judge(p, "10.9.1.1", 81, REDIRECT_NONE).action, POLICY_BYPASS);
	assert_int_equal(judge(p, "10.9.1.1", 82, REDIRECT_NONE).action, POLICY_BLOCK);
	assert_int_equal(policy_bypass_list(p, out, 1), 2); /* the total, even when cut */
	policy_free(p);
}

/* What bypass rules may expand into is bounded, with a message. */
static void
test_bypass_bounds(void **state)
{
	size_t cap = 64 * 1024 * 1024, off = 0;
	char *doc = malloc(cap);
	struct policy_problems pr;
	struct policy *p;

	(void)state;
	assert_non_null(doc);
	/* 65 bypass rules: one too many */
	off += (size_t)snprintf(doc + off, cap - off, "{\"rules\": [");
	for (int i = 0; i < 65; i++)
		off += (size_t)snprintf(doc + off, cap - off,
		    "%s{\"id\": \"b%d\", \"action\": \"bypass\", \"match\": {\"dst_ports\": [%d]}}",
		    i ? "," : "", i, 1000 + i);
	snprintf(doc + off, cap - off, "]}");
	assert_null(p = policy_compile(doc, (size_t)-1, &pr));
	assert_non_null(strstr(pr.msg[0], "65 bypass rules, more than the 64"));
	policy_problems_free(&pr);

	/* 60,000 CIDRs and 50,000 ports in one rule: 110,000 elements, over 100,000 */
	off = (size_t)snprintf(doc, cap,
	    "{\"rules\": [{\"id\": \"big\", \"action\": \"bypass\", "
	    "\"match\": {\"dst_cidrs\": [");
	for (int i = 0; i < 60000; i++)
		off += (size_t)snprintf(
		    doc + off, cap - off, "%s\"10.%d.%d.0/24\"", i ? "," : "", i / 256, i % 256);
	off += (size_t)snprintf(doc + off, cap - off, "], \"dst_ports\": [");
	for (int i = 0; i < 50000; i++)
		off += (size_t)snprintf(
		    doc + off, cap - off, "%s%d", i ? "," : "", 1 + 2 * (i % 32000));
	snprintf(doc + off, cap - off, "]}}]}");
	p = policy_compile(doc, (size_t)-1, &pr);
	if (p != NULL) { /* ports merge: 32,000 distinct, so 92,000 elements: allowed */
		struct policy_bypass b;

		assert_int_equal(policy_bypass_list(p, &b, 1), 1);
		assert_int_equal(b.n_cidrs + b.n_ports, 92000);
		policy_free(p);
	} else {
		fail_msg("92,000 elements should be allowed: %s", pr.msg[0]);
	}
	/* 2 such rules: 184,000 */
	off = (size_t)snprintf(doc, cap, "{\"rules\": [");
	for (int r = 0; r < 2; r++) {
		off += (size_t)snprintf(doc + off, cap - off,
		    "%s{\"id\": \"big%d\", \"action\": \"bypass\", \"match\": {\"dst_cidrs\": [",
		    r ? "," : "", r);
		for (int i = 0; i < 60000; i++)
			off += (size_t)snprintf(doc + off, cap - off, "%s\"10.%d.%d.0/24\"",
			    i ? "," : "", i / 256, i % 256);
		off += (size_t)snprintf(doc + off, cap - off, "]}}");
	}
	snprintf(doc + off, cap - off, "]}");
	assert_null(p = policy_compile(doc, (size_t)-1, &pr));
	assert_non_null(strstr(pr.msg[0], "120000 CIDRs and port ranges, more than the 100000"));
	policy_problems_free(&pr);
	free(doc);
}

/* 10,000 rules, each its own /24 with a port, and a catch-all at the end. */
static void
test_ten_thousand_rules(void **state)
{
	size_t cap = 10000 * 120 + 256, off = 0;
	char *doc = malloc(cap);
	struct policy *p;

	(void)state;
	off += (size_t)snprintf(doc + off, cap - off, "{\"rules\": [");
	for (int i = 0; i < 9999; i++)
		off += (size_t)snprintf(doc + off, cap - off,
		    "{\"id\": \"r%d\", \"action\": \"%s\", \"match\": {\"dst_cidrs\": "
		    "[\"10.%d.%d.0/24\"], \"dst_ports\": [%d]}},",
		    i, i % 2 ? "block" : "allow", i / 256, i % 256, 1000 + i % 50);
	off += (size_t)snprintf(doc + off, cap - off,
	    "{\"id\": \"last\", \"action\": \"block\", \"match\": {\"dst_ports\": [22]}}]}");
	p = compile_ok(doc);
	assert_int_equal(policy_n_rules(p), 10000);
	assert_int_equal(
	    judge(p, "10.3.7.9", 1000 + (3 * 256 + 7) % 50, REDIRECT_NONE).rule, 3 * 256 + 7);
	assert_int_equal(judge(p, "10.3.7.9", 22, REDIRECT_NONE).rule, 9999);
	assert_int_equal(judge(p, "10.3.7.9", 23, REDIRECT_NONE).rule, -1);
	policy_free(p);
	free(doc);
}

static void
test_server_names(void **state)
{
	struct policy *p = compile_ok(
	    "{\"rules\": ["
	    "{\"id\": \"sub\", \"action\": \"block\", \"match\": {\"server_names\": "
	    "[\"*.Example.com\"]}},"
	    "{\"id\": \"exact\", \"action\": \"forward\", \"forward_to\": \"[fd00::9]:3128\", "
	    "\"match\": {\"server_names\": [\"example.com\"], \"dst_ports\": [443]}}]}");
	struct endpoint e;
	struct policy_input in = {&e, REDIRECT_NONE, "www.EXAMPLE.com", -1, NULL};
	const struct forward *fwd;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.family = AF_INET;
	e.port = 443;
	assert_true(policy_needs_server_name(p));
	assert_int_equal(policy_evaluate(p, &in).rule, 0);
	in.server_name = "example.com"; /* "*." is below the name, not the name */
	assert_int_equal(policy_evaluate(p, &in).rule, 1);
	assert_int_equal(policy_evaluate(p, &in).action, POLICY_FORWARD);
	fwd = policy_forward_to(p, 1);
	assert_non_null(fwd);
	assert_true(fwd->is_addr);
	assert_int_equal(fwd->addr.ss_family, AF_INET6);
	assert_int_equal(fwd->port, 3128);
	assert_null(policy_forward_to(p, 0));
	in.server_name = "badexample.com";
	assert_int_equal(policy_evaluate(p, &in).rule, -1);
	in.server_name = NULL; /* not read: a name rule cannot match */
	assert_int_equal(policy_evaluate(p, &in).rule, -1);
	policy_free(p);
	p = compile_ok("{}");
	assert_false(policy_needs_server_name(p));
	policy_free(p);
}

/*
 * The three forms of a name, and spellings that must not dodge them: the
 * root's trailing dot and case (names come normalized from the sniffer;
 * patterns are normalized when parsed).
 */
static void
test_name_forms(void **state)
{
	static const struct {
		const char *pattern, *name;
		int match;
	} cases[] = {
	    {"social.example", "social.example", 1},
	    {"Social.Example.", "social.example", 1}, /* the pattern's dot and case */
	    {"social.example", "www.social.example", 0},
	    {"*.social.example", "www.social.example", 1},
	    {"*.social.example", "a.b.social.example", 1},
	    {"*.social.example", "social.example", 0},
	    {"*.social.example", "notsocial.example", 0},
	    {".social.example", "social.example", 1},
	    {".social.example", "www.social.example", 1},
	    {".social.example", "xsocial.example", 0},
	    {".social.example.", "www.social.example", 1},
	};
	char doc[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct endpoint e = {AF_INET, 443, {10, 0, 0, 1}};
		struct policy_input in = {&e, REDIRECT_NONE, cases[i].name, -1, NULL};
		struct policy *p;

		snprintf(doc, sizeof(doc),
		    "{\"rules\": [{\"id\": \"r\", \"action\": \"block\", "
		    "\"match\": {\"server_names\": [\"%s\"]}}]}",
		    cases[i].pattern);
		p = compile_ok(doc);
		if ((policy_evaluate(p, &in).rule == 0) != cases[i].match)
			fail_msg("case %zu: '%s' against '%s' should %smatch", i, cases[i].name,
			    cases[i].pattern, cases[i].match ? "" : "not ");
		policy_free(p);
	}
}

static void
test_owner_rules(void **state)
{
	struct policy *p = compile_ok(
	    "{\"rules\": ["
	    "{\"id\": \"svc\", \"action\": \"block\", \"match\": {\"uids\": [998, 999]}},"
	    "{\"id\": \"curl-as-root\", \"action\": \"block\", \"match\": "
	    "{\"uids\": [0], \"exe_paths\": [\"/usr/bin/curl\"]}}]}");
	struct endpoint e;
	struct policy_input in = {&e, REDIRECT_NONE, NULL, 999, "/usr/bin/wget"};

	(void)state;
	memset(&e, 0, sizeof(e));
	e.family = AF_INET;
	e.port = 80;
	assert_int_equal(policy_needs_owner(p), POLICY_NEEDS_UID | POLICY_NEEDS_EXE);
	assert_int_equal(policy_evaluate(p, &in).rule, 0);
	in.uid = 0; /* both fields must match */
	assert_int_equal(policy_evaluate(p, &in).rule, -1);
	in.exe = "/usr/bin/curl";
	assert_int_equal(policy_evaluate(p, &in).rule, 1);
	/* unknown: the first rule about the owner decides, by its on_unknown (block) */
	in.uid = -1;
	assert_int_equal(policy_evaluate(p, &in).rule, 0);
	assert_int_equal(policy_evaluate(p, &in).action, POLICY_BLOCK);
	assert_true(policy_evaluate(p, &in).owner_unknown);
	policy_free(p);

	/* on_unknown: block (the default) or allow, whatever the rule's own action */
	p = compile_ok("{\"default_action\": \"block\", \"rules\": ["
		       "{\"id\": \"apt\", \"action\": \"allow\", \"match\": "
		       "{\"exe_paths\": [\"/usr/bin/apt\"], \"dst_ports\": [80]}},"
		       "{\"id\": \"wget\", \"action\": \"block\", \"on_unknown\": \"allow\", "
		       "\"match\": {\"exe_paths\": [\"/usr/bin/wget\"], \"dst_ports\": [8080]}}]}");
	in.uid = 1000;
	in.exe = NULL;
	e.port = 80; /* an allow rule, owner unknown: blocked, not allowed */
	assert_int_equal(policy_evaluate(p, &in).action, POLICY_BLOCK);
	assert_int_equal(policy_evaluate(p, &in).rule, 0);
	e.port = 8080; /* this rule says allow when unknown */
	assert_int_equal(policy_evaluate(p, &in).action, POLICY_ALLOW);
	assert_int_equal(policy_evaluate(p, &in).rule, 1);
	in.exe = "/usr/bin/wget"; /* known: the rule's own action */
	assert_int_equal(policy_evaluate(p, &in).action, POLICY_BLOCK);
	assert_false(policy_evaluate(p, &in).owner_unknown);
	e.port = 9; /* other fields decide first: no match, the default */
	in.exe = NULL;
	assert_int_equal(policy_evaluate(p, &in).rule, -1);
	policy_free(p);
	assert_non_null(
	    strstr(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"block\", "
			       "\"on_unknown\": \"allow\", \"match\": {\"dst_ports\": [1]}}]}"),
		"rules[0].on_unknown: only for a rule that matches uids or exe_paths"));
	assert_non_null(
	    strstr(problems_of("{\"rules\": [{\"id\": \"a\", \"action\": \"block\", "
			       "\"on_unknown\": \"forward\", \"match\": {\"uids\": [1]}}]}"),
		"rules[0].on_unknown: not one of block, allow"));
	p = compile_ok("{\"rules\": [{\"id\": \"u\", \"action\": \"block\", \"match\": "
		       "{\"uids\": [1]}}]}");
	assert_int_equal(policy_needs_owner(p), POLICY_NEEDS_UID);
	policy_free(p);
}

static void
test_holder(void **state)
{
	struct policy *a = policy_allow_all(), *b = policy_allow_all(), *got;
	struct policy_holder *h;

	(void)state;
	policy_set_version(a, 1);
	policy_set_version(b, 2);
	h = policy_holder_new(a, 2);
	got = policy_acquire(h, 0);
	assert_int_equal(policy_version(got), 1);
	policy_release(h, 0);
	policy_install(h, b); /* frees a: no slot holds it */
	assert_int_equal(policy_version(policy_current(h)), 2);
	assert_int_equal(policy_version(policy_acquire(h, 1)), 2);
	policy_release(h, 1);
	policy_holder_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_problems_have_paths),
	    cmocka_unit_test(test_first_match_wins),
	    cmocka_unit_test(test_empty_and_any),
	    cmocka_unit_test(test_bypass_list),
	    cmocka_unit_test(test_bypass_bounds),
	    cmocka_unit_test(test_ten_thousand_rules),
	    cmocka_unit_test(test_server_names),
	    cmocka_unit_test(test_name_forms),
	    cmocka_unit_test(test_owner_rules),
	    cmocka_unit_test(test_holder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
