/*
 * policy_rpc.c: the Policy service. Runs on the completion-queue thread,
 * which is the one writer of the policy holder: SetPolicy compiles the
 * document, checks expected_version, pushes the bypass rules into the
 * kernel, stores the new version, and only then swaps it in. A failure at
 * any step leaves the old policy in force, in the agent and in the kernel.
 */
#include "rpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "policies.h"
#include "policy.h"
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
reply_version(const struct policy_row *row, const struct policy *p, grpc_byte_buffer **reply)
{
	Redirect__V1__PolicyVersion v = REDIRECT__V1__POLICY_VERSION__INIT;

	v.version = row->version;
	v.document_json = row->document;
	v.set_at_us = row->set_at_us;
	v.author = row->author;
	v.sha256 = (char *)row->sha256;
	v.rules = (uint32_t)policy_n_rules(p);
	*reply = rpc_pack(&v.base);
	return GRPC_STATUS_OK;
}

grpc_status_code
rpc_get_policy(struct rpc_server *srv, const ProtobufCMessage *req, grpc_byte_buffer **reply,
    char *msg, size_t msglen)
{
	struct policy *p = policy_current(srv->deps.policy);
	struct policy_row row;
	grpc_status_code st;
	int r;

	(void)req;
	if (policy_version(p) == 0) { /* none set: say what is in force */
		struct policy_row none = {0, (char *)policy_document(p), 0, (char *)"", ""};

		return reply_version(&none, p, reply);
	}
	r = policies_get(srv->policy_db, policy_version(p), &row);
	if (r != 1) {
		snprintf(msg, msglen, "cannot read policy version %llu",
		    (unsigned long long)policy_version(p));
		return GRPC_STATUS_INTERNAL;
	}
	st = reply_version(&row, p, reply);
	policy_row_free(&row);
	return st;
}

