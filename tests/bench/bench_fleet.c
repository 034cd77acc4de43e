/*
 * bench_fleet: 1,000 simulated agents against one nats-server (issue 14,
 * "Fleet control"): what the console and the fleet see when every agent
 * speaks the fleet protocol.
 *
 *   bench_fleet --create-buckets [--prefix P] URL
 *   bench_fleet [-n AGENTS] [-c CONNS] [--heartbeat S] [--duration S] [--writes W]
 *               [--requests R] [--delivery-threads T] [--no-fetch] [--prefix P]
 *               [--server-pid PID] URL
 *
 * tests/bench/bench_fleet.sh starts a throwaway nats-server and runs both.
 *
 * The simulated agents: N (default 1,000) over C connections (default 20).
 * Each does what the real agent does, on the same subjects and keys:
 *  - puts its inventory (JSON) under its UUID in the KV bucket
 *    REDIRECT_AGENTS at start, every heartbeat (spread over the interval)
 *    and at once when its policy changes;
 *  - core-subscribes P.policy.agent.<uuid> and P.policy.group.bench, where
 *    the REDIRECT_POLICY bucket republishes, and reads both keys with
 *    kvStore_Get at start, on each notification and on reconnect;
 *  - answers P.rpc.<uuid>.> and P.rpc.all.Agent.GetInfo with the protobuf
 *    reply, or an empty body with Status and Status-Message headers.
 * Each connection has one worker thread (an agent's NATS thread: reads,
 * puts, heartbeats). Message callbacks run on libnats's global delivery
 * pool (--delivery-threads), not on one thread per subscription. libnats
 * still gives each connection a reader thread and two delivery threads of
 * its own that the pool never takes (request replies, async-publish acks);
 * with SendAsap it starts no flusher. So: 4 threads per connection.
 *
 * Phases, each printing its figures:
 *  a. start: initial policy reads, then N inventory puts until all are acked;
 *  b. listing, median of 5: the console's way (kvStore_Keys, kvStore_Get of
 *     each), one kvStore_WatchAll pass, an ordered consumer over the bucket's
 *     stream, and `$CTL fleet --server URL agents --json` when CTL is set;
 *  c. policy fan-out: W writes of group.bench 1 s apart, then 5 writes of
 *     agent.<uuid>: from just before the put to each agent's arrival;
 *  d. RPC: R sequential GetInfo to random agents; a discovery call on
 *     P.rpc.all.Agent.GetInfo collecting replies for 1 s;
 *  e. with AGENT_SOCKET and AGENT_UUID (a running agent; AGENT_NATS: the
 *     server it serves RPC on, default URL): 500 GetInfo over its gRPC
 *     socket and 500 over NATS, p50s and their ratio;
 *  f. soak: heartbeats only, for --duration seconds: put rate, CPU.
 * Every wait has a deadline; every count has a maximum.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "redirect/v1/agent.pb-c.h"

#define AGENTS_BUCKET  "REDIRECT_AGENTS"
#define POLICY_BUCKET  "REDIRECT_POLICY"
#define AGENTS_TTL_S   3600
#define GROUP          "bench"
#define MAX_AGENTS     20000
#define MAX_CONNS      2000
#define MAX_WRITES     50
#define ARRIVALS       (MAX_WRITES + 14) /* per agent: every write, agent keys, slack */
#define AGENT_KEYS     5                 /* agent.<uuid> writes in phase c */
#define LIST_RUNS      5
#define REAL_CALLS     500
#define INVENTORY_MAX  1024
#define SUBJECT_MAX    192
#define CTL_OUTPUT_MAX (16 * 1024 * 1024)
#define WAIT_S         60 /* the longest any phase waits for acks or jobs */

/* A revision and the monotonic time it reached an agent (0: slot not written yet). */
struct arrival {
	uint64_t rev;
	uint64_t at_us;
};

struct conn;

/* One simulated agent. Written by its connection's worker, except where marked. */
struct agent {
	char uuid[37];
	char hostname[32];
	char agent_key[48]; /* "agent.<uuid>" */
	int64_t started_wall_us;
	struct conn *conn;
	uint64_t next_hb_us;
	uint64_t group_rev, agent_rev; /* last read; agent_rev 0: no agent.<uuid> key */
	uint64_t inv_rev;              /* the policy revision its inventory last said */
	int policy_version;            /* policies applied so far */
	/* Written by delivery threads (fetched: by the worker); read once a phase is quiet: */
	uint64_t notified_group_rev, notified_agent_rev;
	int queued; /* on the worker's queue */
	int n_arrived, n_fetched;
	struct arrival arrived[ARRIVALS]; /* republished notifications */
	struct arrival fetched[ARRIVALS]; /* kvStore_Get results */
	natsSubscription *subs[4];
};

enum job { JOB_NONE, JOB_FETCH, JOB_PUT };

/* A connection, its worker thread and the agents that share it. */
struct conn {
	struct bench *b;
	natsConnection *nc;
	jsCtx *js;
	kvStore *policy_kv;
	struct agent *agents;
	int n_agents;
	pthread_t worker;
	int worker_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int *queue; /* ring of agent indexes; an agent is on it at most once */
	int q_head, q_len;
	int *batch;
	enum job job;
	int stop;
};

struct options {
	const char *url, *prefix;
	int agents, conns, heartbeat_s, duration_s, writes, requests, delivery_threads;
	int fetch, create_buckets;
	long server_pid;
};

struct bench {
	struct options o;
	struct agent *agents;
	struct agent **by_uuid; /* sorted by uuid, for looking replies up */
	struct conn *conns;
	/* the console's connection */
	natsConnection *cnc;
	jsCtx *cjs;
	kvStore *agents_kv, *policy_kv;
	int heartbeat_on;
	uint64_t hb_start_us;
	/* counters, updated atomically */
	long puts_sent, puts_acked, puts_failed, send_failed;
	long fetch_errors, rpc_served, async_errors, jobs_done;
	int inventory_len;
};

/* ---- small helpers ---- */

static void
die(const char *what, natsStatus s)
{
	const char *t = nats_GetLastError(NULL);

	fprintf(stderr, "bench_fleet: %s: %s%s%s\n", what, natsStatus_GetText(s),
	    t != NULL && *t != '\0' ? ": " : "", t != NULL ? t : "");
	exit(1);
}

static void
die_msg(const char *what)
{
	fprintf(stderr, "bench_fleet: %s\n", what);
	exit(1);
}

static long
atomic_get(const long *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void
atomic_inc(long *p)
{
	__atomic_add_fetch(p, 1, __ATOMIC_RELAXED);
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of n sorted values, in ms. */
static double
pct_ms(const uint64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)n + 0.999999);
	i = i == 0 ? 0 : i - 1;
	return (double)v[i < n ? i : n - 1] / 1000.0;
}

static double
median_ms(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return pct_ms(v, n, 0.5);
}

