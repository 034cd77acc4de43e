/*
 * policy_rpc.c: the Policy service. The policy holder has one writer at a
 * time: whoever holds the core's policy_lock. SetPolicy compiles the
 * document, checks expected_version, pushes the bypass rules into the
 * kernel, stores the new version, and only then swaps it in, all under the
 * lock. A failure at any step leaves the old policy in force, in the agent
 * and in the kernel.
 */
#include "rpc_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "parse.h"
#include "policies.h"
#include "policy.h"
#include "query.h"
#include "redirect.h"

#define SIMULATE_MAX  100000
#define EXAMPLES_MAX  10
#define PROBLEMS_SENT 10 /* in an INVALID_ARGUMENT message; ValidatePolicy lists all */

/* Problems as one message: "a; b; c (and 4 more)". */
static void
join_problems(const struct policy_problems *pr, char *msg, size_t msglen)
{
	size_t off = 0;

	msg[0] = '\0';
	for (size_t i = 0; i < pr->n && i < PROBLEMS_SENT && off < msglen; i++)
		off += (size_t)snprintf(msg + off, msglen - off, "%s%s", i ? "; " : "", pr->msg[i]);
	if (pr->n + pr->more > PROBLEMS_SENT && off < msglen)
		snprintf(
		    msg + off, msglen - off, " (and %zu more)", pr->n + pr->more - PROBLEMS_SENT);
}

static grpc_status_code
reply_version(struct rpc_ctx *cx, const struct policy_row *row, const struct policy *p)
{
	Redirect__V1__PolicyVersion v = REDIRECT__V1__POLICY_VERSION__INIT;

	v.version = row->version;
	v.document_json = row->document;
	v.set_at_us = row->set_at_us;
	v.author = row->author;
	v.sha256 = (char *)row->sha256;
	v.rules = (uint32_t)policy_n_rules(p);
	return rpc_reply(cx, &v.base);
}

grpc_status_code
rpc_get_policy(struct rpc_ctx *cx)
{
	struct rpc_core *core = cx->core;
	struct policy *p;
	struct policy_row row;
	grpc_status_code st;
	int r;

	pthread_mutex_lock(&core->policy_lock);
	p = policy_current(core->deps.policy);
	if (policy_version(p) == 0) { /* none set: say what is in force */
		struct policy_row none = {0, (char *)policy_document(p), 0, (char *)"", ""};

		st = reply_version(cx, &none, p);
	} else if ((r = policies_get(core->policies, policy_version(p), &row)) != 1) {
		st = rpc_fail(cx, GRPC_STATUS_INTERNAL, "cannot read policy version %llu",
		    (unsigned long long)policy_version(p));
	} else {
		st = reply_version(cx, &row, p);
		policy_row_free(&row);
	}
	pthread_mutex_unlock(&core->policy_lock);
	return st;
}

/*
 * The one way a policy is put in force, with the lock held: the kernel's
 * bypass rules, then the stored version, then the swap. A failure at any
 * step leaves the old policy in force, in the agent and in the kernel.
 * fleet_source is "group.x@17" for a version the fleet set, "" otherwise.
 * Takes p. Returns its version, or -1 with the reason in msg.
 */
static int64_t
install_locked(struct rpc_core *core, struct policy *p, const char *author,
    const char *fleet_source, char *msg, size_t msglen)
{
	struct policy *old = policy_current(core->deps.policy);
	int64_t v;
	char err[512];

	if (core->deps.redirect != NULL &&
	    redirect_apply_bypass(core->deps.redirect, p, err, sizeof(err)) != 0) {
		policy_free(p);
		snprintf(msg, msglen, "cannot update the kernel's bypass set: %s", err);
		return -1;
	}
	v = policies_append(core->policies, policy_document(p), author, clock_wall_us());
	if (v < 0) {
		snprintf(
		    msg, msglen, "cannot store the policy: %s", policies_errmsg(core->policies));
		if (core->deps.redirect != NULL &&
		    redirect_apply_bypass(core->deps.redirect, old, err, sizeof(err)) != 0)
			log_warnx("policy: cannot restore the bypass set: %s", err);
		policy_free(p);
		return -1;
	}
	policy_set_version(p, (uint64_t)v);
	policy_install(core->deps.policy, p); /* old is freed here */
	snprintf(core->fleet_source, sizeof(core->fleet_source), "%s", fleet_source);
	log_info(
	    "policy version %lld set by %s (%zu rules)", (long long)v, author, policy_n_rules(p));
	return v;
}

