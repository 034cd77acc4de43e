/*
 * parse.c: policy documents: parse, check every field (each problem with
 * its path), compile (policy.h). index.c answers the verdicts.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse.h"
#include "policy_internal.h"

/* ---- problems ---- */

void
policy_problems_free(struct policy_problems *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->msg[i]);
	p->n = 0;
	p->more = 0;
}

static void LOG_PRINTF(2, 3) problem(struct policy_problems *p, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (p->n == POLICY_MAX_PROBLEMS) {
		p->more++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((p->msg[p->n] = strdup(buf)) != NULL)
		p->n++;
}

/* ---- parsing ---- */

/* A policy action is a verdict the policy may give: not refuse. */
static int
parse_action(const char *s, enum policy_action *out)
{
	enum conn_verdict v;

	if (conn_verdict_parse(s, &v) != 0 || v == VERDICT_REFUSE)
		return -1;
	*out = (enum policy_action)v;
	return 0;
}

static int
parse_state(const char *s, unsigned *bit)
{
	enum redirect_state st;

	if (redirect_state_parse(s, &st) != 0)
		return -1;
	*bit = 1u << st;
	return 0;
}

static int
valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > POLICY_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("_-.:", s[i]) == NULL)
			return 0;
	return 1;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct port_range *x = a, *y = b;

	return x->lo != y->lo ? (x->lo < y->lo ? -1 : 1) : (x->hi < y->hi ? -1 : x->hi > y->hi);
}

/* Sort and merge overlapping or touching ranges: the lookup binary-searches them. */
static size_t
merge_ranges(struct port_range *r, size_t n)
{
	size_t out = 0;

	if (n == 0)
		return 0;
	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 1; i < n; i++) {
		if ((unsigned)r[i].lo <= (unsigned)r[out].hi + 1) {
			if (r[i].hi > r[out].hi)
				r[out].hi = r[i].hi;
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

/*
 * Every match field is a list whose items are checked one by one: an item
 * function checks one and appends it to the rule (room for the whole list is
 * made first), or names its problem and returns.
 */
typedef void (*item_fn)(
    json_t *v, size_t i, struct rule *r, const char *path, struct policy_problems *pr);

static void
parse_list(json_t *a, struct rule *r, const char *path, struct policy_problems *pr, void **room,
    size_t item_size, item_fn one)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a)) {
		problem(pr, "%s: not a list", path);
		return;
	}
	if (json_array_size(a) == 0)
		return;
	if (room != NULL && (*room = calloc(json_array_size(a), item_size)) == NULL) {
		problem(pr, "%s: out of memory", path);
		return;
	}
	json_array_foreach(a, i, v)
	{
		one(v, i, r, path, pr);
	}
}

static void
port_item(json_t *v, size_t i, struct rule *r, const char *path, struct policy_problems *pr)
{
	json_int_t lo, hi;

	if (json_is_integer(v)) {
		lo = hi = json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		lo = strtol(s, &end, 10);
		hi = lo;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		if (end == s || *end != '\0' || !isdigit((unsigned char)s[0])) {
			problem(pr, "%s[%zu]: '%s' is not a port or a range like 8000-8080", path,
			    i, s);
			return;
		}
	} else {
		problem(pr, "%s[%zu]: not a port", path, i);
		return;
	}
	if (lo < 1 || hi > 65535 || lo > hi) {
		problem(pr, "%s[%zu]: %lld-%lld is not a port range (1 to 65535, low first)", path,
		    i, (long long)lo, (long long)hi);
		return;
	}
	r->ports[r->n_ports++] = (struct port_range){(uint16_t)lo, (uint16_t)hi};
}

static void
cidr_item(json_t *v, size_t i, struct rule *r, const char *path, struct policy_problems *pr)
{
	char err[128];

	if (!json_is_string(v)) {
		problem(pr, "%s[%zu]: not a CIDR (a string like \"10.0.0.0/8\")", path, i);
		return;
	}
	if (addr_parse_cidr(json_string_value(v), &r->cidrs[r->n_cidrs], err, sizeof(err)) != 0) {
		problem(pr, "%s[%zu]: not a CIDR: %s", path, i, err);
		return;
	}
	r->n_cidrs++;
}