static void
iso_utc(char *buf, size_t len, int64_t wall_us)
{
	time_t t = (time_t)(wall_us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A whole number in [lo, hi] from the command line; exits otherwise. */
static long
arg_long(const char *name, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(
		    stderr, "bench_fleet: %s: %s is not a number in %ld..%ld\n", name, s, lo, hi);
		exit(2);
	}
	return v;
}

/* A subject prefix: tokens of letters, digits, '-' and '_', no wildcards. */
static int
prefix_valid(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > 64 || p[0] == '.' || p[n - 1] == '.' || strstr(p, "..") != NULL)
		return 0;
	for (; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return 1;
}

/* CPU seconds used so far by this process and by the server (-1: not known). */
struct cpu {
	uint64_t wall_us;
	double self_s, server_s;
	long server_rss_kb;
};

static void
cpu_sample(const struct bench *b, struct cpu *c)
{
	struct rusage ru;
	char path[64], buf[1024], *p;
	FILE *f;
	unsigned long ut, st;

	c->wall_us = clock_mono_us();
	getrusage(RUSAGE_SELF, &ru);
	c->self_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	c->server_s = -1;
	c->server_rss_kb = -1;
	if (b->o.server_pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/stat", b->o.server_pid);
	if ((f = fopen(path, "re")) != NULL) {
		/* Fields after the command (which may hold spaces): state is field 3. */
		if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			&st) == 2)
			c->server_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%ld/status", b->o.server_pid);
	if ((f = fopen(path, "re")) != NULL) {
		while (fgets(buf, sizeof(buf), f) != NULL)
			if (sscanf(buf, "VmRSS: %ld", &c->server_rss_kb) == 1)
				break;
		fclose(f);
	}
}

static int
threads_now(void)
{
	char buf[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (f == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), f) != NULL)
		if (sscanf(buf, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static void
cpu_print(const struct cpu *a, const struct cpu *z)
{
	double wall = (double)(z->wall_us - a->wall_us) / 1e6;

	printf("  cpu over %.1f s: bench_fleet %.2f s (%.0f%%)", wall, z->self_s - a->self_s,
	    100 * (z->self_s - a->self_s) / wall);
	if (z->server_s >= 0)
		printf(", nats-server %.2f s (%.0f%%), server RSS %ld MiB",
		    z->server_s - a->server_s, 100 * (z->server_s - a->server_s) / wall,
		    z->server_rss_kb / 1024);
	printf("; threads here %d\n", threads_now());
}

/* ---- agents: inventory, policy reads, RPC ---- */

/* The agent's inventory document, as the real agent writes it. Returns its length. */
static int
inventory_json(const struct bench *b, const struct agent *a, char *buf, size_t len)
{
	char started[32], seen[32];
	const char *key = a->agent_rev != 0 ? a->agent_key : "group." GROUP;
	int n;

	iso_utc(started, sizeof(started), a->started_wall_us);
	iso_utc(seen, sizeof(seen), clock_wall_us());
	n = snprintf(buf, len,
	    "{\"uuid\":\"%s\",\"name\":\"default\",\"hostname\":\"%s\",\"platform\":\"linux\","
	    "\"version\":\"0.1.0\",\"groups\":[\"" GROUP "\"],\"started_at\":\"%s\","
	    "\"heartbeat_s\":%d,\"last_seen\":\"%s\",\"policy\":{\"version\":%d,"
	    "\"source\":\"fleet\",\"key\":\"%s\",\"revision\":%" PRIu64 "},"
	    "\"health\":{\"status\":\"serving\",\"reasons\":[]},"
	    "\"export\":{\"pending\":0,\"lag_s\":0}}",
	    a->uuid, a->hostname, started, b->o.heartbeat_s, seen, a->policy_version, key,
	    a->inv_rev);
	return n > 0 && (size_t)n < len ? n : -1;
}

/* Put the inventory, asynchronously; on_ack counts the outcome. */
static void
agent_put(struct conn *c, struct agent *a)
{
	struct bench *b = c->b;
	char subj[SUBJECT_MAX], doc[INVENTORY_MAX];
	jsPubOptions po;
	int n = inventory_json(b, a, doc, sizeof(doc));

	if (n < 0) {
		atomic_inc(&b->send_failed);
		return;
	}
	__atomic_store_n(&b->inventory_len, n, __ATOMIC_RELAXED);
	snprintf(subj, sizeof(subj), "$KV." AGENTS_BUCKET ".%s", a->uuid);
	jsPubOptions_Init(&po);
	po.MaxWait = 5000;
	if (js_PublishAsync(c->js, subj, doc, n, &po) != NATS_OK) {
		atomic_inc(&b->send_failed);
		return;
	}
	atomic_inc(&b->puts_sent);
}

static void
record(struct arrival *arr, int *n, uint64_t rev, uint64_t at_us)
{
	int i = __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);

	if (i >= ARRIVALS)
		return;
	arr[i].rev = rev;
	__atomic_store_n(&arr[i].at_us, at_us, __ATOMIC_RELEASE);
}

/* Read the agent's two policy keys (direct get), as the agent does at start. */
static void
agent_get_policy(struct conn *c, struct agent *a)
{
	const char *keys[2] = {"group." GROUP, a->agent_key};
	uint64_t *revs[2] = {&a->group_rev, &a->agent_rev};

	for (int i = 0; i < 2; i++) {
		kvEntry *e = NULL;
		natsStatus s = kvStore_Get(&e, c->policy_kv, keys[i]);

		if (s == NATS_OK) {
			*revs[i] = kvEntry_Revision(e);
			if (kvEntry_Operation(e) != kvOp_Put)
				*revs[i] = 0;
			record(a->fetched, &a->n_fetched, kvEntry_Revision(e), clock_mono_us());
			kvEntry_Destroy(e);
		} else if (s == NATS_NOT_FOUND) {
			*revs[i] = 0;
		} else {
			atomic_inc(&c->b->fetch_errors);
		}
	}
}

/*
 * After a notification or a reconnect: read the keys again, or with
 * --no-fetch take the revisions the notifications carried.
 */
static void
agent_read_policy(struct conn *c, struct agent *a)
{
	if (c->b->o.fetch) {
		agent_get_policy(c, a);
		return;
	}
	a->group_rev = __atomic_load_n(&a->notified_group_rev, __ATOMIC_ACQUIRE);
	a->agent_rev = __atomic_load_n(&a->notified_agent_rev, __ATOMIC_ACQUIRE);
}

/* A notification or a reconnect: read the policy; put the inventory at once if it changed. */
static void
agent_refresh(struct conn *c, struct agent *a)
{
	uint64_t rev;

	agent_read_policy(c, a);
	rev = a->agent_rev != 0 ? a->agent_rev : a->group_rev;
	if (rev != a->inv_rev) {
		a->inv_rev = rev;
		a->policy_version++;
		agent_put(c, a);
	}
}

/* Called from a delivery thread: put a on its worker's queue unless it is there. */
static void
agent_queue(struct agent *a)
{
	struct conn *c = a->conn;

	if (__atomic_exchange_n(&a->queued, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_lock(&c->mu);
	c->queue[(c->q_head + c->q_len) % c->n_agents] = (int)(a - c->agents);
	c->q_len++;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* P.policy.group.bench or P.policy.agent.<uuid>: a republished REDIRECT_POLICY message. */
static void
on_policy(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct agent *a = arg;
	uint64_t now = clock_mono_us(), rev = 0;
	const char *seq = NULL, *op = NULL, *subj = natsMsg_GetSubject(m);
	int deleted;

	(void)nc, (void)sub;
	if (natsMsgHeader_Get(m, "Nats-Sequence", &seq) == NATS_OK && seq != NULL)
		rev = strtoull(seq, NULL, 10);
	deleted = natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op != NULL;
	record(a->arrived, &a->n_arrived, rev, now);
	__atomic_store_n(strstr(subj, ".policy.agent.") != NULL ? &a->notified_agent_rev
								: &a->notified_group_rev,
	    deleted ? 0 : rev, __ATOMIC_RELEASE);
	natsMsg_Destroy(m);
	agent_queue(a);
}

/* Reply to req with body, or with an empty body and the gRPC status headers. */
static void
rpc_reply(
    natsConnection *nc, natsMsg *req, const uint8_t *body, size_t len, int status, const char *why)
{
	const char *to = natsMsg_GetReply(req);
	natsMsg *r = NULL;
	char code[16];

	if (to == NULL || natsMsg_Create(&r, to, NULL, (const char *)body, (int)len) != NATS_OK)
		return;
	if (status != 0) {
		snprintf(code, sizeof(code), "%d", status);
		natsMsgHeader_Set(r, "Status", code);
		natsMsgHeader_Set(r, "Status-Message", why);
	}
	natsConnection_PublishMsg(nc, r);
	natsMsg_Destroy(r);
}

/* The simulated GetInfo reply: the fields and config entries the real agent fills. */
static size_t
agent_info(const struct agent *a, uint8_t *buf, size_t cap)
{
	static const char *const cfg[][2] = {{"proxy.listen_port", "15001"},
	    {"proxy.redirect_ports", "80, 443"}, {"proxy.connect_timeout_ms", "5000"},
	    {"proxy.idle_timeout_s", "300"}, {"proxy.max_sessions", "10000"},
	    {"db.path", "/var/lib/redirect-agent/agent.db"},
	    {"api.local_socket", "/run/redirect-agent/agent.sock"}};
	Redirect__V1__AgentInfo info = REDIRECT__V1__AGENT_INFO__INIT;
	Redirect__V1__AgentInfo__ConfigEntry e[7], *ep[7];
	size_t n;

	for (size_t i = 0; i < 7; i++) {
		redirect__v1__agent_info__config_entry__init(&e[i]);
		e[i].key = (char *)cfg[i][0];
		e[i].value = (char *)cfg[i][1];
		ep[i] = &e[i];
	}
	info.version = (char *)"0.1.0";
	info.platform = (char *)"linux";
	info.hostname = (char *)a->hostname;
	info.started_at_us = a->started_wall_us;
	info.agent_id = (char *)"default";
	info.listen_port = 15001;
	info.mark = 1;
	info.workers = 2;
	info.db_path = (char *)cfg[5][1];
	info.agent_uuid = (char *)a->uuid;
	info.n_config = 7;
	info.config = ep;
	n = redirect__v1__agent_info__get_packed_size(&info);
	return n <= cap ? redirect__v1__agent_info__pack(&info, buf) : 0;
}

/* P.rpc.<uuid>.<Service>.<Method> and P.rpc.all.Agent.GetInfo. */
static void
on_rpc(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct agent *a = arg;
	const char *subj = natsMsg_GetSubject(m), *method = subj + strlen(subj);
	uint8_t buf[1024];
	size_t n;
	int dots = 0;

	(void)sub;
	while (method > subj && dots < 2)
		if (*--method == '.')
			dots++;
	method += dots == 2;
	if (strcmp(method, "Agent.GetInfo") == 0) {
		Redirect__V1__GetInfoRequest *q = redirect__v1__get_info_request__unpack(
		    NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));

		if (q == NULL)
			rpc_reply(nc, m, NULL, 0, 3, "the request is not a GetInfoRequest");
		else if ((n = agent_info(a, buf, sizeof(buf))) == 0)
			rpc_reply(nc, m, NULL, 0, 13, "reply too large");
		else
			rpc_reply(nc, m, buf, n, 0, NULL);
		if (q != NULL)
			redirect__v1__get_info_request__free_unpacked(q, NULL);
	} else if (strcmp(method, "Agent.GetHealth") == 0) {
		Redirect__V1__Health h = REDIRECT__V1__HEALTH__INIT;

		h.status = REDIRECT__V1__HEALTH__STATUS__SERVING;
		n = redirect__v1__health__pack(&h, buf);
		rpc_reply(nc, m, buf, n, 0, NULL);
	} else {
		char why[SUBJECT_MAX];

		snprintf(why, sizeof(why), "unknown method %s", method);
		rpc_reply(nc, m, NULL, 0, 12, why);
	}
	atomic_inc(&a->conn->b->rpc_served);
	natsMsg_Destroy(m);
}

static void
on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	struct bench *b = arg;

	(void)js;
	if (pa != NULL) {
		atomic_inc(&b->puts_acked);
	} else {
		if (__atomic_add_fetch(&b->puts_failed, 1, __ATOMIC_RELAXED) <= 3)
			fprintf(stderr, "bench_fleet: inventory put failed: %s %s\n",
			    natsStatus_GetText(pae->Err), pae->ErrText != NULL ? pae->ErrText : "");
	}
	natsMsg_Destroy(m);
}

static void
on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *arg)
{
	struct bench *b = arg;
	const char *txt = NULL;

	(void)sub;
	natsConnection_GetLastError(nc, &txt);
	if (__atomic_add_fetch(&b->async_errors, 1, __ATOMIC_RELAXED) <= 5)
		fprintf(stderr, "bench_fleet: async error: %s %s\n", natsStatus_GetText(err),
		    txt != NULL ? txt : "");
}

/* Core delivery is at most once: after a reconnect every agent reads its policy again. */
static void
on_reconnected(natsConnection *nc, void *arg)
{
	struct conn *c = arg;

	(void)nc;
	for (int i = 0; i < c->n_agents; i++)
		agent_queue(&c->agents[i]);
}

/* ---- the worker: one per connection ---- */

static void *
conn_worker(void *arg)
{
	struct conn *c = arg;
	struct bench *b = c->b;

	uint64_t hb_us = (uint64_t)b->o.heartbeat_s * 1000000;
	unsigned wait_ms = 1000;

	for (;;) {
		struct timespec ts;
		enum job job;
		int n = 0, stop;
		uint64_t now, due;

		pthread_mutex_lock(&c->mu);
		if (!c->stop && c->q_len == 0 && c->job == JOB_NONE) {
			clock_deadline_ms(&ts, wait_ms);
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		}
		stop = c->stop;
		job = c->job;
		c->job = JOB_NONE;
		while (c->q_len > 0) {
			c->batch[n++] = c->queue[c->q_head];
			c->q_head = (c->q_head + 1) % c->n_agents;
			c->q_len--;
		}
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		for (int i = 0; i < c->n_agents && job != JOB_NONE; i++) {
			struct agent *a = &c->agents[i];

			if (job == JOB_FETCH) {
				agent_get_policy(c, a);
				a->inv_rev = a->agent_rev != 0 ? a->agent_rev : a->group_rev;
				a->policy_version = 1;
			} else {
				agent_put(c, a);
			}
		}
		if (job != JOB_NONE)
			__atomic_add_fetch(&b->jobs_done, 1, __ATOMIC_RELEASE);
		for (int i = 0; i < n; i++) {
			struct agent *a = &c->agents[c->batch[i]];

			/* Cleared first: a notification from now on queues it again. */
			__atomic_store_n(&a->queued, 0, __ATOMIC_RELEASE);
			agent_refresh(c, a);
		}
		if (!__atomic_load_n(&b->heartbeat_on, __ATOMIC_ACQUIRE))
			continue;
		/* Heartbeats due; then sleep until the next one (1 ms..1 s). */
		now = clock_mono_us();
		due = now + 1000000;
		for (int i = 0; i < c->n_agents; i++) {
			struct agent *a = &c->agents[i];

			/*
			 * A fixed schedule: a put on a policy change does not move it. Were
			 * it reset then, one group write would line every agent's
			 * heartbeat up into one burst per interval.
			 */
			if (a->next_hb_us <= now) {
				agent_put(c, a);
				a->next_hb_us += hb_us;
				if (a->next_hb_us <= now)
					a->next_hb_us = now + hb_us;
			}
			if (a->next_hb_us < due)
				due = a->next_hb_us;
		}
		now = clock_mono_us();
		wait_ms = due > now + 1000 ? (unsigned)((due - now) / 1000) : 1;
	}
	return NULL;
}

/* Give every worker job and wait until all have done it. Returns the ms it took. */
static double
run_job(struct bench *b, enum job job)
{
	uint64_t t0 = clock_mono_us(), deadline = t0 + WAIT_S * 1000000ULL;

	__atomic_store_n(&b->jobs_done, 0, __ATOMIC_RELEASE);
	for (int i = 0; i < b->o.conns; i++) {
		pthread_mutex_lock(&b->conns[i].mu);
		b->conns[i].job = job;
		pthread_cond_signal(&b->conns[i].cv);
		pthread_mutex_unlock(&b->conns[i].mu);
	}
	while (atomic_get(&b->jobs_done) < b->o.conns) {
		if (clock_mono_us() > deadline)
			die_msg("the workers did not finish a job in time");
		sleep_ms(1);
	}
	return (double)(clock_mono_us() - t0) / 1000.0;
}

/* Wait until every put sent so far is acked or failed. Returns 0, or -1 at the deadline. */
static int
wait_acks(struct bench *b, unsigned timeout_s)
{
	uint64_t deadline = clock_mono_us() + timeout_s * 1000000ULL;

	while (
	    atomic_get(&b->puts_acked) + atomic_get(&b->puts_failed) < atomic_get(&b->puts_sent)) {
		if (clock_mono_us() > deadline)
			return -1;
		sleep_ms(1);
	}
	return 0;
}

/* ---- set-up and teardown ---- */

/* The two buckets, as the operator makes them (--create-buckets). */
static int
create_buckets(const struct options *o)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	kvStore *kv = NULL;
	kvConfig kc;
	jsRePublish rp;
	char dest[SUBJECT_MAX];
	natsStatus s;

	if ((s = natsConnection_ConnectTo(&nc, o->url)) != NATS_OK)
		die(o->url, s);
	if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK)
		die("JetStream", s);
	kvConfig_Init(&kc);
	kc.Bucket = AGENTS_BUCKET;
	kc.History = 1;
	kc.TTL = (int64_t)AGENTS_TTL_S * 1000000000; /* nanoseconds */
	kc.StorageType = js_FileStorage;
	if ((s = js_CreateKeyValue(&kv, js, &kc)) != NATS_OK)
		die("create " AGENTS_BUCKET, s);
	kvStore_Destroy(kv);
	snprintf(dest, sizeof(dest), "%s.policy.>", o->prefix);
	jsRePublish_Init(&rp);
	rp.Source = "$KV." POLICY_BUCKET ".>";
	rp.Destination = dest;
	kvConfig_Init(&kc);
	kc.Bucket = POLICY_BUCKET;
	kc.History = 10;
	kc.StorageType = js_FileStorage;
	kc.RePublish = &rp;
	if ((s = js_CreateKeyValue(&kv, js, &kc)) != NATS_OK)
		die("create " POLICY_BUCKET, s);
	/* The group's policy as the operator set it before the agents start. */
	if ((s = kvStore_PutString(NULL, kv, "group." GROUP,
		 "{\"default_action\":\"allow\",\"rules\":[]}")) != NATS_OK)
		die("put group." GROUP, s);
	kvStore_Destroy(kv);
	printf("buckets: %s (History 1, TTL %d s), %s (History 10, RePublish %s -> %s)\n",
	    AGENTS_BUCKET, AGENTS_TTL_S, POLICY_BUCKET, rp.Source, dest);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

static int
cmp_agent_uuid(const void *x, const void *y)
{
	return strcmp((*(struct agent *const *)x)->uuid, (*(struct agent *const *)y)->uuid);
}

static int
cmp_key_agent(const void *key, const void *y)
{
	return strncmp(key, (*(struct agent *const *)y)->uuid, 36);
}

/* The agent with this uuid (36 characters, need not end there), or NULL. */
static struct agent *
agent_find(const struct bench *b, const char *uuid)
{
	struct agent **a =
	    bsearch(uuid, b->by_uuid, (size_t)b->o.agents, sizeof(*b->by_uuid), cmp_key_agent);

	return a != NULL ? *a : NULL;
}

static void
agents_make(struct bench *b)
{
	unsigned char(*r)[16] = malloc((size_t)b->o.agents * 16);
	FILE *f = fopen("/dev/urandom", "re");

	b->agents = calloc((size_t)b->o.agents, sizeof(*b->agents));
	b->by_uuid = calloc((size_t)b->o.agents, sizeof(*b->by_uuid));
	if (r == NULL || b->agents == NULL || b->by_uuid == NULL)
		die_msg("out of memory");
	if (f == NULL || fread(r, 16, (size_t)b->o.agents, f) != (size_t)b->o.agents)
		die_msg("/dev/urandom: cannot read");
	fclose(f);
	for (int i = 0; i < b->o.agents; i++) {
		struct agent *a = &b->agents[i];
		unsigned char *u = r[i];

		u[6] = (u[6] & 0x0f) | 0x40;
		u[8] = (u[8] & 0x3f) | 0x80;
		snprintf(a->uuid, sizeof(a->uuid),
		    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		    u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		    u[13], u[14], u[15]);
		snprintf(a->hostname, sizeof(a->hostname), "bench-%05d", i);
		snprintf(a->agent_key, sizeof(a->agent_key), "agent.%s", a->uuid);
		a->started_wall_us = clock_wall_us();
		b->by_uuid[i] = a;
	}
	free(r);
	qsort(b->by_uuid, (size_t)b->o.agents, sizeof(*b->by_uuid), cmp_agent_uuid);
}

/* Connect, bind and subscribe connection i and its agents. Exits on failure (set-up). */
static void
conn_open(struct bench *b, int i, int first, int count)
{
	struct conn *c = &b->conns[i];
	natsOptions *o = NULL;
	jsOptions jo;
	pthread_condattr_t ca;
	char name[32];
	natsStatus s;

	c->b = b;
	c->agents = &b->agents[first];
	c->n_agents = count;
	c->queue = calloc((size_t)count, sizeof(int));
	c->batch = calloc((size_t)count, sizeof(int));
	if (c->queue == NULL || c->batch == NULL)
		die_msg("out of memory");
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(name, sizeof(name), "bench_fleet-%d", i);
	if ((s = natsOptions_Create(&o)) != NATS_OK ||
	    (s = natsOptions_SetURL(o, b->o.url)) != NATS_OK ||
	    (s = natsOptions_SetName(o, name)) != NATS_OK ||
	    /* RPC replies leave at once, not at the flusher's next pass (~1 ms). */
	    (s = natsOptions_SetSendAsap(o, true)) != NATS_OK ||
	    /* The pool's threads deliver for every subscription: no thread per subscription. */
	    (s = natsOptions_UseGlobalMessageDelivery(o, true)) != NATS_OK ||
	    (s = natsOptions_SetMaxReconnect(o, -1)) != NATS_OK ||
	    (s = natsOptions_SetReconnectedCB(o, on_reconnected, c)) != NATS_OK ||
	    (s = natsOptions_SetErrorHandler(o, on_async_error, b)) != NATS_OK)
		die("options", s);
	if ((s = natsConnection_Connect(&c->nc, o)) != NATS_OK)
		die(b->o.url, s);
	natsOptions_Destroy(o);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 4 * count + 64;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = b;
	if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK)
		die("JetStream", s);
	if ((s = js_KeyValue(&c->policy_kv, c->js, POLICY_BUCKET)) != NATS_OK)
		die("bind " POLICY_BUCKET " (run --create-buckets first)", s);
	for (int k = 0; k < count; k++) {
		struct agent *a = &c->agents[k];
		char subj[4][SUBJECT_MAX];

		a->conn = c;
		snprintf(subj[0], SUBJECT_MAX, "%s.policy.%s", b->o.prefix, a->agent_key);
		snprintf(subj[1], SUBJECT_MAX, "%s.policy.group." GROUP, b->o.prefix);
		snprintf(subj[2], SUBJECT_MAX, "%s.rpc.%s.>", b->o.prefix, a->uuid);
		snprintf(subj[3], SUBJECT_MAX, "%s.rpc.all.Agent.GetInfo", b->o.prefix);
		for (int j = 0; j < 4; j++) {
			s = natsConnection_Subscribe(
			    &a->subs[j], c->nc, subj[j], j < 2 ? on_policy : on_rpc, a);
			if (s != NATS_OK)
				die(subj[j], s);
		}
	}
	if ((s = natsConnection_Flush(c->nc)) != NATS_OK)
		die("flush", s);
	if (pthread_create(&c->worker, NULL, conn_worker, c) != 0)
		die_msg("pthread_create");
	c->worker_started = 1;
}

