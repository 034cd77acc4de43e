/*
 * control.c: fleet control (control.h), with the NATS C client.
 *
 * One thread owns the JetStream context, the two buckets and the
 * subscriptions, and makes them again on each new connection (fleet.c's
 * generation). The library's callbacks only set flags (a policy changed)
 * or answer a call (which the API's own locks serialise): everything that
 * writes to the buckets happens on the thread.
 */
#include "control.h"

#include <errno.h>
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "fleet.h"
#include "log.h"
#include "platform.h"
#include "version.h"

#define CONTROL_WAIT_MS  2000 /* a bucket operation, at most */
#define CONTROL_TICK_MS  1000 /* the thread looks at the connection this often */
#define CONTROL_MAX_SUBS (2 + 1 + CONFIG_MAX_IDENTITIES)
#define CONTROL_KEY_MAX  (CONFIG_IDENTITY_MAX + 16)
#define CONTROL_MSG_MAX  2048 /* an error reply's Status-Message */

struct fleet_control {
	const struct config *cfg; /* &own: the thread's (a reload hands it next_cfg) */
	struct config own;
	struct fleet *fleet;
	struct fleet_hooks hooks;
	char uuid[40], hostname[256], started_at[32];

	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;            /* under lock */
	int policy_dirty;        /* under lock: a key changed, or the connection is new */
	int report_now;          /* under lock: the inventory entry changed */
	struct config *next_cfg; /* under lock: fleet_control_reconfigure's */

	/* the thread's (or fleet_control_sync's, before the thread runs) */
	unsigned gen;
	int bound;
	jsCtx *js;
	kvStore *agents, *policy;
	natsSubscription *subs[CONTROL_MAX_SUBS];
	size_t n_subs;
	char bind_error[512];
	/* the last rejected document: its key, revision and problems */
	char rejected_key[CONTROL_KEY_MAX];
	uint64_t rejected_rev;
	char problems[FLEET_PROBLEMS][FLEET_PROBLEM_LEN];
	size_t n_problems;
	int64_t next_beat_us;  /* the heartbeat's cadence (kept when a change reports early) */
	int64_t change_due_us; /* 0, or when a changed entry is written (jittered) */
	int64_t next_full_us;  /* the keys are read again, in case a notification was missed */
	int64_t next_bind_us;  /* after a failed bind */
	unsigned seed;
	/*
	 * The agent's policy keys (agent.<uuid>, then group.<g> in order) as
	 * last known: read in full on each connection and now and then, and
	 * kept up to date by the bucket's republished changes, which carry the
	 * value (so a group change costs the server no read per agent). Under
	 * lock: the callbacks write it.
	 */
	struct policy_key {
		char key[CONTROL_KEY_MAX];
		uint64_t rev;
		char *doc; /* NULL: no such key (or deleted) */
	} keys[1 + CONFIG_MAX_IDENTITIES];
	size_t n_keys;
	char subject_base[128]; /* "<prefix>.policy." */
};

/* A random delay in [0, ms): a fleet's agents must not write all at once. */
static int64_t
jitter_us(struct fleet_control *c, unsigned ms)
{
	c->seed = c->seed * 1103515245u + 12345u;
	return ms > 0 ? (int64_t)((c->seed >> 8) % ms) * 1000 : 0;
}

static void
key_set(struct policy_key *k, uint64_t rev, const char *doc, size_t len)
{
	free(k->doc);
	k->doc = doc != NULL ? strndup(doc, len) : NULL;
	k->rev = rev;
}