static void
state_item(json_t *v, size_t i, struct rule *r, const char *path, struct policy_problems *pr)
{
	unsigned bit;

	if (!json_is_string(v) || parse_state(json_string_value(v), &bit) != 0) {
		problem(
		    pr, "%s[%zu]: not one of none, by_other, by_self, previously_by_self", path, i);
		return;
	}
	r->states |= bit;
}

/*
 * A DNS name, "*." and one, or "." and one: letters, digits, '-', '_' and
 * dots; a trailing dot (the root) is allowed and dropped by name_item.
 */
static int
valid_name_pattern(const char *s)
{
	size_t n = strlen(s);

	if (s[0] == '*' && s[1] == '.')
		s += 2, n -= 2;
	else if (s[0] == '.')
		s += 1, n -= 1;
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
			return 0;
	return 1;
}

/* Kept lower case and without a trailing dot, as the sniffer gives names. */
static void
name_item(json_t *v, size_t i, struct rule *r, const char *path, struct policy_problems *pr)
{
	char *lower;
	size_t n;

	if (!json_is_string(v) || !valid_name_pattern(json_string_value(v))) {
		problem(pr,
		    "%s[%zu]: not a server name (\"host.example.com\", \"*.example.com\" or "
		    "\".example.com\")",
		    path, i);
		return;
	}
	if ((lower = strdup(json_string_value(v))) == NULL) {
		problem(pr, "%s: out of memory", path);
		return;
	}
	for (char *c = lower; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	if ((n = strlen(lower)) > 1 && lower[n - 1] == '.')
		lower[n - 1] = '\0';
	r->names[r->n_names++] = lower;
}

static void
uid_item(json_t *v, size_t i, struct rule *r, const char *path, struct policy_problems *pr)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 4294967294LL) {
		problem(pr, "%s[%zu]: not a uid (0 to 4294967294)", path, i);
		return;
	}
	r->uids[r->n_uids++] = (uint32_t)json_integer_value(v);
}

static void
exe_item(json_t *v, size_t i, struct rule *r, const char *path, struct policy_problems *pr)
{
	if (!json_is_string(v) || json_string_value(v)[0] != '/') {
		problem(pr, "%s[%zu]: not an absolute path (\"/usr/bin/curl\")", path, i);
		return;
	}
	if ((r->exes[r->n_exes] = strdup(json_string_value(v))) == NULL) {
		problem(pr, "%s: out of memory", path);
		return;
	}
	r->n_exes++;
}

/*
 * "HOST:PORT" or "[V6]:PORT". An address is taken as it is; a name is kept
 * as a name and resolved when a connection is forwarded (policy.h): what a
 * DNS server answers, or fails to, never decides whether a document is
 * valid, nor whether the agent's policy is in force.
 */
static void
parse_forward_to(json_t *v, struct rule *r, const char *path, struct policy_problems *pr)
{
	const char *text = json_is_string(v) ? json_string_value(v) : "";
	const char *colon = strrchr(text, ':');
	struct forward *f = &r->forward;

	if (!json_is_string(v) || colon == NULL || colon == text) {
		problem(pr, "%s: not HOST:PORT (a CONNECT proxy, e.g. \"proxy.corp:3128\")", path);
		return;
	}
	if (parse_port(colon + 1, &f->port) != 0) {
		problem(pr, "%s: '%s' is not a port", path, colon + 1);
		return;
	}
	if (parse_host_port(text, f->host, sizeof(f->host), &f->port) != 0) {
		problem(pr, "%s: an IPv6 address goes in brackets: [fd00::1]:3128", path);
		return;
	}
	if (addr_parse_sockaddr(f->host, f->port, &f->addr) == 0) {
		f->is_addr = 1;
		return;
	}
	if (!valid_name_pattern(f->host) || f->host[0] == '*' || f->host[0] == '.')
		problem(pr, "%s: '%s' is not a host name or an address", path, f->host);
}