static void
console_open(struct bench *b)
{
	natsStatus s;

	if ((s = natsConnection_ConnectTo(&b->cnc, b->o.url)) != NATS_OK)
		die(b->o.url, s);
	if ((s = natsConnection_JetStream(&b->cjs, b->cnc, NULL)) != NATS_OK)
		die("JetStream", s);
	if ((s = js_KeyValue(&b->agents_kv, b->cjs, AGENTS_BUCKET)) != NATS_OK ||
	    (s = js_KeyValue(&b->policy_kv, b->cjs, POLICY_BUCKET)) != NATS_OK)
		die("bind the buckets (run --create-buckets first)", s);
}

/* The one teardown: copes with a half-opened fleet; frees everything once. */
static void
bench_close(struct bench *b)
{
	jsPubOptions po;

	for (int i = 0; b->conns != NULL && i < b->o.conns; i++) {
		struct conn *c = &b->conns[i];

		if (c->worker_started) {
			pthread_mutex_lock(&c->mu);
			c->stop = 1;
			pthread_cond_signal(&c->cv);
			pthread_mutex_unlock(&c->mu);
			pthread_join(c->worker, NULL);
		}
		if (c->js != NULL) {
			jsPubOptions_Init(&po);
			po.MaxWait = 2000;
			(void)js_PublishAsyncComplete(c->js, &po);
		}
		if (c->nc != NULL)
			natsConnection_Close(c->nc);
		for (int k = 0; k < c->n_agents; k++)
			for (int j = 0; j < 4; j++)
				natsSubscription_Destroy(c->agents[k].subs[j]);
		kvStore_Destroy(c->policy_kv);
		jsCtx_Destroy(c->js);
		natsConnection_Destroy(c->nc);
		if (c->queue != NULL) {
			pthread_mutex_destroy(&c->mu);
			pthread_cond_destroy(&c->cv);
		}
		free(c->queue);
		free(c->batch);
	}
	kvStore_Destroy(b->agents_kv);
	kvStore_Destroy(b->policy_kv);
	jsCtx_Destroy(b->cjs);
	natsConnection_Destroy(b->cnc);
	free(b->conns);
	free(b->agents);
	free(b->by_uuid);
}