static void
wake(struct fleet_control *c, int *flag)
{
	pthread_mutex_lock(&c->lock);
	*flag = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

/* ---- the library's callbacks ---- */

/*
 * A policy key changed, republished by the bucket with its value and
 * headers KV-Operation (absent: a put) and Nats-Sequence (the revision).
 */
static void
on_policy(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	struct fleet_control *c = arg;
	const char *subject = natsMsg_GetSubject(msg), *op = NULL, *seq = NULL;
	size_t base = strlen(c->subject_base);
	uint64_t rev;

	(void)nc, (void)sub;
	if (strncmp(subject, c->subject_base, base) != 0 ||
	    natsMsgHeader_Get(msg, "Nats-Sequence", &seq) != NATS_OK || seq == NULL) {
		natsMsg_Destroy(msg);
		wake(c, &c->policy_dirty); /* not as expected: read the keys again */
		return;
	}
	(void)natsMsgHeader_Get(msg, "KV-Operation", &op);
	rev = strtoull(seq, NULL, 10);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_keys; i++) {
		struct policy_key *k = &c->keys[i];

		if (strcmp(k->key, subject + base) != 0 || rev <= k->rev)
			continue;
		if (op == NULL || op[0] == '\0')
			key_set(k, rev, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
		else
			key_set(k, rev, NULL, 0); /* DEL, PURGE */
		c->policy_dirty = 1;
		pthread_cond_signal(&c->wake);
	}
	pthread_mutex_unlock(&c->lock);
	natsMsg_Destroy(msg);
}

/* "<prefix>.rpc.<uuid>.<Service>.<Method>": the API path of the last two tokens. */
static int
method_path(const char *subject, char *path, size_t len)
{
	const char *m = strrchr(subject, '.'), *s;

	if (m == NULL || m == subject)
		return -1;
	for (s = m - 1; s > subject && *s != '.'; s--)
		;
	if (*s != '.')
		return -1;
	snprintf(path, len, "/redirect.v1.%.*s/%s", (int)(m - s - 1), s + 1, m + 1);
	return 0;
}

/* A console's call: answered on the library's delivery thread, by the API's handlers. */
static void
on_call(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	struct fleet_control *c = arg;
	const char *reply_to = natsMsg_GetReply(msg);
	char path[160], why[CONTROL_MSG_MAX], code[12];
	uint8_t *reply = NULL;
	size_t reply_len = 0;
	natsMsg *r = NULL;
	int st;

	(void)sub;
	if (reply_to == NULL || reply_to[0] == '\0') {
		natsMsg_Destroy(msg);
		return; /* nobody to answer */
	}
	if (method_path(natsMsg_GetSubject(msg), path, sizeof(path)) != 0) {
		st = 12; /* UNIMPLEMENTED */
		snprintf(why, sizeof(why), "no method in subject %s", natsMsg_GetSubject(msg));
	} else {
		st = c->hooks.call(c->hooks.ctx, path, (const uint8_t *)natsMsg_GetData(msg),
		    (size_t)natsMsg_GetDataLength(msg), &reply, &reply_len, why, sizeof(why));
	}
	if (natsMsg_Create(&r, reply_to, NULL, st == 0 ? (const char *)reply : NULL,
		st == 0 ? (int)reply_len : 0) == NATS_OK) {
		if (st != 0) {
			snprintf(code, sizeof(code), "%d", st);
			natsMsgHeader_Set(r, "Status", code);
			natsMsgHeader_Set(r, "Status-Message", why);
		}
		natsConnection_PublishMsg(nc, r);
	}
	natsMsg_Destroy(r);
	free(reply);
	natsMsg_Destroy(msg);
}

/* ---- binding to a connection ---- */

static int read_keys(struct fleet_control *c);

static void
unbind(struct fleet_control *c)
{
	for (size_t i = 0; i < c->n_subs; i++) {
		natsSubscription_Unsubscribe(c->subs[i]);
		natsSubscription_Destroy(c->subs[i]);
	}
	c->n_subs = 0;
	kvStore_Destroy(c->agents);
	kvStore_Destroy(c->policy);
	jsCtx_Destroy(c->js);
	c->agents = c->policy = NULL;
	c->js = NULL;
	c->bound = 0;
}

static void
bind_failed(struct fleet_control *c, const char *what, natsStatus s)
{
	const char *text = nats_GetLastError(NULL), *where;
	char why[512];

	if (text != NULL && text[0] == '(' && (where = strstr(text, "): ")) != NULL)
		text = where + 3;
	snprintf(why, sizeof(why), "%s: %s%s%.200s", what, natsStatus_GetText(s),
	    text != NULL && text[0] != '\0' ? ": " : "", text != NULL ? text : "");
	if (strcmp(why, c->bind_error) != 0)
		log_warnx("fleet: %s", why);
	snprintf(c->bind_error, sizeof(c->bind_error), "%s", why);
}

/* The buckets, made when [fleet] create_stream says so (the policy one republishing). */
static natsStatus
open_bucket(struct fleet_control *c, kvStore **kv, const char *name, int policy)
{
	kvConfig kc;
	jsRePublish rp;
	char src[96], dst[96];

	if (!c->cfg->fleet_create_stream)
		return js_KeyValue(kv, c->js, name);
	kvConfig_Init(&kc);
	kc.Bucket = name;
	if (policy) {
		kc.History = 10;
		snprintf(src, sizeof(src), "$KV.%s.>", name);
		snprintf(dst, sizeof(dst), "%s.policy.>", c->cfg->fleet_subject_prefix);
		memset(&rp, 0, sizeof(rp));
		rp.Source = src;
		rp.Destination = dst;
		kc.RePublish = &rp;
	} else {
		kc.History = 1;
		/* An agent silent for ten heartbeats leaves the inventory. */
		kc.TTL = (int64_t)c->cfg->fleet_heartbeat_s * 10 * 1000000000;
	}
	if (js_CreateKeyValue(kv, c->js, &kc) == NATS_OK)
		return NATS_OK;
	return js_KeyValue(kv, c->js, name); /* it exists already */
}

static int
subscribe(struct fleet_control *c, natsConnection *nc, const char *subject, natsMsgHandler cb)
{
	natsStatus s;

	if (c->n_subs == CONTROL_MAX_SUBS)
		return -1;
	if ((s = natsConnection_Subscribe(&c->subs[c->n_subs], nc, subject, cb, c)) != NATS_OK) {
		bind_failed(c, subject, s);
		return -1;
	}
	c->n_subs++;
	return 0;
}

static int
attach(void *ncp, void *arg)
{
	struct fleet_control *c = arg;
	natsConnection *nc = ncp;
	const char *pfx = c->cfg->fleet_subject_prefix;
	jsOptions jo;
	char subject[256];
	natsStatus s;

	jsOptions_Init(&jo);
	jo.Wait = CONTROL_WAIT_MS;
	if ((s = natsConnection_JetStream(&c->js, nc, &jo)) != NATS_OK) {
		bind_failed(c, "JetStream", s);
		return -1;
	}
	if ((s = open_bucket(c, &c->agents, c->cfg->fleet_agents_bucket, 0)) != NATS_OK) {
		bind_failed(c, c->cfg->fleet_agents_bucket, s);
		return -1;
	}
	if ((s = open_bucket(c, &c->policy, c->cfg->fleet_policy_bucket, 1)) != NATS_OK) {
		bind_failed(c, c->cfg->fleet_policy_bucket, s);
		return -1;
	}
	snprintf(subject, sizeof(subject), "%s.policy.agent.%s", pfx, c->uuid);
	if (subscribe(c, nc, subject, on_policy) != 0)
		return -1;
	for (size_t i = 0; i < c->cfg->n_fleet_groups; i++) {
		snprintf(
		    subject, sizeof(subject), "%s.policy.group.%s", pfx, c->cfg->fleet_groups[i]);
		if (subscribe(c, nc, subject, on_policy) != 0)
			return -1;
	}
	snprintf(subject, sizeof(subject), "%s.rpc.%s.>", pfx, c->uuid);
	if (subscribe(c, nc, subject, on_call) != 0)
		return -1;
	snprintf(subject, sizeof(subject), "%s.rpc.all.Agent.GetInfo", pfx);
	if (subscribe(c, nc, subject, on_call) != 0)
		return -1;
	return 0;
}

/*
 * Bound to the current connection, made anew when the connection is.
 * Returns 1 when bound, 0 while not connected, -1 when connected but the
 * buckets or subscriptions cannot be had (missing, or not permitted).
 */
static int
bind_now(struct fleet_control *c)
{
	char why[600];
	unsigned gen;

	if (!fleet_connected(c->fleet, why, sizeof(why))) {
		if (c->bound)
			unbind(c);
		return 0;
	}
	if (c->bound && fleet_generation(c->fleet) == c->gen)
		return 1;
	/* After a refusal, not again before a heartbeat: a fleet of agents must not
	 * hammer a server that lacks the buckets. */
	if (!c->bound && c->bind_error[0] != '\0' && clock_wall_us() < c->next_bind_us)
		return -1;
	unbind(c);
	if (fleet_attach(c->fleet, attach, c, &gen) != 0) {
		unbind(c);
		c->next_bind_us = clock_wall_us() + (int64_t)c->cfg->fleet_heartbeat_s * 1000000;
		return fleet_connected(c->fleet, why, sizeof(why)) ? -1 : 0;
	}
	if (c->bind_error[0] != '\0')
		log_info("fleet: control bound again (buckets %s, %s)", c->cfg->fleet_agents_bucket,
		    c->cfg->fleet_policy_bucket);
	c->bind_error[0] = '\0';
	c->gen = gen;
	c->bound = 1;
	/* New connection: whatever changed meanwhile is read now. */
	(void)read_keys(c);
	c->policy_dirty = 1;
	c->report_now = 1;
	return 1;
}

/* ---- the policy ---- */

/* Read every policy key of the agent (a direct get each). 0, or -1 (nothing changed). */
static int
read_keys(struct fleet_control *c)
{
	for (size_t i = 0; i < c->n_keys; i++) {
		kvEntry *e = NULL;
		natsStatus s = kvStore_Get(&e, c->policy, c->keys[i].key);

		if (s != NATS_OK && s != NATS_NOT_FOUND) {
			bind_failed(c, c->keys[i].key, s);
			return -1;
		}
		pthread_mutex_lock(&c->lock);
		if (s == NATS_OK && kvEntry_Operation(e) == kvOp_Put)
			key_set(&c->keys[i], kvEntry_Revision(e), kvEntry_ValueString(e),
			    (size_t)kvEntry_ValueLen(e));
		else /* absent, or deleted: its revision still orders later changes */
			key_set(&c->keys[i], s == NATS_OK ? kvEntry_Revision(e) : 0, NULL, 0);
		pthread_mutex_unlock(&c->lock);
		kvEntry_Destroy(e);
	}
	c->next_full_us = clock_wall_us() + (int64_t)c->cfg->fleet_heartbeat_s * 10 * 1000000;
	return 0;
}

/*
 * Which key applies: the first of agent.<uuid>, group.<g>... that holds a
 * document. 1 with key, revision and document (malloc'ed), 0 when none does.
 */
static int
current_key(struct fleet_control *c, char *key, size_t keylen, uint64_t *rev, char **doc)
{
	int found = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_keys && !found; i++) {
		if (c->keys[i].doc == NULL)
			continue;
		snprintf(key, keylen, "%s", c->keys[i].key);
		*rev = c->keys[i].rev;
		*doc = strdup(c->keys[i].doc);
		found = *doc != NULL ? 1 : -1;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

static void
evaluate(struct fleet_control *c)
{
	char key[CONTROL_KEY_MAX], source[CONTROL_KEY_MAX + 24], in_force[160], msg[1024];
	uint64_t rev = 0, version;
	char *doc = NULL;
	int found = current_key(c, key, sizeof(key), &rev, &doc), rc;

	if (found < 0)
		return;
	c->hooks.policy_state(c->hooks.ctx, &version, in_force, sizeof(in_force));
	if (found == 0) {
		if (in_force[0] == '\0')
			return;
		if ((rc = c->hooks.back_to_local(c->hooks.ctx, msg, sizeof(msg))) != 0) {
			log_warnx("fleet: no policy key applies any more, and the local policy "
				  "cannot be put back: %s",
			    msg);
			return;
		}
		log_info("fleet: no policy key applies any more (was %s): the local policy is in "
			 "force again",
		    in_force);
		c->rejected_key[0] = '\0';
		c->report_now = 1;
		return;
	}
	snprintf(source, sizeof(source), "%s@%llu", key, (unsigned long long)rev);
	if (strcmp(source, in_force) == 0 ||
	    (strcmp(key, c->rejected_key) == 0 && rev == c->rejected_rev)) {
		free(doc);
		return; /* in force already, or refused already */
	}
	c->n_problems = 0;
	rc = c->hooks.apply(c->hooks.ctx, doc, source, c->problems, FLEET_PROBLEMS, &c->n_problems,
	    msg, sizeof(msg));
	free(doc);
	if (rc == -EINVAL) {
		snprintf(c->rejected_key, sizeof(c->rejected_key), "%s", key);
		c->rejected_rev = rev;
		log_warnx("fleet: the policy of %s is not valid for this agent, not applied: %s",
		    source, msg);
	} else if (rc != 0) {
		log_warnx("fleet: cannot apply the policy of %s: %s", source, msg);
		return; /* tried again at the next heartbeat */
	} else {
		log_info("fleet: policy of %s in force", source);
		c->rejected_key[0] = '\0';
	}
	c->report_now = 1;
}

/* ---- the inventory ---- */

static void
rfc3339(int64_t us, char *out, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *
inventory_json(struct fleet_control *c)
{
	json_t *o = json_object(), *groups = json_array(), *reasons = json_array(), *pol;
	char now[32], source[160], reason[8][640], *text;
	uint64_t version, pending = 0;
	int64_t lag = 0;
	size_t n = 0;
	int serving = c->hooks.health(c->hooks.ctx, reason, 8, &n);

	for (size_t i = 0; i < c->cfg->n_fleet_groups; i++)
		json_array_append_new(groups, json_string(c->cfg->fleet_groups[i]));
	for (size_t i = 0; i < n; i++)
		json_array_append_new(reasons, json_string(reason[i]));
	c->hooks.policy_state(c->hooks.ctx, &version, source, sizeof(source));
	c->hooks.export_state(c->hooks.ctx, &pending, &lag);
	rfc3339(clock_wall_us(), now, sizeof(now));
	pol = json_pack("{s:I, s:s}", "version", (json_int_t)version, "source",
	    source[0] != '\0' ? "fleet" : "local");
	if (source[0] != '\0') {
		char *at = strrchr(source, '@');

		if (at != NULL) {
			json_object_set_new(
			    pol, "revision", json_integer(strtoll(at + 1, NULL, 10)));
			*at = '\0';
		}
		json_object_set_new(pol, "key", json_string(source));
	}
	json_object_set_new(o, "uuid", json_string(c->uuid));
	json_object_set_new(o, "name", json_string(c->cfg->agent_id));
	json_object_set_new(o, "hostname", json_string(c->hostname));
	json_object_set_new(o, "platform", json_string(platform_name()));
	json_object_set_new(o, "version", json_string(RA_VERSION));
	json_object_set_new(o, "groups", groups);
	json_object_set_new(o, "started_at", json_string(c->started_at));
	json_object_set_new(o, "heartbeat_s", json_integer(c->cfg->fleet_heartbeat_s));
	json_object_set_new(o, "last_seen", json_string(now));
	json_object_set_new(o, "policy", pol);
	if (c->rejected_key[0] != '\0') {
		json_t *p = json_array();

		for (size_t i = 0; i < c->n_problems; i++)
			json_array_append_new(p, json_string(c->problems[i]));
		json_object_set_new(o, "policy_rejected",
		    json_pack("{s:s, s:I, s:o}", "key", c->rejected_key, "revision",
			(json_int_t)c->rejected_rev, "problems", p));
	}
	json_object_set_new(o, "health",
	    json_pack(
		"{s:s, s:o}", "status", serving ? "serving" : "degraded", "reasons", reasons));
	json_object_set_new(o, "export",
	    json_pack("{s:I, s:I}", "pending", (json_int_t)pending, "lag_s", (json_int_t)lag));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static void
report(struct fleet_control *c)
{
	char *text = inventory_json(c);
	uint64_t rev;
	natsStatus s;

	if (text == NULL)
		return;
	if ((s = kvStore_PutString(&rev, c->agents, c->uuid, text)) != NATS_OK)
		bind_failed(c, "inventory", s);
	else
		c->bind_error[0] = '\0';
	free(text);
}

/* ---- the configuration ---- */

/* The agent's policy keys for c->cfg, in order, none known yet. Under lock. */
static void
set_keys(struct fleet_control *c)
{
	for (size_t i = 0; i < c->n_keys; i++)
		free(c->keys[i].doc);
	memset(c->keys, 0, sizeof(c->keys));
	c->n_keys = 0;
	snprintf(c->keys[c->n_keys++].key, CONTROL_KEY_MAX, "agent.%s", c->uuid);
	for (size_t i = 0; i < c->cfg->n_fleet_groups; i++)
		snprintf(
		    c->keys[c->n_keys++].key, CONTROL_KEY_MAX, "group.%s", c->cfg->fleet_groups[i]);
}

/* The first heartbeat at a random place in the interval: not the whole fleet at once. */
static void
start_beat(struct fleet_control *c)
{
	c->next_beat_us = clock_wall_us() + jitter_us(c, c->cfg->fleet_heartbeat_s * 1000);
}

/* On the thread: a reload's configuration, bound again from scratch. */
static void
take_config(struct fleet_control *c, struct config *next)
{
	unbind(c);
	c->own = *next;
	free(next);
	pthread_mutex_lock(&c->lock);
	set_keys(c);
	pthread_mutex_unlock(&c->lock);
	c->rejected_key[0] = '\0';
	c->n_problems = 0;
	c->bind_error[0] = '\0';
	c->next_bind_us = 0;
	c->next_full_us = 0;
	start_beat(c);
	log_info(
	    "fleet: control bound again for the new configuration (%zu groups, heartbeat %u s)",
	    c->cfg->n_fleet_groups, c->cfg->fleet_heartbeat_s);
}

/* ---- the thread ---- */

static void *
control_main(void *arg)
{
	struct fleet_control *c = arg;

	platform_thread_name("ra-fleet-ctl");
	for (;;) {
		struct timespec until;
		struct config *next;
		int stopping, dirty, now;

		clock_deadline_ms(&until, c->change_due_us != 0 ? 100 : CONTROL_TICK_MS);
		pthread_mutex_lock(&c->lock);
		while (!c->stopping && !c->policy_dirty && !c->report_now && c->next_cfg == NULL &&
		       pthread_cond_timedwait(&c->wake, &c->lock, &until) != ETIMEDOUT)
			;
		stopping = c->stopping;
		dirty = c->policy_dirty;
		now = c->report_now;
		c->policy_dirty = c->report_now = 0;
		next = c->next_cfg;
		c->next_cfg = NULL;
		pthread_mutex_unlock(&c->lock);
		if (stopping) {
			free(next);
			break;
		}
		if (next != NULL)
			take_config(c, next); /* bind_now binds anew and reads the new keys */
		if (bind_now(c) != 1)
			continue;
		/* Now and then the keys are read again: a republished change is
		 * delivered at most once, and one may have been missed. */
		if (clock_wall_us() >= c->next_full_us && read_keys(c) == 0)
			dirty = 1;
		if (dirty || c->policy_dirty) {
			c->policy_dirty = 0;
			evaluate(c);
		}
		/* A change is written within a second (jittered: not the whole fleet at
		 * once after a group's change); the heartbeat keeps its own cadence. */
		if ((now || c->report_now) && c->change_due_us == 0)
			c->change_due_us = clock_wall_us() + jitter_us(c, 1000);
		c->report_now = 0;
		if (clock_wall_us() >= c->next_beat_us ||
		    (c->change_due_us != 0 && clock_wall_us() >= c->change_due_us)) {
			int64_t beat = (int64_t)c->cfg->fleet_heartbeat_s * 1000000;

			report(c);
			c->change_due_us = 0;
			if (clock_wall_us() >= c->next_beat_us)
				c->next_beat_us += beat;
			if (c->next_beat_us < clock_wall_us())
				c->next_beat_us = clock_wall_us() + beat;
		}
	}
	return NULL;
}

int
fleet_control_new(struct fleet_control **out, const struct config *cfg, struct fleet *fleet,
    const char *uuid, const char *hostname, int64_t started_at_us, const struct fleet_hooks *hooks,
    char *err, size_t errlen)
{
	struct fleet_control *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	*out = NULL;
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->own = *cfg;
	c->cfg = &c->own;
	c->fleet = fleet;
	c->hooks = *hooks;
	snprintf(c->uuid, sizeof(c->uuid), "%s", uuid);
	snprintf(c->hostname, sizeof(c->hostname), "%s", hostname);
	rfc3339(started_at_us, c->started_at, sizeof(c->started_at));
	snprintf(c->subject_base, sizeof(c->subject_base), "%s.policy.", cfg->fleet_subject_prefix);
	set_keys(c);
	for (const char *u = uuid; *u != '\0'; u++)
		c->seed = c->seed * 31 + (unsigned char)*u;
	/* The heartbeat on a cadence of the agent's own (its place in the
	 * interval drawn at random); binding writes the first entry at once. */
	start_beat(c);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &ca);
	pthread_condattr_destroy(&ca);
	*out = c;
	return 0;
}

int
fleet_control_sync(struct fleet_control *c)
{
	int64_t deadline = clock_wall_us() + (int64_t)c->cfg->fleet_policy_wait_s * 1000000;

	for (;;) {
		int b = bind_now(c);

		if (b == 1) {
			c->policy_dirty = 0;
			evaluate(c);
			return 1;
		}
		if (b < 0) /* the server answers, without our buckets: said by bind_failed */
			return 0;
		if (clock_wall_us() >= deadline)
			break;
		nats_Sleep(100);
	}
	log_warnx("fleet: not reachable within %u s: the last policy applied stays in force until "
		  "it is",
	    c->cfg->fleet_policy_wait_s);
	return 0;
}

int
fleet_control_start(struct fleet_control *c, char *err, size_t errlen)
{
	if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
		snprintf(err, errlen, "cannot start the fleet control thread");
		return -1;
	}
	c->running = 1;
	return 0;
}

int
fleet_control_reconfigure(struct fleet_control *c, const struct config *cfg)
{
	struct config *next = malloc(sizeof(*next));

	if (next == NULL)
		return -1;
	*next = *cfg;
	pthread_mutex_lock(&c->lock);
	free(c->next_cfg); /* two reloads in a row: the last one counts */
	c->next_cfg = next;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void
fleet_control_free(struct fleet_control *c)
{
	if (c == NULL)
		return;
	if (c->running) {
		pthread_mutex_lock(&c->lock);
		c->stopping = 1;
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	unbind(c);
	for (size_t i = 0; i < c->n_keys; i++)
		free(c->keys[i].doc);
	free(c->next_cfg);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
