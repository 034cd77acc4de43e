/*
 * agent.c: start and stop the whole agent (see agent.h for the order).
 */
#include "agent.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "control.h"
#include "export.h"
#include "fleet.h"
#include "host.h"
#include "log.h"
#include "platform.h"
#include "policies.h"
#include "policy.h"
#include "redirect.h"
#include "rpc_server.h"
#include "store.h"
#include "tls_files.h"
#include "version.h"
#include "worker.h"

int
agent_args_parse(
    int argc, char **argv, struct agent_args *args, struct config *cfg, void (*usage)(FILE *))
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"foreground", no_argument, NULL, 'f'},
#ifdef _WIN32
	    {"service", no_argument, NULL, 's'},
#endif
	    {"check-config", no_argument, NULL, 'n'},
	    {"write-config", required_argument, NULL, 'w'},
	    {"print-config", no_argument, NULL, 'P'},
	    {"cleanup", no_argument, NULL, 'C'},
	    {"force", no_argument, NULL, 'F'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* ":" first: the messages below, not getopt's (which name argv[0], a path) */
#ifdef _WIN32
	static const char shortopts[] = ":c:fsnw:Vh";
#else
	static const char shortopts[] = ":c:fnw:Vh";
#endif
	const char *config_path = NULL, *write_path = NULL;
	int check_only = 0, cleanup = 0, force = 0, c;
	char err[1024];

	memset(args, 0, sizeof(*args));
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			args->config_path = optarg;
			break;
		case 'f':
			args->foreground = 1;
			break;
		case 's':
			args->service = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'w':
			write_path = optarg;
			break;
		case 'P':
			config_print_template(stdout);
			return 0;
		case 'C':
			cleanup = 1;
			break;
		case 'F':
			force = 1;
			break;
		case 'V':
			printf("redirect-agent %s\n", RA_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "redirect-agent: %s needs a value\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		default:
			fprintf(stderr, "redirect-agent: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (write_path != NULL) {
		if (config_write_file(write_path, argv + optind, argc - optind, err, sizeof(err)) !=
		    0) {
			fprintf(stderr, "redirect-agent: configuration error: %s\n", err);
			return CONFIG_EXIT_CODE;
		}
		return 0;
	}
	if (optind < argc) {
		fprintf(stderr, "redirect-agent: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	config_defaults(cfg);
	if (config_path != NULL && config_load_file(cfg, config_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "redirect-agent: configuration error: %s\n", err);
		return CONFIG_EXIT_CODE;
	}
	if (check_only && tls_files_check(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "redirect-agent: configuration error: %s\n", err);
		return CONFIG_EXIT_CODE;
	}
	if (check_only) {
		printf("%s: configuration is valid\n",
		    config_path != NULL ? config_path : "(defaults)");
		return 0;
	}
	if (force && !cleanup) {
		fprintf(stderr, "redirect-agent: --force goes with --cleanup\n");
		usage(stderr);
		return 2;
	}
	if (cleanup) {
		int rc = redirect_cleanup(cfg, force, err, sizeof(err));

		fprintf(rc == 0 ? stdout : stderr, "redirect-agent: %s\n", err);
		return rc == 0 ? 0 : 1;
	}
	return -1;
}

struct agent {
	const struct config *cfg;
	struct store *store;
	struct policy_holder *policy;
	struct workers *workers;
	struct redirect *redirect;
	struct rpc_core *core; /* the API's methods and the policy path, for every transport */
	/* what a reload reads against (agent_reload_context) */
	struct config *running, *as_loaded;
	const char *config_path;
	struct rpc_server *rpc;
	struct fleet_control *control;
	struct fleet *fleet;
	struct exporter *exporter;
	int64_t started_at_us;
	int stopping; /* under reload_lock: agent_stop has begun */
	char hostname[256];
	struct ecs_agent ecs; /* who writes the exported records */
};

/* One reload at a time (SIGHUP, the API, a console over NATS), and none once stopping. */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

#define EXPORT_STOP_MS 2000 /* at stop, what is handed over gets this long to be acknowledged */

/*
 * The policy in force: the newest stored version this agent can compile.
 * A stored document was valid when set; one a later agent version wrote and
 * this one refuses is skipped, loudly, for the newest it accepts.
 */
static struct policy *
load_policy(const char *db_path)
{
	struct policy_problems probs;
	struct policy_row row;
	struct policy *p = NULL;
	struct policy_store *ps = NULL;
	char err[512];
	int found;

	if (policies_open(db_path, &ps, err, sizeof(err)) != 0) {
		log_warnx("cannot read the stored policy: %s", err);
		return NULL;
	}
	for (found = policies_latest(ps, &row); found == 1;) {
		uint64_t v = row.version;

		p = policy_compile(row.document, (size_t)-1, &probs);
		if (p != NULL) {
			policy_set_version(p, v);
			log_info("policy version %llu in force (%zu rules)", (unsigned long long)v,
			    policy_n_rules(p));
			policies_keep_backup(ps, &row);
			policy_row_free(&row);
			break;
		}
		log_warnx("stored policy version %llu is not valid for this agent (%s): skipped",
		    (unsigned long long)v, probs.n > 0 ? probs.msg[0] : "?");
		policy_problems_free(&probs);
		policy_row_free(&row);
		found = v > 1 ? policies_get(ps, v - 1, &row) : 0;
	}
	if (found < 0)
		log_warnx("cannot read the stored policy: %s", policies_errmsg(ps));
	policies_close(ps);
	if (p == NULL) {
		p = policy_allow_all();
		if (p != NULL && found == 0)
			log_info("no policy set: allowing everything");
	}
	return p;
}

/* ---- fleet control's hooks: the agent's parts it uses (control.h) ---- */

static int
hook_apply(void *ctx, const char *doc, const char *source, char (*probs)[FLEET_PROBLEM_LEN],
    size_t max, size_t *n, char *msg, size_t msglen)
{
	struct agent *a = ctx;
	struct policy_problems pr;
	int rc = rpc_policy_from_fleet(a->core, doc, source, &pr, msg, msglen);

	*n = 0;
	if (rc == -EINVAL) {
		for (size_t i = 0; i < pr.n && *n < max; i++)
			snprintf(probs[(*n)++], FLEET_PROBLEM_LEN, "%s", pr.msg[i]);
		policy_problems_free(&pr);
	}
	return rc;
}

static int
hook_back_to_local(void *ctx, char *msg, size_t msglen)
{
	return rpc_policy_back_to_local(((struct agent *)ctx)->core, msg, msglen);
}

static void
hook_policy_state(void *ctx, uint64_t *version, char *source, size_t len)
{
	rpc_policy_state(((struct agent *)ctx)->core, version, source, len);
}

static int
hook_health(void *ctx, char (*reasons)[640], size_t max, size_t *n)
{
	return rpc_health(((struct agent *)ctx)->core, reasons, max, n);
}

static void
hook_export_state(void *ctx, uint64_t *pending, int64_t *lag_s)
{
	struct agent *a = ctx;
	struct export_sink_stats sinks[4];
	size_t n = export_get_stats(a->exporter, sinks, 4);
	int64_t now = clock_wall_us();

	*pending = 0;
	*lag_s = 0;
	for (size_t i = 0; i < n; i++) {
		if (sinks[i].pending > *pending)
			*pending = sinks[i].pending;
		if (sinks[i].oldest_pending_us > 0 &&
		    (now - sinks[i].oldest_pending_us) / 1000000 > *lag_s)
			*lag_s = (now - sinks[i].oldest_pending_us) / 1000000;
	}
}

static int
hook_reload(void *ctx, char *msg, size_t msglen)
{
	struct agent *a = ctx;

	if (a->running == NULL) {
		snprintf(msg, msglen, "reload is not available in this process");
		return -ENOTSUP;
	}
	return agent_reload(a, a->running, a->as_loaded, a->config_path, msg, msglen);
}

void
agent_reload_context(
    struct agent *a, struct config *running, struct config *as_loaded, const char *config_path)
{
	a->running = running;
	a->as_loaded = as_loaded;
	a->config_path = config_path;
}

static int
hook_call(void *ctx, const char *path, const uint8_t *req, size_t len, uint8_t **reply,
    size_t *reply_len, char *msg, size_t msglen)
{
	return rpc_core_call(
	    ((struct agent *)ctx)->core, path, req, len, reply, reply_len, msg, msglen);
}

/* The limits a reload may change: timeouts, retention, the fair share, degraded_after_s. */
static void
take_limits(struct config *to, const struct config *from)
{
	to->idle_timeout_s = from->idle_timeout_s;
	to->connect_timeout_ms = from->connect_timeout_ms;
	to->drain_timeout_ms = from->drain_timeout_ms;
	to->retention_days = from->retention_days;
	to->max_rows = from->max_rows;
	to->policy_history_keep = from->policy_history_keep;
	to->max_sessions_per_uid = from->max_sessions_per_uid;
	to->system_uid_max = from->system_uid_max;
	to->degraded_after_s = from->degraded_after_s;
}

/*
 * The [fleet] keys a reload may change: all but turning the fleet on or off
 * and the names the export publishes under (subject_prefix, stream,
 * create_stream), which its cursor and the console depend on.
 */
static void
fleet_take(struct config *to, const struct config *from)
{
	memcpy(to->fleet_servers, from->fleet_servers, sizeof(to->fleet_servers));
	memcpy(to->fleet_tls_ca, from->fleet_tls_ca, sizeof(to->fleet_tls_ca));
	memcpy(to->fleet_tls_cert, from->fleet_tls_cert, sizeof(to->fleet_tls_cert));
	memcpy(to->fleet_tls_key, from->fleet_tls_key, sizeof(to->fleet_tls_key));
	memcpy(to->fleet_creds, from->fleet_creds, sizeof(to->fleet_creds));
	memcpy(to->fleet_groups, from->fleet_groups, sizeof(to->fleet_groups));
	to->n_fleet_groups = from->n_fleet_groups;
	to->fleet_heartbeat_s = from->fleet_heartbeat_s;
	memcpy(to->fleet_agents_bucket, from->fleet_agents_bucket, sizeof(to->fleet_agents_bucket));
	memcpy(to->fleet_policy_bucket, from->fleet_policy_bucket, sizeof(to->fleet_policy_bucket));
	to->fleet_local_policy = from->fleet_local_policy;
	to->fleet_policy_wait_s = from->fleet_policy_wait_s;
}

/* Whether fleet control must bind again for next: what it reads at bind time changed. */
static int
control_changed(const struct config *was, const struct config *next)
{
	return was->n_fleet_groups != next->n_fleet_groups ||
	       memcmp(was->fleet_groups, next->fleet_groups, sizeof(was->fleet_groups)) != 0 ||
	       was->fleet_heartbeat_s != next->fleet_heartbeat_s ||
	       strcmp(was->fleet_agents_bucket, next->fleet_agents_bucket) != 0 ||
	       strcmp(was->fleet_policy_bucket, next->fleet_policy_bucket) != 0;
}

static void
log_summary(const struct proxy_stats_snapshot *pp, struct store *st)
{
	const struct proxy_stats_snapshot p = *pp;
	struct store_stats s;

	store_get_stats(st, &s);
	log_info("accepted %llu, relayed %llu, failed %llu, refused %llu, bytes up %llu down %llu;"
		 " rows written %llu in %llu batches, events dropped %llu, queue high-water %llu",
	    (unsigned long long)p.accepted, (unsigned long long)p.relayed,
	    (unsigned long long)p.failed, (unsigned long long)p.refused,
	    (unsigned long long)p.bytes_up, (unsigned long long)p.bytes_down,
	    (unsigned long long)s.rows_written, (unsigned long long)s.batches,
	    (unsigned long long)s.events_dropped, (unsigned long long)s.queue_high_water);
}

int
agent_start(struct agent **out, const struct config *cfg)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct store_options so = {
	    .path = cfg->db_path,
	    .queue_size = cfg->queue_size,
	    .retention_days = cfg->retention_days,
	    .max_rows = cfg->max_rows,
	    .max_backlog = cfg->max_backlog,
	};
	struct store_stats ss;
	char machine_id[128];
	struct rpc_deps deps;
	struct timespec started;
	char err[1024];
	int rc;

	*out = NULL;
	if (a == NULL) {
		log_warnx("out of memory");
		return 1;
	}
	if ((rc = tls_files_check(cfg, err, sizeof(err))) < 0) {
		log_warnx("configuration error: %s", err);
		free(a);
		return CONFIG_EXIT_CODE;
	}
	if (rc > 0)
		log_warnx("%s: TLS peers will refuse it until it is replaced", err);
	a->cfg = cfg;
	so.machine_id = host_machine_id(machine_id, sizeof(machine_id));
	so.n_sinks = export_sink_names(cfg, so.sinks, STORE_MAX_SINKS);
	if (store_open(&a->store, &so, err, sizeof(err)) != 0) {
		log_warnx("cannot open the database: %s", err);
		goto fail;
	}
	/* The export ships what the database commits, from its own threads. */
	a->ecs = (struct ecs_agent){store_agent_uuid(a->store), cfg->agent_id, RA_VERSION,
	    host_name(a->hostname, sizeof(a->hostname)), platform_name()};
	if (cfg->fleet_servers[0] != '\0' &&
	    fleet_open(&a->fleet, cfg, store_agent_uuid(a->store), err, sizeof(err)) != 0) {
		log_warnx("cannot use the fleet's NATS servers: %s", err);
		agent_stop(a);
		return CONFIG_EXIT_CODE;
	}
	if (export_start(&a->exporter, cfg, a->store, &a->ecs, a->fleet, err, sizeof(err)) != 0) {
		log_warnx("cannot start the export: %s", err);
		goto fail;
	}
	store_get_stats(a->store, &ss);
	if (ss.interrupted_at_start > 0)
		log_info("marked %llu connections left open by a previous run as interrupted",
		    (unsigned long long)ss.interrupted_at_start);
	/* The stored policy is in force before anything is redirected to us. */
	if ((a->policy = policy_holder_new(load_policy(cfg->db_path), workers_count(cfg))) ==
	    NULL) {
		log_warnx("out of memory");
		goto fail;
	}
	clock_gettime(CLOCK_REALTIME, &started);
	a->started_at_us = (int64_t)started.tv_sec * 1000000 + started.tv_nsec / 1000;
	deps = (struct rpc_deps){
	    .cfg = cfg,
	    .store = a->store,
	    .policy = a->policy,
	    .exporter = a->exporter,
	    .started_at_us = a->started_at_us,
	};
	if (rpc_core_new(&a->core, &deps, err, sizeof(err)) != 0) {
		log_warnx("cannot start the API: %s", err);
		goto fail;
	}
	/* The fleet's policy, when it can be had in time, is in force before the first connection.
	 */
	if (a->fleet != NULL) {
		struct fleet_hooks hooks = {a, hook_apply, hook_back_to_local, hook_policy_state,
		    hook_health, hook_export_state, hook_call};

		if (fleet_control_new(&a->control, cfg, a->fleet, store_agent_uuid(a->store),
			a->hostname, a->started_at_us, &hooks, err, sizeof(err)) != 0) {
			log_warnx("cannot start fleet control: %s", err);
			goto fail;
		}
		(void)fleet_control_sync(a->control);
	}
	if (workers_start(&a->workers, cfg, a->store, a->policy, err, sizeof(err)) != 0) {
		log_warnx("cannot start the proxy: %s", err);
		goto fail;
	}
	if ((rc = redirect_setup(cfg, &a->redirect, err, sizeof(err))) != 0 ||
	    (rc = redirect_apply_bypass(
		 a->redirect, policy_current(a->policy), err, sizeof(err))) != 0) {
		log_warnx("cannot install the redirect rules: %s", err);
		agent_stop(a);
		/* A bit or port another agent holds is a configuration error. */
		return rc == -EEXIST ? CONFIG_EXIT_CODE : 1;
	}

	deps.workers = a->workers;
	deps.redirect = a->redirect;
	deps.reload = hook_reload;
	deps.reload_ctx = a;
	rpc_core_set_deps(a->core, &deps); /* before any thread but this one uses the core */
	if (rpc_server_start(&a->rpc, a->core, err, sizeof(err)) != 0) {
		log_warnx("cannot start the API: %s", err);
		goto fail;
	}
	if (a->control != NULL && fleet_control_start(a->control, err, sizeof(err)) != 0) {
		log_warnx("%s", err);
		goto fail;
	}
	log_info(
	    "redirect-agent %s started: agent %s (%s), mark 0x%x, listening on port %u, database "
	    "%s, API on %s",
	    RA_VERSION, cfg->agent_id, store_agent_uuid(a->store), cfg->mark,
	    (unsigned)cfg->listen_port, cfg->db_path, cfg->local_socket);
	*out = a;
	return 0;
fail:
	agent_stop(a);
	return 1;
}

int
agent_reload(struct agent *a, struct config *running, struct config *as_loaded,
    const char *config_path, char *msg, size_t msglen)
{
	struct config *next = malloc(sizeof(*next)), *live = malloc(sizeof(*live));
	char names[16][CONFIG_KEY_NAME_MAX], err[1024], done[512] = "";
	size_t n, o = 0;
	int rc = 0, redirect_changed, fleet_again = 0;

	if (next == NULL || live == NULL) {
		free(next);
		free(live);
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&reload_lock);
	if (a->stopping) {
		snprintf(msg, msglen, "the agent is stopping");
		rc = -EBUSY;
		goto out;
	}
	config_defaults(next);
	if (config_path != NULL && config_load_file(next, config_path, err, sizeof(err)) != 0) {
		snprintf(
		    msg, msglen, "configuration error: %s; the running configuration is kept", err);
		rc = -EINVAL;
		goto out;
	}
	/* What may change live, taken from next; anything else must be as it was. */
	*live = *as_loaded;
	live->log_level = next->log_level;
	memcpy(live->redirect_cidrs, next->redirect_cidrs, sizeof(live->redirect_cidrs));
	live->n_redirect_cidrs = next->n_redirect_cidrs;
	memcpy(live->exclude_cidrs, next->exclude_cidrs, sizeof(live->exclude_cidrs));
	live->n_exclude_cidrs = next->n_exclude_cidrs;
	memcpy(live->redirect_ports, next->redirect_ports, sizeof(live->redirect_ports));
	live->n_redirect_ports = next->n_redirect_ports;
	take_limits(live, next);
	memcpy(live->admins, next->admins, sizeof(live->admins));
	live->n_admins = next->n_admins;
	memcpy(live->readers, next->readers, sizeof(live->readers));
	live->n_readers = next->n_readers;
	if (a->fleet != NULL && next->fleet_servers[0] != '\0')
		fleet_take(live, next);
	if ((n = config_diff(live, next, names, 16)) > 0) {
		o = (size_t)snprintf(msg, msglen, "needs a restart:");
		for (size_t i = 0; i < n && i < 16 && o < msglen; i++)
			o += (size_t)snprintf(msg + o, msglen - o, "%s %s", i ? "," : "", names[i]);
		snprintf(msg + (o < msglen ? o : msglen - 1),
		    msglen - (o < msglen ? o : msglen - 1), "; the running configuration is kept");
		rc = -EBUSY;
		goto out;
	}
	/* The certificates are checked before anything changes. */
	if (tls_files_check(next, err, sizeof(err)) != 0 ||
	    rpc_server_reload_certs(a->rpc, err, sizeof(err)) != 0 ||
	    (a->fleet != NULL &&
		fleet_check(next, store_agent_uuid(a->store), err, sizeof(err)) != 0)) {
		snprintf(msg, msglen, "%s; the running configuration is kept", err);
		rc = -EINVAL;
		goto out;
	}
	n = config_diff(as_loaded, next, names, 16);
	redirect_changed = memcmp(live->redirect_cidrs, as_loaded->redirect_cidrs,
			       sizeof(live->redirect_cidrs)) != 0 ||
			   live->n_redirect_cidrs != as_loaded->n_redirect_cidrs ||
			   memcmp(live->exclude_cidrs, as_loaded->exclude_cidrs,
			       sizeof(live->exclude_cidrs)) != 0 ||
			   live->n_exclude_cidrs != as_loaded->n_exclude_cidrs ||
			   memcmp(live->redirect_ports, as_loaded->redirect_ports,
			       sizeof(live->redirect_ports)) != 0 ||
			   live->n_redirect_ports != as_loaded->n_redirect_ports;
	if (redirect_changed && a->redirect != NULL) {
		struct config saved = *running;

		memcpy(
		    running->redirect_cidrs, next->redirect_cidrs, sizeof(running->redirect_cidrs));
		running->n_redirect_cidrs = next->n_redirect_cidrs;
		memcpy(running->exclude_cidrs, next->exclude_cidrs, sizeof(running->exclude_cidrs));
		running->n_exclude_cidrs = next->n_exclude_cidrs;
		memcpy(
		    running->redirect_ports, next->redirect_ports, sizeof(running->redirect_ports));
		running->n_redirect_ports = next->n_redirect_ports;
		if (redirect_reload(a->redirect, policy_current(a->policy), err, sizeof(err)) !=
		    0) {
			*running = saved;
			snprintf(msg, msglen,
			    "cannot install the new redirect rules: %s; the running "
			    "configuration is kept",
			    err);
			rc = -EIO;
			goto out;
		}
	}
	running->log_level = next->log_level;
	log_set_level(next->log_level);
	/* The limits: each part reads its own copy, set here (GetHealth reads
	 * degraded_after_s as is). */
	take_limits(running, next);
	workers_set_limits(a->workers, running);
	rpc_server_set_roles(a->rpc, running, next);
	store_set_retention(a->store, running->retention_days, running->max_rows);
	if (a->core != NULL)
		rpc_core_set_policy_history_keep(a->core, running->policy_history_keep);
	if (a->fleet != NULL) {
		/* The connection first (checked above, so it fails only when a file
		 * changed since), then control, which binds again with its new copy. */
		int remake = control_changed(running, next);

		fleet_again =
		    fleet_reconfigure(a->fleet, next, store_agent_uuid(a->store), err, sizeof(err));
		if (fleet_again < 0) { /* the rest is in force already: say what is not */
			snprintf(msg, msglen,
			    "%s; the [fleet] settings are not changed, the rest is in force", err);
			rc = -EINVAL;
			goto out;
		}
		fleet_take(running, next);
		if (remake && fleet_control_reconfigure(a->control, running) != 0)
			log_warnx(
			    "fleet control: out of memory: it keeps its groups until a restart");
	}
	*as_loaded = *next;
	for (size_t i = 0; i < n && i < 16; i++)
		o += (size_t)snprintf(done + o, sizeof(done) > o ? sizeof(done) - o : 0, "%s %s",
		    i ? "," : "", names[i]);
	snprintf(msg, msglen, "configuration read again: %s%s",
	    n > 0 ? "changed" : "nothing changed", done);
	if (a->rpc != NULL && running->remote_listen[0] != '\0')
		snprintf(msg + strlen(msg), msglen - strlen(msg),
		    "; the remote listener's certificates are read again at its next handshake");
	if (fleet_again > 0)
		snprintf(msg + strlen(msg), msglen - strlen(msg),
		    "; the fleet connection is made again with the new [fleet] settings");
out:
	pthread_mutex_unlock(&reload_lock);
	free(next);
	free(live);
	return rc;
}

int
agent_alive(const struct agent *a, uint64_t max_age_ms)
{
	return workers_alive(a->workers, max_age_ms);
}

void
agent_stop(struct agent *a)
{
	struct proxy_stats_snapshot final;

	if (a == NULL)
		return;
	pthread_mutex_lock(&reload_lock); /* a reload running on an API thread ends first */
	a->stopping = 1;
	pthread_mutex_unlock(&reload_lock);
	fleet_control_free(a->control); /* no console call is running after this */
	rpc_server_stop(a->rpc);
	redirect_teardown(a->redirect);
	if (a->workers != NULL) {
		workers_stop(a->workers, &final);
		log_summary(&final, a->store);
	}
	/* The last events committed, then shipped as far as the sinks take them. */
	if (a->store != NULL)
		(void)store_flush(a->store, EXPORT_STOP_MS);
	export_stop(a->exporter, EXPORT_STOP_MS);
	fleet_close(a->fleet);
	rpc_core_free(a->core);
	store_close(a->store);
	policy_holder_free(a->policy);
	free(a);
}