/* The inventory bucket's stream: entries and bytes as the server stores them. */
static void
bucket_print(struct bench *b)
{
	jsStreamInfo *si = NULL;

	if (js_GetStreamInfo(&si, b->cjs, "KV_" AGENTS_BUCKET, NULL, NULL) != NATS_OK) {
		printf("  bucket %s: no stream info\n", AGENTS_BUCKET);
		return;
	}
	printf("  bucket %s: %" PRIu64 " entries, %" PRIu64 " bytes stored (%.0f per entry)\n",
	    AGENTS_BUCKET, si->State.Msgs, si->State.Bytes,
	    si->State.Msgs ? (double)si->State.Bytes / (double)si->State.Msgs : 0.0);
	jsStreamInfo_Destroy(si);
}

/* ---- a: start ---- */

static void
phase_start(struct bench *b)
{
	struct cpu c0, c1;
	uint64_t t0;
	double connect_ms, fetch_ms, put_ms;
	int per = b->o.agents / b->o.conns, extra = b->o.agents % b->o.conns, first = 0;

	printf("\n== a. start: %d agents over %d connections (%d subscriptions), delivery pool of "
	       "%d\n",
	    b->o.agents, b->o.conns, 4 * b->o.agents, b->o.delivery_threads);
	cpu_sample(b, &c0);
	t0 = clock_mono_us();
	b->conns = calloc((size_t)b->o.conns, sizeof(*b->conns));
	if (b->conns == NULL)
		die_msg("out of memory");
	for (int i = 0; i < b->o.conns; i++) {
		int n = per + (i < extra);

		conn_open(b, i, first, n);
		first += n;
	}
	connect_ms = (double)(clock_mono_us() - t0) / 1000.0;
	printf("  connect + bind + subscribe + flush: %.0f ms; threads in this process: %d\n",
	    connect_ms, threads_now());
	fetch_ms = run_job(b, JOB_FETCH);
	printf("  initial policy reads (2 kvStore_Get per agent, %d in parallel): %.0f ms\n",
	    b->o.conns, fetch_ms);
	t0 = clock_mono_us();
	run_job(b, JOB_PUT);
	if (wait_acks(b, WAIT_S) != 0)
		printf("  not every inventory put was acknowledged within %d s\n", WAIT_S);
	put_ms = (double)(clock_mono_us() - t0) / 1000.0;
	printf("  RESULT start: %ld of %d inventory puts acknowledged in %.0f ms (%ld failed, %ld "
	       "not sent); inventory %d bytes\n",
	    atomic_get(&b->puts_acked), b->o.agents, put_ms, atomic_get(&b->puts_failed),
	    atomic_get(&b->send_failed), b->inventory_len);
	cpu_sample(b, &c1);
	cpu_print(&c0, &c1);
	bucket_print(b);
	/* Heartbeats from now on, spread evenly over the interval. */
	t0 = clock_mono_us();
	for (int i = 0; i < b->o.agents; i++)
		b->agents[i].next_hb_us =
		    t0 + (uint64_t)b->o.heartbeat_s * 1000000ULL * (uint64_t)i / b->o.agents;
	b->hb_start_us = t0;
	__atomic_store_n(&b->heartbeat_on, 1, __ATOMIC_RELEASE);
}