/* SetPolicy's steps, with the lock held. */
static grpc_status_code
set_policy_locked(struct rpc_ctx *cx, struct policy *p, uint64_t expected)
{
	struct rpc_core *core = cx->core;
	uint64_t current = policy_version(policy_current(core->deps.policy));
	struct policy_row row;
	grpc_status_code st;
	int64_t v;

	/*
	 * Compare-and-set against the version in force. Only a holder of the
	 * lock changes it, so the check and the swap below cannot be raced.
	 */
	if (expected != current) {
		policy_free(p);
		return rpc_fail(cx, GRPC_STATUS_FAILED_PRECONDITION,
		    "expected_version %llu, but the policy is at version %llu: read it again",
		    (unsigned long long)expected, (unsigned long long)current);
	}
	/* A fleet's policy is changed in the fleet, not under it. */
	if (core->fleet_source[0] != '\0' && !core->cfg->fleet_local_policy) {
		policy_free(p);
		return rpc_fail(cx, GRPC_STATUS_FAILED_PRECONDITION,
		    "the policy in force comes from the fleet (%s): change it there, or set "
		    "[fleet] local_policy = allow",
		    core->fleet_source);
	}
	if ((v = install_locked(core, p, cx->caller, "", cx->msg, sizeof(cx->msg))) < 0)
		return GRPC_STATUS_INTERNAL;
	if (policies_get(core->policies, (uint64_t)v, &row) != 1)
		return rpc_fail(cx, GRPC_STATUS_INTERNAL, "stored, but cannot read it back");
	st = reply_version(cx, &row, policy_current(core->deps.policy));
	policy_row_free(&row);
	return st;
}

int
rpc_policy_from_fleet(struct rpc_core *core, const char *doc, const char *source,
    struct policy_problems *problems, char *msg, size_t msglen)
{
	struct policy *p;
	char author[160];
	int64_t v;

	memset(problems, 0, sizeof(*problems));
	msg[0] = '\0';
	if ((p = policy_compile(doc, (size_t)-1, problems)) == NULL) {
		join_problems(problems, msg, msglen);
		return -EINVAL;
	}
	snprintf(author, sizeof(author), "fleet:%s", source);
	pthread_mutex_lock(&core->policy_lock);
	v = install_locked(core, p, author, source, msg, msglen);
	pthread_mutex_unlock(&core->policy_lock);
	return v < 0 ? -EIO : 0;
}