static void
parse_match(json_t *m, struct rule *r, const char *path, struct policy_problems *pr)
{
	const char *key;
	json_t *v;
	char sub[128];

	if (!json_is_object(m)) {
		problem(pr, "%s: not an object", path);
		return;
	}
	json_object_foreach(m, key, v)
	{
		snprintf(sub, sizeof(sub), "%s.%s", path, key);
		if (strcmp(key, "dst_cidrs") == 0)
			parse_list(v, r, sub, pr, (void **)&r->cidrs, sizeof(*r->cidrs), cidr_item);
		else if (strcmp(key, "dst_ports") == 0) {
			parse_list(v, r, sub, pr, (void **)&r->ports, sizeof(*r->ports), port_item);
			r->n_ports = merge_ranges(r->ports, r->n_ports);
		} else if (strcmp(key, "redirect_states") == 0)
			parse_list(v, r, sub, pr, NULL, 0, state_item);
		else if (strcmp(key, "server_names") == 0)
			parse_list(v, r, sub, pr, (void **)&r->names, sizeof(*r->names), name_item);
		else if (strcmp(key, "uids") == 0)
			parse_list(v, r, sub, pr, (void **)&r->uids, sizeof(*r->uids), uid_item);
		else if (strcmp(key, "exe_paths") == 0)
			parse_list(v, r, sub, pr, (void **)&r->exes, sizeof(*r->exes), exe_item);
		else
			problem(pr, "%s: unknown field", sub);
	}
}

static void
parse_rule(json_t *o, size_t i, struct rule *r, struct policy_problems *pr)
{
	const char *key;
	json_t *v;
	char path[64];
	int have_action = 0;

	r->on_unknown = POLICY_BLOCK; /* never a silent allow */
	snprintf(path, sizeof(path), "rules[%zu]", i);
	if (!json_is_object(o)) {
		problem(pr, "%s: not an object", path);
		return;
	}
	json_object_foreach(o, key, v)
	{
		if (strcmp(key, "id") == 0) {
			if (!json_is_string(v) || !valid_id(json_string_value(v)))
				problem(pr, "%s.id: 1 to %d letters, digits, '_', '-', '.' or ':'",
				    path, POLICY_ID_MAX);
			else
				snprintf(r->id, sizeof(r->id), "%s", json_string_value(v));
		} else if (strcmp(key, "description") == 0) {
			if (!json_is_string(v))
				problem(pr, "%s.description: not a string", path);
		} else if (strcmp(key, "action") == 0) {
			have_action = 1;
			if (!json_is_string(v) ||
			    parse_action(json_string_value(v), &r->action) != 0)
				problem(pr, "%s.action: not one of allow, block, bypass, forward",
				    path);
		} else if (strcmp(key, "match") == 0) {
			char sub[80];

			snprintf(sub, sizeof(sub), "%s.match", path);
			parse_match(v, r, sub, pr);
		} else if (strcmp(key, "forward_to") == 0) {
			char sub[80];

			snprintf(sub, sizeof(sub), "%s.forward_to", path);
			parse_forward_to(v, r, sub, pr);
		} else if (strcmp(key, "on_unknown") == 0) {
			if (!json_is_string(v) ||
			    parse_action(json_string_value(v), &r->on_unknown) != 0 ||
			    (r->on_unknown != POLICY_BLOCK && r->on_unknown != POLICY_ALLOW))
				problem(pr, "%s.on_unknown: not one of block, allow", path);
		} else {
			problem(pr, "%s.%s: unknown field", path, key);
		}
	}
	if (json_object_get(o, "id") == NULL)
		problem(pr, "%s.id: required", path);
	if (!have_action)
		problem(pr, "%s.action: required", path);
	if (r->action == POLICY_BYPASS &&
	    (r->states != 0 || r->n_names > 0 || r->n_uids > 0 || r->n_exes > 0))
		problem(pr,
		    "%s.match: a bypass rule matches only dst_cidrs and dst_ports (the kernel "
		    "applies it)",
		    path);
	if (json_object_get(o, "on_unknown") != NULL && r->n_uids == 0 && r->n_exes == 0)
		problem(pr,
		    "%s.on_unknown: only for a rule that matches uids or exe_paths (the client's "
		    "owner)",
		    path);
	if (r->action == POLICY_FORWARD && json_object_get(o, "forward_to") == NULL)
		problem(pr, "%s.forward_to: required with action forward", path);
	if (r->action != POLICY_FORWARD && json_object_get(o, "forward_to") != NULL)
		problem(pr, "%s.forward_to: only for action forward", path);
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
rules_free(struct rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rules[i].cidrs);
		free(rules[i].ports);
		for (size_t k = 0; k < rules[i].n_names; k++)
			free(rules[i].names[k]);
		free(rules[i].names);
		for (size_t k = 0; k < rules[i].n_exes; k++)
			free(rules[i].exes[k]);
		free(rules[i].exes);
		free(rules[i].uids);
	}
	free(rules);
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	rules_free(p->rules, p->n_rules);
	policy_index_free(p);
	free(p->document);
	free(p->hits);
	free(p);
}

