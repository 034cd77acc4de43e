/*
 * control.h: fleet control over the agent's NATS connection (fleet.h).
 *
 * - Inventory: the agent's entry in the key-value bucket [fleet]
 *   agents_bucket, key = its UUID, a JSON object (identity, groups, the
 *   policy in force and where it came from, health, export backlog, last
 *   seen), written every [fleet] heartbeat_s and at once on a change. The
 *   bucket's age limit makes an agent that stopped reporting disappear.
 * - Policy by group: keys "agent.<uuid>" and "group.<name>" of [fleet]
 *   policy_bucket. The first that exists, in that order ([fleet] groups'
 *   order), is in force; with none, the locally set policy. The bucket
 *   republishes each change to "<prefix>.policy.<key>", which the agent
 *   subscribes to; on such a message, on every (re)connection and at each
 *   heartbeat it reads its keys' current values (a direct get each), so a
 *   change missed while away is applied when it is back. A document that is
 *   not valid is not applied: the inventory says which key and revision,
 *   with the problems.
 * - Console calls: the unary API methods as NATS request/reply on
 *   "<prefix>.rpc.<uuid>.<Service>.<Method>" (and "<prefix>.rpc.all.Agent.
 *   GetInfo", answered by every agent), the same protobuf messages as over
 *   gRPC; an error reply carries headers Status (the gRPC code) and
 *   Status-Message. Who may call what is the NATS server's permissions
 *   (deploy/nats/).
 *
 * The agent's own parts (the policy path, health, the API's methods) come
 * in as hooks, so that fleet/ does not depend on rpc/.
 */
#ifndef RA_CONTROL_H
#define RA_CONTROL_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct fleet;
struct fleet_control;

#define FLEET_PROBLEM_LEN 256
#define FLEET_PROBLEMS    10 /* kept for the inventory */

struct fleet_hooks {
	void *ctx;
	/*
	 * Put doc (from source "group.x@17") in force. 0; -EINVAL when it is not
	 * valid (up to max problems copied into probs, *n set); -EIO (msg).
	 */
	int (*apply)(void *ctx, const char *doc, const char *source,
	    char (*probs)[FLEET_PROBLEM_LEN], size_t max, size_t *n, char *msg, size_t msglen);
	/* No key applies: the local policy again. 0, or a negative errno (msg). */
	int (*back_to_local)(void *ctx, char *msg, size_t msglen);
	/* The version in force and its fleet source ("" when local). */
	void (*policy_state)(void *ctx, uint64_t *version, char *source, size_t len);
	/* 1 serving, 0 degraded with reasons (up to max, *n set). */
	int (*health)(void *ctx, char (*reasons)[640], size_t max, size_t *n);
	/* The export's backlog: events pending, and how old the oldest is (s). */
	void (*export_state)(void *ctx, uint64_t *pending, int64_t *lag_s);
	/* One API method (rpc_core_call). Returns the gRPC status code. */
	int (*call)(void *ctx, const char *path, const uint8_t *req, size_t len, uint8_t **reply,
	    size_t *reply_len, char *msg, size_t msglen);
};

/*
 * Prepare the agent's fleet control on fleet (nothing is sent yet). It
 * keeps its own copy of cfg. Returns 0 with *out set, or -1 with err set.
 */
int fleet_control_new(struct fleet_control **out, const struct config *cfg, struct fleet *fleet,
    const char *uuid, const char *hostname, int64_t started_at_us, const struct fleet_hooks *hooks,
    char *err, size_t errlen);

/*
 * At start, before connections are taken: wait up to [fleet] policy_wait_s
 * for the connection, then read the agent's policy keys and apply what they
 * say. Returns 1 when the fleet was asked, 0 when it could not be reached in
 * time (the last policy applied stays in force, from the database).
 */
int fleet_control_sync(struct fleet_control *c);

/* Start the thread: subscriptions, the inventory's heartbeat, policy changes. */
int fleet_control_start(struct fleet_control *c, char *err, size_t errlen);

/*
 * A reload changed [fleet] groups, heartbeat_s or a bucket's name: the
 * thread binds again with cfg (copied), reads the new keys and puts the
 * first one's policy in force (or the local one when none applies). The
 * same object stays: callbacks the library is running keep a valid one.
 * Returns 0, or -1 (out of memory).
 */
int fleet_control_reconfigure(struct fleet_control *c, const struct config *cfg);

/* Stop and free. NULL is ignored. */
void fleet_control_free(struct fleet_control *c);

#endif