int
rpc_policy_back_to_local(struct rpc_core *core, char *msg, size_t msglen)
{
	struct policy_problems pr;
	struct policy_row row;
	struct policy *p = NULL;
	uint64_t v;
	int found, rc = 0;

	pthread_mutex_lock(&core->policy_lock);
	if (core->fleet_source[0] == '\0')
		goto out; /* the local policy is in force already */
	/* The newest version not set by the fleet; none: the default (allow all). */
	for (v = policy_version(policy_current(core->deps.policy)), found = 0; v > 0 && !found;
	     v--) {
		if (policies_get(core->policies, v, &row) != 1)
			continue;
		if (strncmp(row.author, "fleet:", 6) != 0) {
			p = policy_compile(row.document, (size_t)-1, &pr);
			if (p == NULL)
				policy_problems_free(&pr);
			found = p != NULL;
		}
		policy_row_free(&row);
	}
	if (p == NULL)
		p = policy_allow_all();
	if (p == NULL) {
		snprintf(msg, msglen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	if (install_locked(core, p,
		found ? "local (no fleet key applies)" : "default (no fleet key applies)", "", msg,
		msglen) < 0)
		rc = -EIO;
out:
	pthread_mutex_unlock(&core->policy_lock);
	return rc;
}

void
rpc_policy_state(struct rpc_core *core, uint64_t *version, char *fleet_source, size_t len)
{
	pthread_mutex_lock(&core->policy_lock);
	*version = policy_version(policy_current(core->deps.policy));
	snprintf(fleet_source, len, "%s", core->fleet_source);
	pthread_mutex_unlock(&core->policy_lock);
}

grpc_status_code
rpc_set_policy(struct rpc_ctx *cx)
{
	const Redirect__V1__SetPolicyRequest *rq = (const Redirect__V1__SetPolicyRequest *)cx->req;
	struct policy_problems pr;
	struct policy *p;
	grpc_status_code st;

	/* Compiling is the slow part, and needs no lock. */
	if ((p = policy_compile(rq->document_json, (size_t)-1, &pr)) == NULL) {
		join_problems(&pr, cx->msg, sizeof(cx->msg));
		policy_problems_free(&pr);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	pthread_mutex_lock(&cx->core->policy_lock);
	st = set_policy_locked(cx, p, rq->expected_version);
	pthread_mutex_unlock(&cx->core->policy_lock);
	return st;
}

struct simulation {
	const struct policy *p;
	Redirect__V1__ValidatePolicyResponse *out;
};

/* One recorded connection, judged again. */
static int
judge_again(void *arg, const struct conn_row *r)
{
	struct simulation *sim = arg;
	struct cidr c;
	struct endpoint e;
	enum redirect_state rs;
	struct policy_input in = {&e, 0, r->server_name, (int32_t)r->uid, r->exe};
	struct policy_verdict v;
	const char *now;

	if (addr_parse_cidr(r->orig_dst_addr, &c, NULL, 0) != 0 ||
	    redirect_state_parse(r->redirect_state, &rs) != 0)
		return 0;
	memset(&e, 0, sizeof(e));
	e.family = (uint8_t)c.family;
	memcpy(e.addr, c.addr, sizeof(e.addr));
	e.port = (uint16_t)r->orig_dst_port;
	in.redirect_state = rs;
	if (r->exe[0] == '\0')
		in.exe = NULL;
	v = policy_evaluate(sim->p, &in);
	now = policy_action_name(v.action);
	sim->out->simulated++;
	if (strcmp(now, r->verdict) == 0)
		return 0;
	sim->out->changed++;
	if (sim->out->n_examples < EXAMPLES_MAX) {
		char line[256];

		snprintf(line, sizeof(line), "connection %llu to %s%s%s:%u: %s -> %s (%s%s)",
		    (unsigned long long)r->id, c.family == AF_INET6 ? "[" : "", r->orig_dst_addr,
		    c.family == AF_INET6 ? "]" : "", r->orig_dst_port, r->verdict, now,
		    v.rule >= 0 ? "rule " : "the default action",
		    v.rule >= 0 ? policy_rule_id(sim->p, (size_t)v.rule) : "");
		sim->out->examples[sim->out->n_examples++] = strdup(line);
	}
	return 0;
}

grpc_status_code
rpc_validate_policy(struct rpc_ctx *cx)
{
	const Redirect__V1__ValidatePolicyRequest *rq =
	    (const Redirect__V1__ValidatePolicyRequest *)cx->req;
	Redirect__V1__ValidatePolicyResponse out = REDIRECT__V1__VALIDATE_POLICY_RESPONSE__INIT;
	char *examples[EXAMPLES_MAX] = {0};
	struct policy_problems pr;
	struct policy *p;
	grpc_status_code st = GRPC_STATUS_OK;

	if (rq->simulate_last > SIMULATE_MAX)
		return rpc_fail(
		    cx, GRPC_STATUS_INVALID_ARGUMENT, "simulate_last: at most %d", SIMULATE_MAX);
	p = policy_compile(rq->document_json, (size_t)-1, &pr);
	if (p == NULL) {
		/* Not an error of the call: the answer is the list of problems. */
		out.n_problems = pr.n;
		out.problems = pr.msg;
		st = rpc_reply(cx, &out.base);
		policy_problems_free(&pr);
		return st;
	}
	out.examples = examples;
	if (rq->simulate_last > 0) {
		struct simulation sim = {p, &out};

		if (query_judged(cx->q, rq->simulate_last, judge_again, &sim) < 0)
			st = rpc_fail(
			    cx, GRPC_STATUS_INTERNAL, "database error: %s", query_errmsg(cx->q));
	}
	if (st == GRPC_STATUS_OK)
		st = rpc_reply(cx, &out.base);
	for (size_t i = 0; i < out.n_examples; i++)
		free(examples[i]);
	policy_free(p);
	return st;
}

#define HISTORY_PAGE_DEFAULT 20
#define HISTORY_PAGE_MAX     100
#define HISTORY_PAGE_BYTES   (8 * 1024 * 1024) /* a page stops short of this (one at least) */

struct history {
	Redirect__V1__PolicyVersion **v;
	size_t n, cap, bytes;
	uint64_t last; /* the oldest version taken */
	int full;      /* stopped for the byte budget: more may follow */
};

static int
add_version(void *arg, const struct policy_row *r)
{
	struct history *h = arg;
	Redirect__V1__PolicyVersion *v;
	size_t size = strlen(r->document) + strlen(r->author) + 128;

	if (h->n > 0 && h->bytes + size > HISTORY_PAGE_BYTES) {
		h->full = 1;
		return 1; /* the rest on the next page */
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 16;
		Redirect__V1__PolicyVersion **bigger = realloc(h->v, cap * sizeof(*bigger));

		if (bigger == NULL)
			return -1;
		h->v = bigger;
		h->cap = cap;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return -1;
	redirect__v1__policy_version__init(v);
	v->version = r->version;
	v->set_at_us = r->set_at_us;
	v->document_json = strdup(r->document);
	v->author = strdup(r->author);
	v->sha256 = strdup(r->sha256);
	h->v[h->n++] = v;
	h->bytes += size;
	h->last = r->version;
	return v->document_json == NULL || v->author == NULL || v->sha256 == NULL ? -1 : 0;
}

/*
 * Newest first, a page at a time: five 3.5 MB versions once made the whole
 * history one reply over the 16 MiB limit, for good. A page ends at
 * page_size versions or near HISTORY_PAGE_BYTES, whichever comes first;
 * next_page_token is the version to continue below.
 */
grpc_status_code
rpc_list_policy_history(struct rpc_ctx *cx)
{
	const Redirect__V1__ListPolicyHistoryRequest *rq =
	    (const Redirect__V1__ListPolicyHistoryRequest *)cx->req;
	Redirect__V1__ListPolicyHistoryResponse out =
	    REDIRECT__V1__LIST_POLICY_HISTORY_RESPONSE__INIT;
	unsigned page = rq->page_size == 0 ? HISTORY_PAGE_DEFAULT : rq->page_size;
	struct history h = {0};
	grpc_status_code st = GRPC_STATUS_OK;
	uint64_t below = 0;
	char next[24] = "";

	if (page > HISTORY_PAGE_MAX)
		return rpc_fail(cx, GRPC_STATUS_INVALID_ARGUMENT,
		    "page_size: %u is over the limit of %d", page, HISTORY_PAGE_MAX);
	if (rq->page_token[0] != '\0' && parse_u64(rq->page_token, 0, 1, UINT64_MAX, &below) != 0)
		return rpc_fail(
		    cx, GRPC_STATUS_INVALID_ARGUMENT, "page_token: not a token this method gave");
	pthread_mutex_lock(&cx->core->policy_lock);
	/* One more than the page tells whether another follows. */
	if (policies_history(cx->core->policies, below, page + 1, add_version, &h) != 0) {
		st = rpc_fail(cx, GRPC_STATUS_INTERNAL, "cannot read the policy history");
	} else {
		size_t n = h.n;

		if (n > page) { /* the extra one only says that more follow */
			n = page;
			h.last = h.v[n - 1]->version;
		}
		if ((h.n > page || h.full) && n > 0)
			snprintf(next, sizeof(next), "%llu", (unsigned long long)h.last);
		out.n_versions = n;
		out.versions = h.v;
		out.next_page_token = next;
		st = rpc_reply(cx, &out.base);
	}
	pthread_mutex_unlock(&cx->core->policy_lock);
	for (size_t i = 0; i < h.n; i++) {
		free(h.v[i]->document_json);
		free(h.v[i]->author);
		free(h.v[i]->sha256);
		free(h.v[i]);
	}
	free(h.v);
	return st;
}

void
rpc_fill_rule_hits(struct rpc_core *core, Redirect__V1__Stats *s)
{
	struct policy *p = policy_current(core->deps.policy);
	size_t n = policy_n_rules(p) + 1;
	Redirect__V1__RuleHits *hits = calloc(n, sizeof(*hits));
	Redirect__V1__RuleHits **ptrs = calloc(n, sizeof(*ptrs));

	s->policy_version = policy_version(p);
	if (hits == NULL || ptrs == NULL) {
		free(hits);
		free(ptrs);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int rule = i + 1 == n ? -1 : (int)i;

		redirect__v1__rule_hits__init(&hits[i]);
		hits[i].rule_id = (char *)(rule < 0 ? "" : policy_rule_id(p, i));
		hits[i].action = (char *)policy_action_name(policy_rule_action(p, rule));
		hits[i].hits = policy_hits(p, rule);
		ptrs[i] = &hits[i];
	}
	s->n_rule_hits = n;
	s->rule_hits = ptrs;
}

void
rpc_free_rule_hits(Redirect__V1__Stats *s)
{
	if (s->rule_hits != NULL)
		free(s->rule_hits[0]); /* the array of messages */
	free(s->rule_hits);
}