static struct policy *
policy_new(size_t n_rules)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->n_rules = n_rules;
	p->rules = calloc(n_rules ? n_rules : 1, sizeof(*p->rules));
	p->hits = calloc(n_rules + 1, sizeof(*p->hits));
	if (p->rules == NULL || p->hits == NULL) {
		policy_free(p);
		return NULL;
	}
	return p;
}

struct policy *
policy_compile(const char *text, size_t len, struct policy_problems *pr)
{
	json_error_t jerr;
	json_t *doc, *rules = NULL, *v;
	struct policy *p = NULL;
	const char *key;
	size_t i, n_rules = 0;

	memset(pr, 0, sizeof(*pr));
	doc = len == (size_t)-1 ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr)
				: json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		problem(pr, "not JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		problem(pr, "the document must be an object");
		goto out;
	}
	rules = json_object_get(doc, "rules");
	if (rules != NULL && !json_is_array(rules))
		problem(pr, "rules: not a list");
	else if (rules != NULL && (n_rules = json_array_size(rules)) > POLICY_MAX_RULES)
		problem(pr, "rules: %zu rules, at most %d", n_rules, POLICY_MAX_RULES);
	if (pr->n > 0)
		goto out;
	if ((p = policy_new(n_rules)) == NULL) {
		problem(pr, "out of memory");
		goto out;
	}
	p->default_action = POLICY_ALLOW;
	json_object_foreach(doc, key, v)
	{
		if (strcmp(key, "default_action") == 0) {
			if (!json_is_string(v) ||
			    parse_action(json_string_value(v), &p->default_action) != 0 ||
			    p->default_action == POLICY_BYPASS)
				problem(pr, "default_action: not one of allow, block");
		} else if (strcmp(key, "rules") != 0 && strcmp(key, "description") != 0) {
			problem(pr, "%s: unknown field", key);
		}
	}
	for (i = 0; i < n_rules; i++)
		parse_rule(json_array_get(rules, i), i, &p->rules[i], pr);

	/* Across rules: unique ids, bypass rules first. */
	{
		size_t last_bypass = 0, first_other = n_rules;

		for (i = 0; i < n_rules; i++) {
			if (p->rules[i].action == POLICY_BYPASS)
				last_bypass = i;
			else if (first_other == n_rules)
				first_other = i;
		}
		size_t n_bypass = 0, elements = 0;

		for (i = first_other + 1; i <= last_bypass && i < n_rules; i++)
			if (p->rules[i].action == POLICY_BYPASS)
				problem(pr,
				    "rules[%zu]: a bypass rule must come before every allow or "
				    "block "
				    "rule (the kernel skips its traffic before any rule is "
				    "applied)",
				    i);
		/* What the kernel is given is bounded: a set per rule, an element per item. */
		for (i = 0; i < n_rules; i++) {
			if (p->rules[i].action != POLICY_BYPASS)
				continue;
			n_bypass++;
			elements += p->rules[i].n_cidrs + p->rules[i].n_ports;
		}
		if (n_bypass > POLICY_MAX_BYPASS_RULES)
			problem(pr, "rules: %zu bypass rules, more than the %d the kernel is given",
			    n_bypass, POLICY_MAX_BYPASS_RULES);
		if (elements > POLICY_MAX_BYPASS_ELEMENTS)
			problem(pr,
			    "rules: the bypass rules hold %zu CIDRs and port ranges, more than the "
			    "%d the kernel is given",
			    elements, POLICY_MAX_BYPASS_ELEMENTS);
	}
	if (pr->n == 0) {
		/* Sorting copies is simpler than a hash for a check done once. */
		char **ids = malloc((n_rules ? n_rules : 1) * sizeof(*ids));

		if (ids == NULL) {
			problem(pr, "out of memory");
		} else {
			for (i = 0; i < n_rules; i++)
				ids[i] = p->rules[i].id;
			qsort(ids, n_rules, sizeof(*ids), cmp_id);
			for (i = 1; i < n_rules; i++)
				if (strcmp(ids[i - 1], ids[i]) == 0)
					problem(
					    pr, "rules: id '%s' is used more than once", ids[i]);
			free(ids);
		}
	}
	if (pr->n > 0)
		goto out;
	for (i = 0; i < n_rules; i++) {
		if (p->rules[i].n_names > 0)
			p->needs_server_name = 1;
		if (p->rules[i].n_uids > 0)
			p->needs_owner |= POLICY_NEEDS_UID;
		if (p->rules[i].n_exes > 0)
			p->needs_owner |= POLICY_NEEDS_UID | POLICY_NEEDS_EXE;
	}
	if (policy_index_build(p) != 0 ||
	    (p->document = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		problem(pr, "out of memory");
		goto out;
	}
	json_decref(doc);
	return p;
out:
	json_decref(doc);
	policy_free(p);
	return NULL;
}

