/*
 * agent.h: the agent's life cycle, shared by the platform entry points
 * (main.c on Linux, main_win.c on Windows).
 *
 * Start-up order matters: database first (so every connection can be
 * recorded), then the stored policy and the listeners, and only then the
 * redirect rules, so that no redirected connection ever finds nobody
 * listening; the API last. Stop runs the other way: API and rules out first
 * (new connections go direct again), then drain the sessions, then commit
 * the last events.
 */
#ifndef RA_AGENT_H
#define RA_AGENT_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct agent;

/* The command line both entry points share. */
struct agent_args {
	int foreground;          /* --foreground */
	int service;             /* --service (Windows) */
	const char *config_path; /* --config; NULL: the defaults */
};

/*
 * Parse the command line into args and load the configuration into cfg
 * (defaults, then --config FILE). --version, --help, --write-config and
 * --check-config are handled here, as are errors (with usage printed by
 * usage). Returns -1 when the agent should run, else the process's exit
 * status: 0, 2 for bad usage, CONFIG_EXIT_CODE for a bad configuration.
 */
int agent_args_parse(
    int argc, char **argv, struct agent_args *args, struct config *cfg, void (*usage)(FILE *));

/*
 * Start everything for cfg (which must outlive the agent). Returns 0 with
 * *out set, or the process exit status (1, or CONFIG_EXIT_CODE when another
 * agent holds this agent's bit or port) with the reason logged and nothing
 * left running.
 */
int agent_start(struct agent **out, const struct config *cfg);

/*
 * Read the configuration again (SIGHUP, ExecReload, redirectctl reload) and
 * apply what can change live: [agent] log_level; [proxy] redirect_cidrs,
 * exclude_cidrs and redirect_ports (the nft table is replaced in one
 * transaction); the contents of the TLS files of [api] remote_listen (read
 * before the next handshake: open connections keep theirs). Anything else
 * that changed needs a restart: then nothing is applied and msg says which
 * keys. running is the configuration the agent runs with (agent_start's),
 * as_loaded the same before start-up adjusted it (max_sessions to the
 * descriptor limit). Thread-safe. Returns 0 with what changed in msg, or a
 * negative errno (-EINVAL: the file is not valid; -EBUSY: a restart is
 * needed) with the reason; the running configuration is kept then.
 */
int agent_reload(struct agent *a, struct config *running, struct config *as_loaded,
    const char *config_path, char *msg, size_t msglen);

/* What Agent.Reload reloads against (as for agent_reload); without it the method says no. */
void agent_reload_context(
    struct agent *a, struct config *running, struct config *as_loaded, const char *config_path);

/* Whether every event loop turned within the last max_age_ms (a watchdog's question). */
int agent_alive(const struct agent *a, uint64_t max_age_ms);

/* Stop and free everything agent_start started, logging a summary. NULL is ignored. */
void agent_stop(struct agent *a);

#endif
