/*
 * redirect-agent: the daemon's entry point.
 *
 * Start-up order matters: database first (so every connection can be
 * recorded), then the listeners, and only then the redirect rules, so that
 * no redirected connection ever finds nobody listening. Stop runs the other
 * way: rules out first (new connections go direct again), then drain the
 * sessions, then commit the last events.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "policies.h"
#include "policy.h"
#include "redirect.h"
#include "rpc.h"
#include "store.h"
#include "worker.h"

#ifndef AGENT_VERSION
#define AGENT_VERSION "0.0.0-dev"
#endif

static void
usage(FILE *f)
{
	fprintf(f, "usage: redirect-agent [--config FILE] [--foreground] [--check-config]\n"
		   "       redirect-agent --write-config FILE [section.key=value ...]\n"
		   "       redirect-agent --version | --help\n"
		   "\n"
		   "Redirects chosen outbound TCP connections to itself (nftables), relays them\n"
		   "to their original destination and records every connection in SQLite.\n"
		   "\n"
		   "  -c, --config FILE   read settings from FILE (INI); without it the embedded\n"
		   "                      defaults apply (see README)\n"
		   "  -f, --foreground    stay in the foreground and log to stderr\n"
		   "  -n, --check-config  check the configuration and exit (0 good, 78 bad)\n"
		   "  -w, --write-config FILE\n"
		   "                      write FILE from the settings given, each checked\n"
		   "                      (empty values skipped), as installers do; exit\n"
		   "  -V, --version       print the version and exit\n"
		   "  -h, --help          print this help and exit\n");
}

/*
 * Detach from the terminal. The parent waits on a pipe until the child says
 * it is ready (or why it is not), so a failing start still fails the command.
 * Returns the write end of that pipe in the child.
 */
static int
daemonize(void)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		fatal("pipe");
	if ((pid = fork()) < 0)
		fatal("fork");
	if (pid > 0) {
		unsigned char status = 1;

		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(p[0]);
	if (setsid() < 0)
		fatal("setsid");
	if (chdir("/") != 0)
		fatal("chdir /");
	return p[1];
}

static void
daemon_ready(int fd, unsigned char status)
{
	int null;

	if (fd < 0)
		return;
	if (write(fd, &status, 1) != 1)
		log_warn("cannot report start-up status");
	close(fd);
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

/*
 * Each session needs two descriptors, plus a few for the listeners, loops
 * and database: keep the limit and the session cap consistent.
 */
#define FD_RESERVE 64

static void
raise_fd_limit(struct config *cfg)
{
	struct rlimit rl;
	rlim_t need;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open file limit to %llu",
			    (unsigned long long)rl.rlim_max);
	}
	need = (rlim_t)cfg->max_sessions * 2 + FD_RESERVE;
	if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
		unsigned fit =
		    rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)((rl.rlim_cur - FD_RESERVE) / 2) : 1;

		log_warnx("max_sessions %u needs %llu descriptors but the limit is %llu: using %u",
		    cfg->max_sessions, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
		    fit);
		cfg->max_sessions = fit;
	}
}

static void
on_signal(uv_signal_t *sig, int signum)
{
	log_info("received signal %d (%s), stopping", signum, strsignal(signum));
	sd_notify(0, "STOPPING=1");
	uv_stop(sig->loop);
}

