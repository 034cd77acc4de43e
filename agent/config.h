/*
 * config.h: the agent's configuration: one table of keys (config.c), and
 * everything that comes from it.
 *
 * Each key is one row: section, name, type, the field it fills, bounds, its
 * default (as config text, parsed by the same code as a file) and a line of
 * documentation. From that table come the INI parser, --write-config's
 * checks, the commented template (deploy/agent.conf, --print-config) and
 * the README's configuration table (checked by a unit test).
 *
 * The INI dialect: "[section]" lines, "key = value" lines, comments on lines
 * of their own starting with ';' or '#', or after a value behind " ;".
 * Keys and sections are case-sensitive. A key given twice, a key outside a
 * section, an unknown section or key, a NUL byte, a file that is not a
 * regular file or is larger than CONFIG_FILE_MAX: each is an error naming
 * the file and line. Lines have no length limit of their own.
 *
 * A config is plain data, filled once at start-up and read-only afterwards.
 */
#ifndef RA_CONFIG_H
#define RA_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"
#include "log.h"

#define CONFIG_MAX_CIDRS      256
#define CONFIG_MAX_PORTS      64
#define CONFIG_AGENT_ID_MAX   32
#define CONFIG_SOCKET_MAX     108 /* sizeof(sun_path) */
#define CONFIG_MAX_IDENTITIES 32
#define CONFIG_IDENTITY_MAX   128
#define CONFIG_PATH_MAX       1024
#define CONFIG_FILE_MAX       (1024 * 1024) /* a config file larger than this is refused */
#define CONFIG_URLS_MAX       1024

#define CONFIG_KEY_NAME_MAX 48 /* "[section] key" */

/* Exit status for a configuration error (sysexits.h EX_CONFIG). */
#define CONFIG_EXIT_CODE 78

enum proxy_mode {
	MODE_REDIRECT, /* this host's own outbound connections (nat output) */
	MODE_TPROXY,   /* connections forwarded through this host (a gateway) */
};

/* What the redirection does while the agent is not running. */
enum fail_mode {
	FAIL_OPEN,   /* the rules go with the agent: traffic flows direct, unrecorded */
	FAIL_CLOSED, /* the rules stay: redirected connections are refused until it is back */
};

enum owner_lookup {
	OWNER_AUTO,   /* when a policy rule matches on uid or executable */
	OWNER_ALWAYS, /* for every connection: rows record uid, pid, exe */
	OWNER_NEVER,
};

struct config {
	/* [agent] */
	enum log_level log_level;

	/* [proxy] */
	uint16_t listen_port;
	uint32_t mark;        /* this agent's bit(s); never 0 */
	uint32_t escape_mark; /* marks a loop's way out: never redirected, never tracked */
	enum proxy_mode mode;
	enum fail_mode fail_mode;
	unsigned max_sessions_per_uid; /* one local user's sessions at once; 0: no limit */
	uint32_t system_uid_max;       /* uids up to it: system users (no limit, the reserve) */
	enum owner_lookup owner_lookup;
	uint32_t tproxy_mark;  /* TPROXY: marks intercepted packets for local delivery */
	uint32_t tproxy_table; /* TPROXY: the routing table that delivers them */
	char agent_id[CONFIG_AGENT_ID_MAX + 1]; /* [A-Za-z0-9_-], names the nft table */
	struct port_range redirect_ports[CONFIG_MAX_PORTS];
	size_t n_redirect_ports;
	struct cidr redirect_cidrs[CONFIG_MAX_CIDRS];
	size_t n_redirect_cidrs;
	struct cidr exclude_cidrs[CONFIG_MAX_CIDRS];
	size_t n_exclude_cidrs;
	unsigned connect_timeout_ms;
	unsigned idle_timeout_s; /* 0: no idle timeout */
	unsigned max_sessions;
	unsigned workers;          /* 0: one per CPU the agent may use */
	unsigned drain_timeout_ms; /* how long stop waits for open sessions */

	/* [db] */
	char db_path[CONFIG_PATH_MAX];
	unsigned retention_days;      /* 0: keep rows forever */
	uint64_t max_rows;            /* 0: no row cap */
	unsigned policy_history_keep; /* policy versions kept */
	unsigned queue_size;          /* events the writer queue holds */

