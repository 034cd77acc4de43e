/*
 * redirect-agent on Windows: options, then either the service (--service,
 * as the MSI installs it: the Service Control Manager starts and stops it,
 * service_win.c) or a console run (--foreground: Ctrl+C stops it). The
 * agent itself starts and stops in agent.c.
 *
 * Linked and run under wine; never on Windows: see deploy/windows/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "service_win.h"

struct run {
	struct config *cfg;
	struct config *as_loaded; /* what a reload compares the file with */
	const char *config_path;  /* absolute: the service's directory is System32 */
	int service;
	uv_loop_t *loop;
	uv_async_t stop; /* from the SCM's thread: end the loop */
	uv_signal_t sigint;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: redirect-agent [--config FILE] (--service | --foreground) [--check-config]\n"
	    "       redirect-agent --stop-service\n"
	    "       redirect-agent --write-config FILE [section.key=value ...]\n"
	    "       redirect-agent --print-config | --version | --help\n"
	    "\n"
	    "Relays the TCP connections the WFP callout redirects to it to their original\n"
	    "destination, passing their redirect records on, and records every connection\n"
	    "in SQLite.\n"
	    "\n"
	    "  -c, --config FILE   read settings from FILE (INI); without it the embedded\n"
	    "                      defaults apply (see README)\n"
	    "  -s, --service       run under the Service Control Manager (as installed)\n"
	    "  -f, --foreground    run in this console until Ctrl+C\n"
	    "      --stop-service  stop the installed service and wait until its process\n"
	    "                      has exited (the installer, before it removes files)\n"
	    "  -n, --check-config  check the configuration and exit (0 good, 78 bad)\n"
	    "  -w, --write-config FILE\n"
	    "                      write FILE from the settings given, each checked\n"
	    "                      (empty values skipped), as the installer does; exit\n"
	    "      --print-config  print every key with its default, commented (the\n"
	    "                      shipped agent.conf), and exit\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n");
}

static void
on_stop(uv_async_t *a)
{
	log_info("stop requested");
	uv_stop(a->loop);
}

static void
on_sigint(uv_signal_t *s, int signum)
{
	(void)signum;
	log_info("Ctrl+C: stopping");
	uv_stop(s->loop);
}

/* service_ops.stop: runs on the SCM's thread. */
static void
request_stop(void *arg)
{
	struct run *r = arg;

	uv_async_send(&r->stop);
}

/* service_ops.run, and the console run: start, serve until stopped, stop. */
static int
run_agent(void *arg)
{
	struct run *r = arg;
	struct agent *agent;
	int rc;

	if (r->service)
		log_init_stream(service_log(), r->cfg->log_level);
	if ((rc = agent_start(&agent, r->cfg)) != 0) {
		if (r->service)
			log_init_stream(NULL, r->cfg->log_level);
		return rc;
	}
	/* redirectctl reload (Agent.Reload): Windows has no SIGHUP. */
	agent_reload_context(agent, r->cfg, r->as_loaded, r->config_path);
	if (r->service)
		service_ready();
	uv_run(r->loop, UV_RUN_DEFAULT);
	agent_stop(agent);
	log_info("stopped");
	if (r->service)
		log_init_stream(NULL, r->cfg->log_level); /* the SCM side closes the file */
	return 0;
}

int
main(int argc, char **argv)
{
	static struct config cfg, as_loaded; /* large: not on the stack */
	static char config_path[MAX_PATH];
	static struct run r;
	struct agent_args args;
	struct service_ops ops = {run_agent, request_stop, &r};
	WSADATA wsa;
	int rc;

	if (argc == 2 && strcmp(argv[1], "--stop-service") == 0)
		return service_stop_and_wait(SERVICE_NAME, 2 * SERVICE_STOP_HINT_MS) == 0 ? 0 : 1;
	if ((rc = agent_args_parse(argc, argv, &args, &cfg, usage)) >= 0)
		return rc;
	if (args.service == args.foreground) {
		fprintf(stderr, "redirect-agent: give --service or --foreground\n");
		usage(stderr);
		return 2;
	}
	log_init("redirect-agent", LOG_TARGET_STDERR, cfg.log_level);
	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
		fprintf(stderr, "redirect-agent: cannot start winsock\n");
		return 1;
	}

	r.cfg = &cfg;
	as_loaded = cfg;
	r.as_loaded = &as_loaded;
	r.config_path = args.config_path != NULL && _fullpath(config_path, args.config_path,
							sizeof(config_path)) != NULL
			    ? config_path
			    : args.config_path;
	r.service = args.service;
	r.loop = uv_default_loop();
	/* Ready before the SCM can ask us to stop. */
	uv_async_init(r.loop, &r.stop, on_stop);
	if (args.service) {
		DWORD e = service_start(SERVICE_NAME, &ops);

		/*
		 * STOPPED is reported: everything was closed and flushed before it.
		 * Leave at once: an installer waiting for the stop deletes this
		 * executable next, and cannot while the process lingers (under
		 * wine's msiexec, one uninstall in five left it behind).
		 */
		if (e == 0)
			ExitProcess(0);
		rc = 0;
		if (e != 0) {
			fprintf(stderr,
			    "redirect-agent: cannot reach the Service Control Manager (error %lu);"
			    " use --foreground in a console\n",
			    (unsigned long)e);
			rc = 1;
		}
	} else {
		uv_signal_init(r.loop, &r.sigint);
		uv_signal_start(&r.sigint, on_sigint, SIGINT);
		rc = run_agent(&r);
		uv_close((uv_handle_t *)&r.sigint, NULL);
	}
	uv_close((uv_handle_t *)&r.stop, NULL);
	uv_run(r.loop, UV_RUN_NOWAIT);
	uv_loop_close(r.loop);
	WSACleanup();
	return rc;
}
