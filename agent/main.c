/*
 * redirect-agent on Linux: options, daemon or foreground, signals, systemd
 * notification and watchdog. The agent itself starts and stops in agent.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "agent.h"
#include "config.h"
#include "log.h"
#include "owner_probe.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: redirect-agent [--config FILE] [--foreground] [--check-config]\n"
		   "       redirect-agent [--config FILE] --cleanup [--force]\n"
		   "       redirect-agent --write-config FILE [section.key=value ...]\n"
		   "       redirect-agent --print-config | --version | --help\n"
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
		   "      --print-config  print every key with its default, commented (the\n"
		   "                      shipped agent.conf), and exit\n"
		   "      --cleanup       remove the redirect rules an agent with this config\n"
		   "                      left when it died (systemd runs it after any exit);\n"
		   "                      with fail_mode = closed they stay, unless --force\n"
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
	rlim_t need, reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open file limit to %llu",
			    (unsigned long long)rl.rlim_max);
	}
	/* The remote API's connections are capped by the kernel (nft.c): reserved too. */
	reserve = FD_RESERVE + (cfg->remote_listen[0] != '\0' ? cfg->remote_max_connections : 0);
	need = (rlim_t)cfg->max_sessions * 2 + reserve;
	if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
		unsigned fit =
		    rl.rlim_cur > 2 * reserve ? (unsigned)((rl.rlim_cur - reserve) / 2) : 1;

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

/* What SIGHUP reloads against: the agent, its configuration as it runs and as loaded. */
struct reload_ctx {
	struct agent *agent;
	struct config *running, *as_loaded;
	const char *path;
};

/* SIGHUP (systemd's ExecReload, logrotate): the configuration again, never a stop. */
static void
on_hup(uv_signal_t *sig, int signum)
{
	struct reload_ctx *r = sig->data;
	char msg[2048];

	(void)signum;
	sd_notify(0, "RELOADING=1");
	if (agent_reload(r->agent, r->running, r->as_loaded, r->path, msg, sizeof(msg)) == 0)
		log_info("SIGHUP: %s", msg);
	else
		log_warnx("SIGHUP: %s", msg);
	sd_notify(0, "READY=1");
}

/* Feed systemd's watchdog, but only while every event loop is turning. */
static void
on_watchdog(uv_timer_t *t)
{
	struct agent *a = t->data;
	uint64_t interval_ms = uv_timer_get_repeat(t);

	if (agent_alive(a, 4 * interval_ms + 2000))
		sd_notify(0, "WATCHDOG=1");
	else
		log_warnx("an event loop is stuck: not feeding the watchdog");
}

int
main(int argc, char **argv)
{
	static struct config cfg, as_loaded; /* large: not on the stack */
	static char config_path[PATH_MAX];
	struct reload_ctx reload;
	struct agent_args args;
	int ready_fd = -1, rc;
	struct agent *agent = NULL;
	uv_loop_t *loop;
	uv_signal_t sigint, sigterm, sighup;
	uv_timer_t watchdog;
	uint64_t watchdog_usec = 0;

	if (argc > 0 && strcmp(argv[0], OWNER_HELPER_ARGV0) == 0)
		return owner_helper_main(argc, argv); /* not an option: owner_probe_linux.c */
	if ((rc = agent_args_parse(argc, argv, &args, &cfg, usage)) >= 0)
		return rc;
	/* Reloads read the file again, after daemonize's chdir("/"): its full path. */
	if (args.config_path != NULL && realpath(args.config_path, config_path) != NULL)
		args.config_path = config_path;
	if (!args.foreground)
		ready_fd = daemonize();
	log_init("redirect-agent",
	    !args.foreground
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
	/* SIGHUP must not kill it (the default): ignored until the agent can reload. */
	signal(SIGHUP, SIG_IGN);
	as_loaded = cfg;
	raise_fd_limit(&cfg);
	if (cfg.n_redirect_ports == 0 || cfg.n_redirect_cidrs == 0)
		log_warnx(
		    "redirect_ports or redirect_cidrs is empty: no connection will be redirected");

	/* Before any thread: the helper takes the capabilities to read other
	 * users' /proc, and this process drops them, helper or not. */
	{
		char err[256];

		if (cfg.mode == MODE_REDIRECT && cfg.owner_lookup != OWNER_NEVER &&
		    owner_helper_start(OWNER_HELPER_CHANNELS, err, sizeof(err)) != 0)
			log_warnx("owner: %s; programs are looked up in the agent itself, which "
				  "cannot read other users' processes",
			    err);
		if (owner_drop_caps(err, sizeof(err)) != 0) {
			log_warnx("%s", err);
			owner_helper_stop();
			daemon_ready(ready_fd, 1);
			return 1;
		}
	}
	if ((rc = agent_start(&agent, &cfg)) != 0) {
		owner_helper_stop();
		daemon_ready(ready_fd, 1);
		return rc;
	}
	daemon_ready(ready_fd, 0);
	reload = (struct reload_ctx){agent, &cfg, &as_loaded, args.config_path};
	agent_reload_context(agent, &cfg, &as_loaded, args.config_path);
	uv_signal_init(loop, &sighup);
	sighup.data = &reload;
	uv_signal_start(&sighup, on_hup, SIGHUP);
	sd_notifyf(0, "READY=1\nSTATUS=relaying on port %u, API on %s", (unsigned)cfg.listen_port,
	    cfg.local_socket);
	uv_timer_init(loop, &watchdog);
	watchdog.data = agent;
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec >= 2000)
		uv_timer_start(&watchdog, on_watchdog, 0, watchdog_usec / 2000);

	uv_run(loop, UV_RUN_DEFAULT);

	agent_stop(agent);
	owner_helper_stop();
	uv_close((uv_handle_t *)&sigint, NULL);
	uv_close((uv_handle_t *)&sigterm, NULL);
	uv_close((uv_handle_t *)&sighup, NULL);
	uv_close((uv_handle_t *)&watchdog, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	uv_loop_close(loop);
	log_info("stopped");
	return 0;
}