	/* [api] */
	char local_socket[CONFIG_SOCKET_MAX];
	char admin_group[33];    /* may use the local socket besides root */
	char remote_listen[128]; /* "" : no remote listener; else HOST:PORT, TLS only */
	char tls_cert[CONFIG_PATH_MAX], tls_key[CONFIG_PATH_MAX], tls_client_ca[CONFIG_PATH_MAX];
	unsigned remote_max_connections; /* remote_listen: connections at once, all peers */
	unsigned remote_max_per_peer;    /* ... from one address */
	/* Client certificate identities (SAN, else CN) and their roles. */
	char admins[CONFIG_MAX_IDENTITIES][CONFIG_IDENTITY_MAX];
	size_t n_admins;
	char readers[CONFIG_MAX_IDENTITIES][CONFIG_IDENTITY_MAX];
	size_t n_readers;

	/* [export]: shipping every connection out, in ECS JSON (fleet/) */
	uint64_t max_backlog;           /* events kept for a sink that has not shipped them */
	int include_open;               /* also ship each connection's opening */
	unsigned degraded_after_s;      /* health degraded while a sink is down this long */
	char ecs_file[CONFIG_PATH_MAX]; /* "": no file sink */
	unsigned ecs_file_max_mb;
	unsigned ecs_file_keep;

	/* [fleet]: the NATS connection the agent dials out on */
	char fleet_servers[CONFIG_URLS_MAX]; /* "": off; nats:// or tls:// URLs, comma-separated */
	char fleet_tls_ca[CONFIG_PATH_MAX], fleet_tls_cert[CONFIG_PATH_MAX];
	char fleet_tls_key[CONFIG_PATH_MAX], fleet_creds[CONFIG_PATH_MAX];
	char fleet_subject_prefix[64];
	char fleet_stream[64];
	int fleet_create_stream;
	char fleet_groups[CONFIG_MAX_IDENTITIES][CONFIG_IDENTITY_MAX]; /* subject tokens */
	size_t n_fleet_groups;
	unsigned fleet_heartbeat_s;   /* the inventory entry is written this often */
	char fleet_agents_bucket[64]; /* KV: the inventory */
	char fleet_policy_bucket[64]; /* KV: policies by group and agent */
	int fleet_local_policy;       /* 1: a local SetPolicy may replace a fleet policy */
	unsigned fleet_policy_wait_s; /* at start, how long the fleet policy is waited for */
};

/*
 * Fill cfg with the embedded defaults: every key's default from the table.
 * The database lives in paths_state_dir(), the local socket in
 * paths_runtime_dir() (paths.h).
 */
void config_defaults(struct config *cfg);

/*
 * Read an INI file over the values already in cfg (normally the defaults).
 * Returns 0, or -1 with err set to "FILE:LINE: [section] key: reason" (or
 * "FILE: reason" when the file cannot be read, or for a check across keys).
 * cfg may be partly changed on failure; the caller keeps its own copy.
 */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* The same for INI text held in memory; name stands in for the file name in errors. */
int config_load_string(
    struct config *cfg, const char *name, const char *text, char *err, size_t errlen);

/*
 * Write a configuration file from "section.key=value" settings (as an
 * installer passes them): each is checked by this parser, empty values are
 * skipped (an installer property left unset), and the file is replaced
 * atomically. Returns 0, or -1 with err set (nothing written).
 */
int config_write_file(const char *path, char *const *settings, int n, char *err, size_t errlen);

/*
 * Print every key, commented out, with its default and its line of
 * documentation: the shipped deploy/agent.conf (redirect-agent --print-config).
 */
void config_print_template(FILE *f);

/* Print the configuration reference as a Markdown table (the README's). */
void config_print_reference(FILE *f);

/*
 * The keys whose values differ between a and b ("[proxy] listen_port"),
 * up to max into out; returns how many differ in all.
 */
size_t config_diff(
    const struct config *a, const struct config *b, char (*out)[CONFIG_KEY_NAME_MAX], size_t max);

#endif