struct policy *
policy_allow_all(void)
{
	struct policy_problems pr;

	return policy_compile("{\"default_action\":\"allow\",\"rules\":[]}", (size_t)-1, &pr);
}

void
policy_set_version(struct policy *p, uint64_t version)
{
	p->version = version;
}

uint64_t
policy_version(const struct policy *p)
{
	return p->version;
}

size_t
policy_n_rules(const struct policy *p)
{
	return p->n_rules;
}

const char *
policy_rule_id(const struct policy *p, size_t i)
{
	return i < p->n_rules ? p->rules[i].id : "";
}

int
policy_needs_server_name(const struct policy *p)
{
	return p->needs_server_name;
}

unsigned
policy_needs_owner(const struct policy *p)
{
	return p->needs_owner;
}

const struct forward *
policy_forward_to(const struct policy *p, int rule)
{
	return rule >= 0 && (size_t)rule < p->n_rules && p->rules[rule].action == POLICY_FORWARD
		   ? &p->rules[rule].forward
		   : NULL;
}

enum policy_action
policy_rule_action(const struct policy *p, int rule)
{
	return rule < 0 || (size_t)rule >= p->n_rules ? p->default_action : p->rules[rule].action;
}

const char *
policy_document(const struct policy *p)
{
	return p->document;
}

size_t
policy_bypass_list(const struct policy *p, struct policy_bypass *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_rules && p->rules[i].action == POLICY_BYPASS; i++, n++) {
		const struct rule *r = &p->rules[i];

		if (n < max)
			out[n] = (struct policy_bypass){r->cidrs, r->n_cidrs, r->ports, r->n_ports};
	}
	return n;
}