grpc_status_code
rpc_set_policy(struct rpc_server *srv, const ProtobufCMessage *req, grpc_byte_buffer **reply,
    char *msg, size_t msglen)
{
	const Redirect__V1__SetPolicyRequest *rq = (const Redirect__V1__SetPolicyRequest *)req;
	struct policy *old = policy_current(srv->deps.policy), *p;
	struct policy_problems pr;
	struct policy_row row;
	uint64_t current = policy_version(old);
	int64_t v;
	char err[512];

	if ((p = policy_compile(rq->document_json, (size_t)-1, &pr)) == NULL) {
		join_problems(&pr, msg, msglen);
		policy_problems_free(&pr);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	/*
	 * Compare-and-set against the version in force. This thread is the only
	 * one that changes it, so the check and the swap below cannot be raced.
	 */
	if (rq->expected_version != current) {
		snprintf(msg, msglen,
		    "expected_version %llu, but the policy is at version %llu: read it again",
		    (unsigned long long)rq->expected_version, (unsigned long long)current);
		policy_free(p);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (redirect_apply_bypass(srv->deps.redirect, p, err, sizeof(err)) != 0) {
		snprintf(msg, msglen, "cannot update the kernel's bypass set: %s", err);
		policy_free(p);
		return GRPC_STATUS_INTERNAL;
	}
	v = policies_append(srv->policy_db, policy_document(p), srv->caller, clock_wall_us());
	if (v < 0) {
		snprintf(
		    msg, msglen, "cannot store the policy: %s", sqlite3_errmsg(srv->policy_db));
		if (redirect_apply_bypass(srv->deps.redirect, old, err, sizeof(err)) != 0)
			log_warnx("policy: cannot restore the bypass set: %s", err);
		policy_free(p);
		return GRPC_STATUS_INTERNAL;
	}
	policy_set_version(p, (uint64_t)v);
	policy_install(srv->deps.policy, p); /* old is freed here */
	log_info("policy version %lld set by %s (%zu rules)", (long long)v, srv->caller,
	    policy_n_rules(p));
	if (policies_get(srv->policy_db, (uint64_t)v, &row) != 1) {
		snprintf(msg, msglen, "stored, but cannot read it back");
		return GRPC_STATUS_INTERNAL;
	}
	reply_version(&row, p, reply);
	policy_row_free(&row);
	return GRPC_STATUS_OK;
}

/* The recorded connections, judged again by p. */
static int
simulate(struct rpc_server *srv, const struct policy *p, unsigned last,
    Redirect__V1__ValidatePolicyResponse *out, char *msg, size_t msglen)
{
	static const char sql[] =
	    "SELECT id, family, orig_dst_addr, orig_dst_port, redirect_state, verdict, server_name,"
	    " coalesce(uid, -1), exe"
	    " FROM connections WHERE verdict IN ('allow', 'block', 'bypass', 'forward')"
	    " AND redirect_state IN ('none', 'by_other') ORDER BY id DESC LIMIT ?1";
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(srv->db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(msg, msglen, "database error: %s", sqlite3_errmsg(srv->db));
		return -1;
	}
	sqlite3_bind_int(st, 1, (int)last);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *addr = (const char *)sqlite3_column_text(st, 2);
		const char *rs = (const char *)sqlite3_column_text(st, 4);
		const char *was = (const char *)sqlite3_column_text(st, 5);
		struct cidr c;
		struct endpoint e;
		struct policy_input in = {&e, 0, (const char *)sqlite3_column_text(st, 6),
		    (int32_t)sqlite3_column_int64(st, 7), (const char *)sqlite3_column_text(st, 8)};
		struct policy_verdict v;
		const char *now;

		if (addr == NULL || rs == NULL || was == NULL ||
		    addr_parse_cidr(addr, &c, NULL, 0) != 0)
			continue;
		memset(&e, 0, sizeof(e));
		e.family = (uint8_t)c.family;
		memcpy(e.addr, c.addr, sizeof(e.addr));
		e.port = (uint16_t)sqlite3_column_int(st, 3);
		in.redirect_state = strcmp(rs, "by_other") == 0 ? REDIRECT_BY_OTHER : REDIRECT_NONE;
		v = policy_evaluate(p, &in);
		now = policy_action_name(v.action);
		out->simulated++;
		if (strcmp(now, was) == 0)
			continue;
		out->changed++;
		if (out->n_examples < EXAMPLES_MAX) {
			char line[256];

			snprintf(line, sizeof(line),
			    "connection %lld to %s%s%s:%d: %s -> %s (%s%s)",
			    (long long)sqlite3_column_int64(st, 0), c.family == AF_INET6 ? "[" : "",
			    addr, c.family == AF_INET6 ? "]" : "", e.port, was, now,
			    v.rule >= 0 ? "rule " : "the default action",
			    v.rule >= 0 ? policy_rule_id(p, (size_t)v.rule) : "");
			out->examples[out->n_examples++] = strdup(line);
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(msg, msglen, "database error: %s", sqlite3_errmsg(srv->db));
		return -1;
	}
	return 0;
}

grpc_status_code
rpc_validate_policy(struct rpc_server *srv, const ProtobufCMessage *req, grpc_byte_buffer **reply,
    char *msg, size_t msglen)
{
	const Redirect__V1__ValidatePolicyRequest *rq =
	    (const Redirect__V1__ValidatePolicyRequest *)req;
	Redirect__V1__ValidatePolicyResponse out = REDIRECT__V1__VALIDATE_POLICY_RESPONSE__INIT;
	char *examples[EXAMPLES_MAX] = {0};
	struct policy_problems pr;
	struct policy *p;
	grpc_status_code st = GRPC_STATUS_OK;

	if (rq->simulate_last > SIMULATE_MAX) {
		snprintf(msg, msglen, "simulate_last: at most %d", SIMULATE_MAX);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	p = policy_compile(rq->document_json, (size_t)-1, &pr);
	if (p == NULL) {
		/* Not an error of the call: the answer is the list of problems. */
		out.n_problems = pr.n;
		out.problems = pr.msg;
		*reply = rpc_pack(&out.base);
		policy_problems_free(&pr);
		return GRPC_STATUS_OK;
	}
	out.examples = examples;
	if (rq->simulate_last > 0 && simulate(srv, p, rq->simulate_last, &out, msg, msglen) != 0)
		st = GRPC_STATUS_INTERNAL;
	if (st == GRPC_STATUS_OK)
		*reply = rpc_pack(&out.base);
	for (size_t i = 0; i < out.n_examples; i++)
		free(examples[i]);
	policy_free(p);
	return st;
}

struct history {
	Redirect__V1__PolicyVersion **v;
	size_t n, cap;
};

static int
add_version(void *arg, const struct policy_row *r)
{
	struct history *h = arg;
	Redirect__V1__PolicyVersion *v;

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
	return v->document_json == NULL || v->author == NULL || v->sha256 == NULL ? -1 : 0;
}

grpc_status_code
rpc_list_policy_history(struct rpc_server *srv, const ProtobufCMessage *req,
    grpc_byte_buffer **reply, char *msg, size_t msglen)
{
	Redirect__V1__ListPolicyHistoryResponse out =
	    REDIRECT__V1__LIST_POLICY_HISTORY_RESPONSE__INIT;
	struct history h = {0};
	grpc_status_code st = GRPC_STATUS_OK;

	(void)req;
	if (policies_history(srv->policy_db, add_version, &h) != 0) {
		snprintf(msg, msglen, "cannot read the policy history");
		st = GRPC_STATUS_INTERNAL;
	} else {
		out.n_versions = h.n;
		out.versions = h.v;
		*reply = rpc_pack(&out.base);
	}
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
rpc_fill_rule_hits(struct rpc_server *srv, Redirect__V1__Stats *s)
{
	struct policy *p = policy_current(srv->deps.policy);
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
