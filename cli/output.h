/*
 * output.h: what redirectctl prints for each reply (output.c): a table or
 * lines for people, or one JSON document for scripts (--json; field names
 * as in the API).
 *
 * Every string in a human-readable line comes from the agent, and some
 * from the recorded clients (an executable path, a server name): control
 * characters are printed escaped (\e, \x07, ...), so nothing a client sent
 * reaches the terminal as a command. JSON is escaped by the encoder.
 */
#ifndef RA_CLI_OUTPUT_H
#define RA_CLI_OUTPUT_H

#include "redirect/v1/agent.pb-c.h"
#include "redirect/v1/policy.pb-c.h"
#include "redirect/v1/telemetry.pb-c.h"
#include <jansson.h>

void out_status(int json, const Redirect__V1__AgentInfo *info, const Redirect__V1__Health *h);
void out_stats(int json, const Redirect__V1__Stats *s);

/* conns: rows as pages arrive; out_conns_end prints the JSON document. */
struct out_conns;
struct out_conns *out_conns_begin(int json);
void out_conns_row(struct out_conns *o, const Redirect__V1__Connection *k);
void out_conns_end(struct out_conns *o);

void out_conn(int json, const Redirect__V1__Connection *k);

/* watch: a header line, then one line (or compact JSON document) per event, flushed. */
void out_watch_header(int json);
void out_event(int json, const Redirect__V1__ConnectionEvent *ev);

void out_policy(int json, const Redirect__V1__PolicyVersion *v);
void out_policy_set(int json, const Redirect__V1__PolicyVersion *v);
void out_validate(
    int json, const char *file, unsigned simulate, const Redirect__V1__ValidatePolicyResponse *r);
/* The policy history, from all its pages. */
void out_history(int json, Redirect__V1__ListPolicyHistoryResponse *const *pages, size_t n_pages);

/* s with control characters escaped, into buf (for one line of output). Returns buf. */
const char *out_safe(const char *s, char *buf, size_t len);

void out_reload(int json, const char *message);

/* The fleet's views (redirectctl fleet): the inventory's JSON values as a table or JSON. */
int out_agent_stale(json_t *agent, int64_t now_s);
void out_agents(int json, json_t *agents);
void out_fleet_record(int json, const char *data, size_t len);
void out_fleet_policy(
    int json, const char *key, uint64_t revision, int64_t created_s, const char *doc);

#endif