/* ---- b: listing ---- */

/* The rows of one listing: a heartbeat landing mid-read must not count twice. */
struct listing {
	const struct bench *b;
	unsigned char *seen; /* by agent index */
	int rows;
	uint64_t done_us; /* when the listing had its answer (0: when it returned) */
	int late;         /* rows that came after it stopped (ordered consumer only) */
};

/* One row of the console's table: the JSON must carry the columns. */
static void
row_add(struct listing *l, const void *data, size_t len)
{
	json_t *j = json_loadb(data, len, 0, NULL);
	const char *uuid = json_string_value(json_object_get(j, "uuid"));
	struct agent *a;

	if (uuid != NULL && strlen(uuid) == 36 && json_is_string(json_object_get(j, "hostname")) &&
	    json_is_string(json_object_get(j, "last_seen")) &&
	    json_is_object(json_object_get(j, "policy"))) {
		if ((a = agent_find(l->b, uuid)) == NULL) {
			l->rows++;
		} else if (!l->seen[a - l->b->agents]) {
			l->seen[a - l->b->agents] = 1;
			l->rows++;
		}
	}
	json_decref(j);
}

/* The console's way: kvStore_Keys, then kvStore_Get of each. */
static void
list_keys_get(struct bench *b, struct listing *l)
{
	kvKeysList kl;

	if (kvStore_Keys(&kl, b->agents_kv, NULL) != NATS_OK)
		return;
	for (int i = 0; i < kl.Count; i++) {
		kvEntry *e = NULL;

		if (kvStore_Get(&e, b->agents_kv, kl.Keys[i]) != NATS_OK)
			continue;
		row_add(l, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
		kvEntry_Destroy(e);
	}
	kvKeysList_Destroy(&kl);
}

/* kvStore_WatchAll until the end of the initial values. */
static void
list_watch(struct bench *b, struct listing *l)
{
	kvWatcher *w = NULL;
	kvWatchOptions wo;

	kvWatchOptions_Init(&wo);
	wo.IgnoreDeletes = true;
	if (kvStore_WatchAll(&w, b->agents_kv, &wo) != NATS_OK)
		return;
	for (;;) {
		kvEntry *e = NULL;

		if (kvWatcher_Next(&e, w, 5000) != NATS_OK || e == NULL)
			break;
		row_add(l, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
		kvEntry_Destroy(e);
	}
	kvWatcher_Destroy(w);
}

/* An ordered consumer over KV_REDIRECT_AGENTS, last message per subject. */
static void
list_ordered(struct bench *b, struct listing *l)
{
	natsSubscription *sub = NULL;
	jsSubOptions so;

	jsSubOptions_Init(&so);
	so.Stream = "KV_" AGENTS_BUCKET;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverLastPerSubject;
	if (js_SubscribeSync(&sub, b->cjs, "$KV." AGENTS_BUCKET ".>", NULL, &so, NULL) != NATS_OK)
		return;
	for (;;) {
		natsMsg *m = NULL;
		jsMsgMetaData *md = NULL;
		const char *op = NULL;
		uint64_t pending;

		if (natsSubscription_NextMsg(&m, sub, 5000) != NATS_OK)
			break;
		if (natsMsg_GetMetaData(&md, m) != NATS_OK) {
			natsMsg_Destroy(m);
			break;
		}
		pending = md->NumPending;
		jsMsgMetaData_Destroy(md);
		if (natsMsgHeader_Get(m, "KV-Operation", &op) != NATS_OK)
			row_add(l, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
		natsMsg_Destroy(m);
		if (pending == 0)
			break;
	}
	l->done_us = clock_mono_us();
	/*
	 * Not timed: when rows are missing, read on for up to 500 ms to tell an
	 * entry that comes after NumPending said 0 from one that never comes.
	 */
	for (int before = l->rows; l->rows < b->o.agents;) {
		natsMsg *m = NULL;

		if (clock_mono_us() - l->done_us > 500000 ||
		    natsSubscription_NextMsg(&m, sub, 100) != NATS_OK)
			break;
		row_add(l, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
		l->late = l->rows - before;
		natsMsg_Destroy(m);
	}
	l->rows -= l->late;
	natsSubscription_Destroy(sub);
}

/* How many distinct agents of ours text names (by uuid). */
static int
count_listed(const struct bench *b, const char *text, size_t len)
{
	unsigned char *seen = calloc((size_t)b->o.agents, 1);
	int n = 0;

	if (seen == NULL)
		return -1;
	for (size_t i = 0; i + 36 <= len; i++) {
		struct agent *a;

		if (text[i + 8] != '-' || text[i + 13] != '-' || text[i + 18] != '-' ||
		    text[i + 23] != '-')
			continue;
		if ((a = agent_find(b, text + i)) != NULL && !seen[a - b->agents]) {
			seen[a - b->agents] = 1;
			n++;
		}
	}
	free(seen);
	return n;
}

/*
 * Run `$CTL fleet --server URL agents --json` once; its stdout is read
 * (up to CTL_OUTPUT_MAX) and searched for our agents. Returns the exit
 * status (-1: could not run); *listed is how many of ours it named.
 */
static int
ctl_run(const struct bench *b, const char *ctl, int quiet, int *listed)
{
	char *argv[] = {(char *)ctl, (char *)"fleet", (char *)"--server", (char *)b->o.url,
	    (char *)"agents", (char *)"--json", NULL};
	posix_spawn_file_actions_t fa;
	char *out = malloc(CTL_OUTPUT_MAX);
	size_t len = 0;
	ssize_t r;
	int p[2], status = -1;
	pid_t pid;

	*listed = 0;
	if (out == NULL || pipe(p) != 0) {
		free(out);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	posix_spawn_file_actions_addclose(&fa, p[1]);
	if (quiet)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, ctl, &fa, NULL, argv, NULL) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	while (pid > 0) {
		char sink[65536];
		size_t room = CTL_OUTPUT_MAX - len;

		r = read(p[0], room > 0 ? out + len : sink, room > 0 ? room : sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (room > 0)
			len += (size_t)r;
	}
	close(p[0]);
	if (pid > 0 && waitpid(pid, &status, 0) == pid)
		status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	if (status == 0)
		*listed = count_listed(b, out, len);
	free(out);
	return status;
}

static void
phase_listing(struct bench *b)
{
	static const char *names[3] = {"kvStore_Keys + kvStore_Get each (the console's way)",
	    "kvStore_WatchAll, initial values", "ordered consumer, last per subject"};
	void (*const list[3])(struct bench *, struct listing *) = {
	    list_keys_get, list_watch, list_ordered};
	uint64_t t[3][LIST_RUNS], ct[LIST_RUNS];
	int rows[3][LIST_RUNS], late[3][LIST_RUNS], listed = 0, rc;
	const char *ctl = getenv("CTL");
	double best = 0;
	int fastest = 0;
	struct cpu c0, c1;

	printf("\n== b. listing %d agents (median of %d; heartbeats running)\n", b->o.agents,
	    LIST_RUNS);
	cpu_sample(b, &c0);
	for (int r = 0; r < LIST_RUNS; r++) /* interleaved: drift hits all three alike */
		for (int m = 0; m < 3; m++) {
			struct listing l = {b, calloc((size_t)b->o.agents, 1), 0, 0, 0};
			uint64_t t0 = clock_mono_us();

			if (l.seen == NULL)
				die_msg("out of memory");
			list[m](b, &l);
			t[m][r] = (l.done_us != 0 ? l.done_us : clock_mono_us()) - t0;
			rows[m][r] = l.rows;
			late[m][r] = l.late;
			free(l.seen);
		}
	for (int m = 0; m < 3; m++) {
		int lo = rows[m][0], hi = rows[m][0];
		double med;

		for (int r = 1; r < LIST_RUNS; r++) {
			lo = rows[m][r] < lo ? rows[m][r] : lo;
			hi = rows[m][r] > hi ? rows[m][r] : hi;
		}
		med = median_ms(t[m], LIST_RUNS);
		printf("  RESULT list %-52s %7.1f ms (min %.1f, max %.1f) rows %d..%d\n", names[m],
		    med, (double)t[m][0] / 1000, (double)t[m][LIST_RUNS - 1] / 1000, lo, hi);
		if (lo != b->o.agents || hi != b->o.agents) {
			printf("    rows per run (in order):");
			for (int r = 0; r < LIST_RUNS; r++)
				printf(" %d", rows[m][r]);
			if (m == 2) {
				printf("; came after NumPending 0:");
				for (int r = 0; r < LIST_RUNS; r++)
					printf(" %d", late[m][r]);
			}
			printf("\n");
		}
		if (m == 0 || med < best) {
			best = med;
			fastest = m;
		}
	}
	printf("  fastest: %s, %.1fx the console's way\n", names[fastest],
	    median_ms(t[0], LIST_RUNS) / best);
	cpu_sample(b, &c1);
	cpu_print(&c0, &c1);
	if (ctl == NULL || *ctl == '\0') {
		printf("  $CTL fleet ... agents: not measured (CTL not set)\n");
		return;
	}
	if ((rc = ctl_run(b, ctl, 0, &listed)) != 0) {
		printf("  $CTL fleet ... agents: skipped (%s exited %d: no fleet command yet?)\n",
		    ctl, rc);
		return;
	}
	for (int r = 0; r < LIST_RUNS; r++) {
		uint64_t t0 = clock_mono_us();

		rc = ctl_run(b, ctl, 1, &listed);
		ct[r] = clock_mono_us() - t0;
		if (rc != 0)
			printf("  $CTL run %d exited %d\n", r + 1, rc);
	}
	printf("  RESULT list %-52s %7.1f ms (process included), named %d of %d agents\n",
	    "$CTL fleet --server URL agents --json", median_ms(ct, LIST_RUNS), listed, b->o.agents);
}

/* ---- c: policy fan-out ---- */

struct write {
	const char *key;
	uint64_t t0_us, put_us, rev;
};

/* Latencies (µs) of write w at every agent in [first, first + n); returns how many arrived. */
static size_t
latencies(
    const struct bench *b, const struct write *w, int first, int n, int fetched, uint64_t *out)
{
	size_t got = 0;

	for (int i = first; i < first + n; i++) {
		const struct agent *a = &b->agents[i];
		const struct arrival *arr = fetched ? a->fetched : a->arrived;
		int cnt =
		    __atomic_load_n(fetched ? &a->n_fetched : &a->n_arrived, __ATOMIC_ACQUIRE);

		for (int k = 0; k < cnt && k < ARRIVALS; k++) {
			uint64_t at = __atomic_load_n(&arr[k].at_us, __ATOMIC_ACQUIRE);

			if (at != 0 && arr[k].rev == w->rev) {
				out[got++] = at > w->t0_us ? at - w->t0_us : 0;
				break;
			}
		}
	}
	return got;
}

static void
print_dist(const char *what, uint64_t *v, size_t n, size_t expected)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("  RESULT %-44s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (%zu of %zu arrived)\n",
	    what, pct_ms(v, n, 0.5), pct_ms(v, n, 0.99), n ? (double)v[n - 1] / 1000 : 0.0, n,
	    expected);
}

/* Put key = doc, timing from just before the put. Exits on failure (the console's write). */
static void
policy_write(struct bench *b, struct write *w, const char *key, const char *doc)
{
	natsStatus s;

	w->key = key;
	w->t0_us = clock_mono_us();
	if ((s = kvStore_PutString(&w->rev, b->policy_kv, key, doc)) != NATS_OK)
		die(key, s);
	w->put_us = clock_mono_us() - w->t0_us;
}

static void
phase_fanout(struct bench *b)
{
	struct write w[MAX_WRITES], aw[AGENT_KEYS];
	size_t n_all = (size_t)b->o.writes * (size_t)b->o.agents, got_all = 0, got_f = 0;
	uint64_t *all = calloc(n_all, sizeof(uint64_t)), *fall = calloc(n_all, sizeof(uint64_t));
	uint64_t *one = calloc((size_t)b->o.agents, sizeof(uint64_t)), put[MAX_WRITES],
		 ak[AGENT_KEYS];
	uint64_t next;
	char doc[256];
	size_t n_ak = 0;
	long acked0 = atomic_get(&b->puts_acked);
	struct cpu c0, c1;

	if (all == NULL || fall == NULL || one == NULL)
		die_msg("out of memory");
	printf("\n== c. policy fan-out: %d writes of group." GROUP " 1 s apart, then %d agent "
	       "keys (arrival = republished message received%s)\n",
	    b->o.writes, AGENT_KEYS, b->o.fetch ? "; fetched = kvStore_Get returned it" : "");
	cpu_sample(b, &c0);
	next = clock_mono_us();
	for (int k = 0; k < b->o.writes; k++) {
		snprintf(doc, sizeof(doc),
		    "{\"default_action\":\"allow\",\"rules\":[{\"id\":\"b%d\",\"action\":\"block\","
		    "\"match\":{\"dst_cidrs\":[\"10.%d.0.0/16\"]}}]}",
		    k, k % 256);
		while (clock_mono_us() < next)
			sleep_ms(1);
		policy_write(b, &w[k], "group." GROUP, doc);
		put[k] = w[k].put_us;
		next = w[k].t0_us + 1000000;
	}
	for (int k = 0; k < AGENT_KEYS; k++) {
		struct agent *a = &b->agents[(size_t)k * (size_t)b->o.agents / AGENT_KEYS];

		sleep_ms(200);
		snprintf(doc, sizeof(doc),
		    "{\"default_action\":\"allow\",\"rules\":[{\"id\":\"a%d\",\"action\":\"block\","
		    "\"match\":{\"dst_cidrs\":[\"192.0.2.%d/32\"]}}]}",
		    k, k);
		policy_write(b, &aw[k], a->agent_key, doc);
	}
	sleep_ms(2000); /* stragglers */
	cpu_sample(b, &c1);
	for (int k = 0; k < b->o.writes; k++) {
		size_t got = latencies(b, &w[k], 0, b->o.agents, 0, one);

		memcpy(all + got_all, one, got * sizeof(*one));
		got_all += got;
		qsort(one, got, sizeof(*one), cmp_u64);
		printf("  write %2d rev %-6" PRIu64 " put %5.1f ms  arrived %4zu/%d  p50 %6.1f ms  "
		       "p99 %6.1f ms  max %6.1f ms\n",
		    k + 1, w[k].rev, (double)w[k].put_us / 1000, got, b->o.agents,
		    pct_ms(one, got, 0.5), pct_ms(one, got, 0.99),
		    got ? (double)one[got - 1] / 1000 : 0.0);
		if (b->o.fetch)
			got_f += latencies(b, &w[k], 0, b->o.agents, 1, fall + got_f);
	}
	for (int k = 0; k < AGENT_KEYS; k++) {
		int idx = (int)((size_t)k * (size_t)b->o.agents / AGENT_KEYS);

		n_ak += latencies(b, &aw[k], idx, 1, 0, ak + n_ak);
	}
	print_dist("group." GROUP " write -> arrival, all agents+writes", all, got_all, n_all);
	if (b->o.fetch) {
		print_dist("group." GROUP " write -> fetched (kvStore_Get)", fall, got_f, n_all);
		/* A real agent reads its two keys at once; here its connection's agents queue. */
		printf("  (fetched: the %d agents of a connection read in turn on its one worker, "
		       "so this is an upper bound for one agent)\n",
		    (b->o.agents + b->o.conns - 1) / b->o.conns);
	}
	print_dist("agent.<uuid> write -> arrival", ak, n_ak, AGENT_KEYS);
	qsort(put, (size_t)b->o.writes, sizeof(*put), cmp_u64);
	printf("  the console's kvStore_Put: p50 %.1f ms, max %.1f ms; inventory puts acked in "
	       "the phase: %ld (heartbeats + changes)\n",
	    pct_ms(put, (size_t)b->o.writes, 0.5), (double)put[b->o.writes - 1] / 1000,
	    atomic_get(&b->puts_acked) - acked0);
	cpu_print(&c0, &c1);
	free(all);
	free(fall);
	free(one);
}

/* ---- d: RPC ---- */

/* A GetInfo reply: OK and for the agent expected (NULL: any of ours)? */
static int
getinfo_ok(const struct bench *b, natsMsg *r, const char *expected)
{
	const char *st = NULL;
	Redirect__V1__AgentInfo *info;
	int ok;

	if (natsMsgHeader_Get(r, "Status", &st) == NATS_OK && st != NULL)
		return 0;
	info = redirect__v1__agent_info__unpack(
	    NULL, (size_t)natsMsg_GetDataLength(r), (const uint8_t *)natsMsg_GetData(r));
	if (info == NULL)
		return 0;
	ok = expected != NULL ? strcmp(info->agent_uuid, expected) == 0
			      : strlen(info->agent_uuid) == 36 && agent_find(b, info->agent_uuid);
	redirect__v1__agent_info__free_unpacked(info, NULL);
	return ok;
}

/* n sequential GetInfo requests on nc to subject(s); latencies (µs) into lat. Returns errors. */
static int
nats_getinfo(const struct bench *b, natsConnection *nc, const char *uuid, int n, uint64_t *lat,
    natsStatus *first_err)
{
	Redirect__V1__GetInfoRequest q = REDIRECT__V1__GET_INFO_REQUEST__INIT;
	uint8_t body[16];
	size_t len = redirect__v1__get_info_request__pack(&q, body);
	unsigned seed = 14;
	char subj[SUBJECT_MAX];
	int errors = 0;

	*first_err = NATS_OK;
	for (int i = 0; i < n; i++) {
		const char *to = uuid != NULL ? uuid : b->agents[rand_r(&seed) % b->o.agents].uuid;
		natsMsg *r = NULL;
		natsStatus s;
		uint64_t t0;

		snprintf(subj, sizeof(subj), "%s.rpc.%s.Agent.GetInfo", b->o.prefix, to);
		t0 = clock_mono_us();
		s = natsConnection_Request(&r, nc, subj, body, (int)len, 2000);
		lat[i] = clock_mono_us() - t0;
		if (s != NATS_OK || !getinfo_ok(b, r, to)) {
			if (errors++ == 0)
				*first_err = s != NATS_OK ? s : NATS_ERR;
		}
		natsMsg_Destroy(r);
	}
	return errors;
}

/* The discovery call: every agent's GetInfo, collected for window_ms. */
static void
discovery(struct bench *b)
{
	natsInbox *inbox = NULL;
	natsSubscription *sub = NULL;
	unsigned char *seen = calloc((size_t)b->o.agents, 1);
	char subj[SUBJECT_MAX];
	uint64_t t0, last = 0, all_at = 0, deadline;
	int replies = 0, distinct = 0, bad = 0;
	natsStatus s;

	if (seen == NULL || natsInbox_Create(&inbox) != NATS_OK ||
	    natsConnection_SubscribeSync(&sub, b->cnc, inbox) != NATS_OK ||
	    natsSubscription_SetPendingLimits(sub, 4 * b->o.agents + 64, -1) != NATS_OK)
		die_msg("discovery: cannot subscribe to an inbox");
	snprintf(subj, sizeof(subj), "%s.rpc.all.Agent.GetInfo", b->o.prefix);
	t0 = clock_mono_us();
	deadline = t0 + 1000000;
	if ((s = natsConnection_PublishRequest(b->cnc, subj, inbox, NULL, 0)) != NATS_OK)
		die(subj, s);
	for (;;) {
		uint64_t now = clock_mono_us();
		natsMsg *m = NULL;
		Redirect__V1__AgentInfo *info;
		struct agent *a;

		if (now >= deadline || natsSubscription_NextMsg(&m, sub,
					   (int64_t)(deadline - now + 999) / 1000) != NATS_OK)
			break;
		replies++;
		last = clock_mono_us() - t0;
		info = redirect__v1__agent_info__unpack(
		    NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
		if (info != NULL && strlen(info->agent_uuid) == 36 &&
		    (a = agent_find(b, info->agent_uuid)) != NULL) {
			if (!seen[a - b->agents]) {
				seen[a - b->agents] = 1;
				if (++distinct == b->o.agents)
					all_at = last;
			}
		} else {
			bad++;
		}
		if (info != NULL)
			redirect__v1__agent_info__free_unpacked(info, NULL);
		natsMsg_Destroy(m);
	}
	printf("  RESULT discovery on %s: %d of %d agents answered in the 1 s window (%d replies, "
	       "%d not ours or undecodable), the last at %.1f ms\n",
	    subj, distinct, b->o.agents, replies, bad, (double)last / 1000);
	if (all_at)
		printf("  RESULT discovery: all %d agents had answered at %.1f ms\n", b->o.agents,
		    (double)all_at / 1000);
	natsSubscription_Destroy(sub);
	natsInbox_Destroy(inbox);
	free(seen);
}

/* p50 of phase d, kept for phase e's stand-in ratio. */
static double rpc_p50_ms;

static void
phase_rpc(struct bench *b)
{
	uint64_t *lat = calloc((size_t)b->o.requests, sizeof(uint64_t)), warm[100], t0, t;
	natsStatus err;
	int errors;
	struct cpu c0, c1;

	if (lat == NULL)
		die_msg("out of memory");
	printf(
	    "\n== d. RPC: %d sequential GetInfo to random agents, then discovery\n", b->o.requests);
	cpu_sample(b, &c0);
	(void)nats_getinfo(b, b->cnc, NULL, 100, warm, &err);
	t0 = clock_mono_us();
	errors = nats_getinfo(b, b->cnc, NULL, b->o.requests, lat, &err);
	t = clock_mono_us() - t0;
	qsort(lat, (size_t)b->o.requests, sizeof(*lat), cmp_u64);
	rpc_p50_ms = pct_ms(lat, (size_t)b->o.requests, 0.5);
	printf("  RESULT GetInfo over NATS: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  "
	       "%.0f req/s  errors %d%s%s\n",
	    rpc_p50_ms, pct_ms(lat, (size_t)b->o.requests, 0.9),
	    pct_ms(lat, (size_t)b->o.requests, 0.99), (double)lat[b->o.requests - 1] / 1000,
	    b->o.requests / ((double)t / 1e6), errors, errors ? ", first: " : "",
	    errors ? natsStatus_GetText(err) : "");
	discovery(b);
	cpu_sample(b, &c1);
	cpu_print(&c0, &c1);
	free(lat);
}

/* ---- e: a real agent, gRPC against NATS ---- */

static void
phase_real(struct bench *b)
{
	const char *sock = getenv("AGENT_SOCKET"), *uuid = getenv("AGENT_UUID");
	const char *url = getenv("AGENT_NATS") != NULL ? getenv("AGENT_NATS") : b->o.url;
	Redirect__V1__GetInfoRequest q = REDIRECT__V1__GET_INFO_REQUEST__INIT;
	uint64_t g[REAL_CALLS], n[REAL_CALLS];
	char err[512];
	struct client cl;
	natsConnection *nc = NULL;
	natsStatus first;
	int errors = 0;
	double gp50;

	printf("\n== e. GetInfo: NATS against the local gRPC socket, %d calls each\n", REAL_CALLS);
	if (sock == NULL || uuid == NULL) {
		printf("  skipped: set AGENT_SOCKET and AGENT_UUID to a running agent\n");
		return;
	}
	if (client_open(&cl, sock, err, sizeof(err)) != 0) {
		printf("  skipped: %s\n", err);
		return;
	}
	for (int i = 0; i < 20 + REAL_CALLS; i++) {
		ProtobufCMessage *resp = NULL;
		uint64_t t0 = clock_mono_us();
		int rc = client_call(&cl, "/redirect.v1.Agent/GetInfo", &q.base,
		    &redirect__v1__agent_info__descriptor, &resp, err, sizeof(err));

		if (i >= 20)
			g[i - 20] = clock_mono_us() - t0;
		if (rc != 0) {
			printf("  gRPC GetInfo failed (%d): %s\n", rc, err);
			client_close(&cl);
			return;
		}
		if (i == 0 && strcmp(((Redirect__V1__AgentInfo *)resp)->agent_uuid, uuid) != 0)
			printf("  note: the socket's agent is %s, not AGENT_UUID %s\n",
			    ((Redirect__V1__AgentInfo *)resp)->agent_uuid, uuid);
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	client_close(&cl);
	gp50 = median_ms(g, REAL_CALLS); /* sorts g: pct_ms after it */
	printf("  RESULT GetInfo over gRPC (unix socket %s): p50 %.3f ms  p99 %.3f ms\n", sock,
	    gp50, pct_ms(g, REAL_CALLS, 0.99));
	if (natsConnection_ConnectTo(&nc, url) != NATS_OK) {
		printf("  NATS side skipped: cannot connect to %s\n", url);
		return;
	}
	if (nats_getinfo(b, nc, uuid, 1, n, &first) != 0) {
		printf("  NATS side skipped: %s.rpc.%s.Agent.GetInfo on %s: %s (the agent does not "
		       "serve RPC over NATS yet)\n",
		    b->o.prefix, uuid, url, natsStatus_GetText(first));
		if (rpc_p50_ms > 0)
			printf(
			    "  stand-in only: a simulated agent's GetInfo over NATS (phase d) p50 "
			    "%.3f ms = %.2fx the real agent's gRPC p50\n",
			    rpc_p50_ms, rpc_p50_ms / gp50);
		natsConnection_Destroy(nc);
		return;
	}
	(void)nats_getinfo(b, nc, uuid, 20, n, &first);
	errors = nats_getinfo(b, nc, uuid, REAL_CALLS, n, &first);
	natsConnection_Destroy(nc);
	{
		double np50 = median_ms(n, REAL_CALLS); /* sorts n: pct_ms after it */

		printf("  RESULT GetInfo over NATS (%s): p50 %.3f ms  p99 %.3f ms  errors %d\n",
		    url, np50, pct_ms(n, REAL_CALLS, 0.99), errors);
		printf("  RESULT ratio NATS / gRPC (p50): %.2f\n", np50 / gp50);
	}
}

/* ---- f: soak ---- */

static void
phase_soak(struct bench *b)
{
	long a0 = atomic_get(&b->puts_acked), f0 = atomic_get(&b->puts_failed);
	struct cpu c0, c1;
	double wall;

	printf("\n== f. soak: heartbeats only for %d s (%d agents every %d s = %.0f puts/s "
	       "expected)\n",
	    b->o.duration_s, b->o.agents, b->o.heartbeat_s, (double)b->o.agents / b->o.heartbeat_s);
	cpu_sample(b, &c0);
	for (int i = 0; i < b->o.duration_s; i++)
		sleep_ms(1000);
	cpu_sample(b, &c1);
	wall = (double)(c1.wall_us - c0.wall_us) / 1e6;
	printf("  RESULT heartbeat puts acked: %.0f/s (%ld failed)\n",
	    (double)(atomic_get(&b->puts_acked) - a0) / wall, atomic_get(&b->puts_failed) - f0);
	cpu_print(&c0, &c1);
}

/* ---- main ---- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_fleet --create-buckets [--prefix P] URL\n"
	    "       bench_fleet [-n AGENTS] [-c CONNS] [--heartbeat S] [--duration S]\n"
	    "                   [--writes W] [--requests R] [--delivery-threads T] [--no-fetch]\n"
	    "                   [--prefix P] [--server-pid PID] URL\n");
	exit(2);
}

static void
options_parse(struct options *o, int argc, char **argv)
{
	static const struct option table[] = {{"agents", required_argument, NULL, 'n'},
	    {"conns", required_argument, NULL, 'c'}, {"heartbeat", required_argument, NULL, 'h'},
	    {"duration", required_argument, NULL, 'd'}, {"writes", required_argument, NULL, 'w'},
	    {"requests", required_argument, NULL, 'r'},
	    {"delivery-threads", required_argument, NULL, 't'},
	    {"prefix", required_argument, NULL, 'p'}, {"server-pid", required_argument, NULL, 's'},
	    {"no-fetch", no_argument, NULL, 'F'}, {"create-buckets", no_argument, NULL, 'B'},
	    {NULL, 0, NULL, 0}};
	int ch;

	*o = (struct options){.prefix = "redirect",
	    .agents = 1000,
	    .conns = 20,
	    .heartbeat_s = 5,
	    .duration_s = 10,
	    .writes = 20,
	    .requests = 2000,
	    .delivery_threads = 2,
	    .fetch = 1};
	while ((ch = getopt_long(argc, argv, "n:c:", table, NULL)) != -1) {
		switch (ch) {
		case 'n':
			o->agents = (int)arg_long("agents", optarg, 1, MAX_AGENTS);
			break;
		case 'c':
			o->conns = (int)arg_long("conns", optarg, 1, MAX_CONNS);
			break;
		case 'h':
			o->heartbeat_s = (int)arg_long("heartbeat", optarg, 1, 3600);
			break;
		case 'd':
			o->duration_s = (int)arg_long("duration", optarg, 0, 3600);
			break;
		case 'w':
			o->writes = (int)arg_long("writes", optarg, 1, MAX_WRITES);
			break;
		case 'r':
			o->requests = (int)arg_long("requests", optarg, 1, 100000);
			break;
		case 't':
			o->delivery_threads = (int)arg_long("delivery-threads", optarg, 1, 64);
			break;
		case 's':
			o->server_pid = arg_long("server-pid", optarg, 1, 1L << 30);
			break;
		case 'p':
			o->prefix = optarg;
			break;
		case 'F':
			o->fetch = 0;
			break;
		case 'B':
			o->create_buckets = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	o->url = argv[optind];
	if (!prefix_valid(o->prefix))
		die_msg("--prefix: letters, digits, '-', '_', dot-separated");
	if (o->conns > o->agents)
		o->conns = o->agents;
}

int
main(int argc, char **argv)
{
	struct bench b;
	natsStatus s;

	memset(&b, 0, sizeof(b));
	options_parse(&b.o, argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((s = nats_Open(-1)) != NATS_OK)
		die("nats_Open", s);
	if (b.o.create_buckets) {
		create_buckets(&b.o);
		nats_Close();
		return 0;
	}
	if ((s = nats_SetMessageDeliveryPoolSize(b.o.delivery_threads)) != NATS_OK)
		die("delivery pool", s);
	printf("bench_fleet: %d agents, %d connections, heartbeat %d s, prefix %s, server %s, "
	       "%ld CPUs\n",
	    b.o.agents, b.o.conns, b.o.heartbeat_s, b.o.prefix, b.o.url,
	    sysconf(_SC_NPROCESSORS_ONLN));
	agents_make(&b);
	console_open(&b);
	phase_start(&b);
	phase_listing(&b);
	phase_fanout(&b);
	phase_rpc(&b);
	phase_real(&b);
	phase_soak(&b);
	printf("\ntotals: inventory puts sent %ld acked %ld failed %ld not sent %ld; policy read "
	       "errors %ld; RPCs served %ld; async errors %ld; threads %d\n",
	    atomic_get(&b.puts_sent), atomic_get(&b.puts_acked), atomic_get(&b.puts_failed),
	    atomic_get(&b.send_failed), atomic_get(&b.fetch_errors), atomic_get(&b.rpc_served),
	    atomic_get(&b.async_errors), threads_now());
	bench_close(&b);
	nats_CloseAndWait(5000);
	return 0;
}