/* Feed systemd's watchdog, but only while every event loop is turning. */
static void
on_watchdog(uv_timer_t *t)
{
	struct workers *ws = t->data;
	uint64_t interval_ms = uv_timer_get_repeat(t);

	if (workers_alive(ws, 4 * interval_ms + 2000))
		sd_notify(0, "WATCHDOG=1");
	else
		log_warnx("an event loop is stuck: not feeding the watchdog");
}

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
	sqlite3 *db = NULL;
	char err[512];
	int found;

	if (policies_open(db_path, &db, err, sizeof(err)) != 0) {
		log_warnx("cannot read the stored policy: %s; allowing everything", err);
		return policy_allow_all();
	}
	for (found = policies_latest(db, &row); found == 1;) {
		uint64_t v = row.version;

		p = policy_compile(row.document, (size_t)-1, &probs);
		if (p != NULL) {
			policy_set_version(p, v);
			log_info("policy version %llu in force (%zu rules)", (unsigned long long)v,
			    policy_n_rules(p));
			policy_row_free(&row);
			break;
		}
		log_warnx("stored policy version %llu is not valid for this agent (%s): skipped",
		    (unsigned long long)v, probs.n > 0 ? probs.msg[0] : "?");
		policy_problems_free(&probs);
		policy_row_free(&row);
		found = v > 1 ? policies_get(db, v - 1, &row) : 0;
	}
	if (found < 0)
		log_warnx("cannot read the stored policy: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	if (p == NULL) {
		p = policy_allow_all();
		if (p != NULL && found == 0)
			log_info("no policy set: allowing everything");
	}
	return p;
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
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"check-config", no_argument, NULL, 'n'},
	    {"write-config", required_argument, NULL, 'w'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct config cfg; /* large: not on the stack */
	const char *config_path = NULL, *write_path = NULL;
	int foreground = 0, check_only = 0, ready_fd = -1, c, rc;
	char err[1024];
	struct store *store = NULL;
	struct workers *workers = NULL;
	struct redirect *redirect = NULL;
	struct policy_holder *policy = NULL;
	struct rpc_server *rpc = NULL;
	struct rpc_deps deps;
	struct timespec started;
	struct proxy_stats_snapshot final;
	struct store_options so;
	uv_loop_t *loop;
	uv_signal_t sigint, sigterm;
	uv_timer_t watchdog;
	uint64_t watchdog_usec = 0;

	while ((c = getopt_long(argc, argv, "c:fnw:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'w':
			write_path = optarg;
			break;
		case 'V':
			printf("redirect-agent %s\n", AGENT_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
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

	config_defaults(&cfg);
	if (config_path != NULL && config_load_file(&cfg, config_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "redirect-agent: configuration error: %s\n", err);
		return CONFIG_EXIT_CODE;
	}
	if (check_only) {
		printf("%s: configuration is valid\n",
		    config_path != NULL ? config_path : "(defaults)");
		return 0;
	}

	if (!foreground)
		ready_fd = daemonize();
	log_init("redirect-agent",
	    !foreground
		? LOG_TARGET_SYSLOG
		: (getenv("JOURNAL_STREAM") != NULL ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR),
	    cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Catch SIGTERM/SIGINT before anything starts: one that arrives during
	 * start-up waits in libuv and stops the agent cleanly (rules removed,
	 * sessions drained) as soon as the loop runs.
	 */
	loop = uv_default_loop();
	uv_signal_init(loop, &sigint);
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	raise_fd_limit(&cfg);
	if (cfg.workers == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		cfg.workers = cpus > 0 ? (unsigned)cpus : 1;
	}
	if (cfg.n_redirect_ports == 0 || cfg.n_redirect_cidrs == 0)
		log_warnx(
		    "redirect_ports or redirect_cidrs is empty: no connection will be redirected");

	so = (struct store_options){
	    .path = cfg.db_path,
	    .queue_size = cfg.queue_size,
	    .retention_days = cfg.retention_days,
	    .max_rows = cfg.max_rows,
	};
	if (store_open(&store, &so, err, sizeof(err)) != 0) {
		log_warnx("cannot open the database: %s", err);
		daemon_ready(ready_fd, 1);
		return 1;
	}
	{
		struct store_stats s;

		store_get_stats(store, &s);
		if (s.interrupted_at_start > 0)
			log_info(
			    "marked %llu connections left open by a previous run as interrupted",
			    (unsigned long long)s.interrupted_at_start);
	}
	/* The stored policy is in force before anything is redirected to us. */
	if ((policy = policy_holder_new(load_policy(cfg.db_path), cfg.workers)) == NULL) {
		log_warnx("out of memory");
		store_close(store);
		daemon_ready(ready_fd, 1);
		return 1;
	}
	if (workers_start(&workers, &cfg, store, policy, err, sizeof(err)) != 0) {
		log_warnx("cannot start the proxy: %s", err);
		store_close(store);
		policy_holder_free(policy);
		daemon_ready(ready_fd, 1);
		return 1;
	}
	if ((rc = redirect_setup(&cfg, &redirect, err, sizeof(err))) != 0 ||
	    (rc = redirect_apply_bypass(redirect, policy_current(policy), err, sizeof(err))) != 0) {
		log_warnx("cannot install the redirect rules: %s", err);
		redirect_teardown(redirect);
		workers_stop(workers, NULL);
		store_close(store);
		policy_holder_free(policy);
		daemon_ready(ready_fd, 1);
		/* A bit or port another agent holds is a configuration error. */
		return rc == -EEXIST ? CONFIG_EXIT_CODE : 1;
	}

	clock_gettime(CLOCK_REALTIME, &started);
	deps = (struct rpc_deps){
	    .cfg = &cfg,
	    .workers = workers,
	    .store = store,
	    .redirect = redirect,
	    .policy = policy,
	    .started_at_us = (int64_t)started.tv_sec * 1000000 + started.tv_nsec / 1000,
	};
	if (rpc_server_start(&rpc, &deps, err, sizeof(err)) != 0) {
		log_warnx("cannot start the API: %s", err);
		redirect_teardown(redirect);
		workers_stop(workers, NULL);
		store_close(store);
		policy_holder_free(policy);
		daemon_ready(ready_fd, 1);
		return 1;
	}

	log_info(
	    "redirect-agent %s started: agent %s, mark 0x%x, listening on port %u, database %s, "
	    "API on %s",
	    AGENT_VERSION, cfg.agent_id, cfg.mark, (unsigned)cfg.listen_port, cfg.db_path,
	    cfg.local_socket);
	daemon_ready(ready_fd, 0);
	sd_notifyf(0, "READY=1\nSTATUS=relaying on port %u, API on %s", (unsigned)cfg.listen_port,
	    cfg.local_socket);
	uv_timer_init(loop, &watchdog);
	watchdog.data = workers;
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec >= 2000)
		uv_timer_start(&watchdog, on_watchdog, 0, watchdog_usec / 2000);

	uv_run(loop, UV_RUN_DEFAULT);

	rpc_server_stop(rpc);
	redirect_teardown(redirect);
	workers_stop(workers, &final);
	log_summary(&final, store);
	store_close(store);
	policy_holder_free(policy);
	uv_close((uv_handle_t *)&sigint, NULL);
	uv_close((uv_handle_t *)&sigterm, NULL);
	uv_close((uv_handle_t *)&watchdog, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	uv_loop_close(loop);
	log_info("stopped");
	return 0;
}
