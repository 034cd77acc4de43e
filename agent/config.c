/*
 * config.c: the configuration table, its INI reader and what else comes
 * from the table (config.h).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifndef _WIN32
#include <unistd.h>
#else
#include <io.h>
#endif

#include "err.h"
#include "parse.h"
#include "paths.h"

/* ---- the table ---- */

enum key_type {
	KEY_UINT,       /* an unsigned number in [min, max], decimal or 0x hex */
	KEY_CHOICE,     /* one of choices[]: the field gets its value */
	KEY_WORD,       /* text of the characters in charset, at most size - 1 */
	KEY_PATH,       /* an absolute path (paths_is_absolute) */
	KEY_HOSTPORT,   /* HOST:PORT or [V6]:PORT */
	KEY_PORTS,      /* a list of ports and ranges (count at count_off) */
	KEY_CIDRS,      /* a list of CIDRs (count at count_off) */
	KEY_IDENTITIES, /* a list of certificate identities (count at count_off) */
	KEY_URLS,       /* NATS server URLs: nats:// or tls://, HOST:PORT, comma-separated */
};

struct choice {
	const char *name;
	int value;
};

#define KEY_EMPTY_OK 1u /* an empty value is allowed: none, or off */

struct key {
	const char *section, *name;
	enum key_type type;
	size_t off, size;  /* the field in struct config */
	size_t count_off;  /* lists: their count (a size_t) */
	size_t max_items;  /* lists: at most this many */
	uint64_t min, max; /* KEY_UINT */
	const struct choice *choices;
	const char *charset;                                /* KEY_WORD */
	int (*check)(uint64_t v, char *err, size_t errlen); /* KEY_UINT: one more rule */
	unsigned flags;
	const char *dflt;     /* the default, as config text; NULL: computed (dflt_doc says how) */
	const char *dflt_doc; /* how the default reads in the docs, when not dflt */
	const char *doc;
};

static const struct choice log_levels[] = {{"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},
    {"info", LOG_LEVEL_INFO}, {"debug", LOG_LEVEL_DEBUG}, {NULL, 0}};
static const struct choice modes[] = {
    {"redirect", MODE_REDIRECT}, {"tproxy", MODE_TPROXY}, {NULL, 0}};
static const struct choice fail_modes[] = {{"open", FAIL_OPEN}, {"closed", FAIL_CLOSED}, {NULL, 0}};
static const struct choice yes_no[] = {{"no", 0}, {"yes", 1}, {NULL, 0}};
static const struct choice deny_allow[] = {{"deny", 0}, {"allow", 1}, {NULL, 0}};
static const struct choice owner_lookups[] = {
    {"auto", OWNER_AUTO}, {"always", OWNER_ALWAYS}, {"never", OWNER_NEVER}, {NULL, 0}};

static const char id_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
static const char group_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";
/* A NATS subject's tokens (no wildcards, no blanks) and a JetStream name's letters. */
static const char subject_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";

/* 253-255 are the kernel's default, main and local tables. */
static int
check_table(uint64_t v, char *err, size_t errlen)
{
	if (v >= 253 && v <= 255) {
		snprintf(err, errlen, "%llu is a table the kernel uses itself (253-255)",
		    (unsigned long long)v);
		return -1;
	}
	return 0;
}

#define F(field)     offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define COUNT(field) offsetof(struct config, field)

static const struct key keys[] = {
    {"agent", "log_level", KEY_CHOICE, F(log_level), .choices = log_levels, .dflt = "info",
	.doc = "`error`, `warn`, `info` or `debug` (debug logs every session)"},

    {"proxy", "listen_port", KEY_UINT, F(listen_port), .min = 1, .max = 65535, .dflt = "15001",
	.doc = "the listener's port (on 127.0.0.1 and ::1; on any address in `tproxy` mode)"},
    {"proxy", "mark", KEY_UINT, F(mark), .min = 1, .max = UINT32_MAX, .dflt = "0x1",
	.doc = "this agent's socket mark bit(s); packets carrying them are not redirected"},
    {"proxy", "agent_id", KEY_WORD, F(agent_id), .charset = id_chars, .dflt = "default",
	.doc = "names the nft table `redirect_agent_<agent_id>`; letters, digits, `_`, `-`"},
    {"proxy", "escape_mark", KEY_UINT, F(escape_mark), .min = 1, .max = UINT32_MAX,
	.dflt = "0x80000000",
	.doc = "a loop is relayed once carrying this bit: untracked, so never redirected "
	       "again; must not overlap `mark`"},
    {"proxy", "mode", KEY_CHOICE, F(mode), .choices = modes, .dflt = "redirect",
	.doc = "`redirect`: this host's own outbound connections; `tproxy`: connections "
	       "forwarded through it (a gateway)"},
    {"proxy", "fail_mode", KEY_CHOICE, F(fail_mode), .choices = fail_modes, .dflt = "open",
	.doc = "while the agent is not running (stopped, crashed): `open`, its rules are removed "
	       "and traffic flows direct, unrecorded; `closed`, they stay and redirected "
	       "connections are refused until it is back"},
    {"proxy", "owner_lookup", KEY_CHOICE, F(owner_lookup), .choices = owner_lookups, .dflt = "auto",
	.doc = "look up each client's uid, pid and executable: `auto` (when a policy rule needs "
	       "them), `always`, `never`"},
    {"proxy", "tproxy_mark", KEY_UINT, F(tproxy_mark), .min = 1, .max = UINT32_MAX,
	.dflt = "0x40000000", .doc = "`tproxy` mode: marks intercepted packets for local delivery"},
    {"proxy", "tproxy_table", KEY_UINT, F(tproxy_table), .min = 1, .max = UINT32_MAX,
	.check = check_table, .dflt = "15001",
	.doc = "`tproxy` mode: the routing table used for that (not 253-255)"},
    {"proxy", "redirect_ports", KEY_PORTS, F(redirect_ports), COUNT(n_redirect_ports),
	CONFIG_MAX_PORTS, .flags = KEY_EMPTY_OK, .dflt = "80, 443",
	.doc = "ports and ranges (`8000-8080`) to redirect; may not include `listen_port`"},
    {"proxy", "redirect_cidrs", KEY_CIDRS, F(redirect_cidrs), COUNT(n_redirect_cidrs),
	CONFIG_MAX_CIDRS, .flags = KEY_EMPTY_OK, .dflt = "0.0.0.0/0, ::/0",
	.doc = "destinations to redirect"},
    {"proxy", "exclude_cidrs", KEY_CIDRS, F(exclude_cidrs), COUNT(n_exclude_cidrs),
	CONFIG_MAX_CIDRS, .flags = KEY_EMPTY_OK, .dflt = "127.0.0.0/8, ::1/128",
	.doc = "destinations never redirected"},
    {"proxy", "connect_timeout_ms", KEY_UINT, F(connect_timeout_ms), .min = 1, .max = 600000,
	.dflt = "5000", .doc = "give up connecting to the destination after this"},
    {"proxy", "idle_timeout_s", KEY_UINT, F(idle_timeout_s), .min = 0, .max = 7 * 86400,
	.dflt = "600", .doc = "close a session with no bytes either way for this long; 0 = never"},
    {"proxy", "max_sessions", KEY_UINT, F(max_sessions), .min = 1, .max = 1000000, .dflt = "8192",
	.doc = "open sessions at most (split evenly across workers); beyond it accepting pauses"},
    {"proxy", "workers", KEY_UINT, F(workers), .min = 0, .max = 256, .dflt = "0",
	.doc = "event-loop threads; 0 = one per CPU"},
    {"proxy", "max_sessions_per_uid", KEY_UINT, F(max_sessions_per_uid), .min = 0, .max = 1000000,
	.dflt = "2048",
	.doc = "sessions one local user may hold at once (system users: no limit); beyond, "
	       "refused and counted; and the last eighth of `max_sessions` is for system users; "
	       "0 = neither"},
    {"proxy", "system_uid_max", KEY_UINT, F(system_uid_max), .min = 0, .max = UINT32_MAX,
	.dflt = "999", .doc = "uids up to this are system users (root, services)"},
    {"proxy", "drain_timeout_ms", KEY_UINT, F(drain_timeout_ms), .min = 0, .max = 600000,
	.dflt = "5000", .doc = "how long stop waits for open sessions"},

    {"db", "path", KEY_PATH, F(db_path), .dflt = NULL,
	.dflt_doc = "`$STATE_DIRECTORY/agent.db` or `/var/lib/redirect-agent/agent.db`",
	.doc = "the SQLite file (directory created)"},
    {"db", "retention_days", KEY_UINT, F(retention_days), .min = 0, .max = 36500, .dflt = "30",
	.doc = "prune closed rows older than this; 0 = keep"},
    {"db", "max_rows", KEY_UINT, F(max_rows), .min = 0, .max = UINT64_C(1) << 40, .dflt = "1000000",
	.doc = "keep at most this many rows (newest); 0 = no cap"},
    {"db", "policy_history_keep", KEY_UINT, F(policy_history_keep), .min = 1, .max = 100000,
	.dflt = "100", .doc = "policy versions kept (the newest); older ones are pruned"},
    {"db", "queue_size", KEY_UINT, F(queue_size), .min = 16, .max = 1u << 22, .dflt = "65536",
	.doc = "events the writer queue holds before it drops (and counts)"},

    {"api", "local_socket", KEY_PATH, F(local_socket), .dflt = NULL,
	.dflt_doc = "`$RUNTIME_DIRECTORY/agent.sock` or `/run/redirect-agent/agent.sock`",
	.doc = "the local API socket (mode 0660)"},
    {"api", "admin_group", KEY_WORD, F(admin_group), .charset = group_chars,
	.dflt = "redirect-admin",
	.doc = "group owning the socket; its members (and root) may call the API"},
    {"api", "remote_listen", KEY_HOSTPORT, F(remote_listen), .flags = KEY_EMPTY_OK, .dflt = "",
	.doc = "`HOST:PORT` for the remote console API: TLS with client certificates only; "
	       "empty: off"},
    {"api", "tls_cert", KEY_PATH, F(tls_cert), .dflt = "",
	.doc = "the agent's certificate chain (PEM); required with `remote_listen`"},
    {"api", "tls_key", KEY_PATH, F(tls_key), .dflt = "",
	.doc = "the agent's private key (PEM); required with `remote_listen`"},
    {"api", "tls_client_ca", KEY_PATH, F(tls_client_ca), .dflt = "",
	.doc = "CA (PEM) that client certificates must chain to; required with `remote_listen`"},
    {"api", "remote_max_connections", KEY_UINT, F(remote_max_connections), .min = 1, .max = 4096,
	.dflt = "128",
	.doc = "`remote_listen`: connections at once from all peers (the kernel refuses more, "
	       "before TLS)"},
    {"api", "remote_max_per_peer", KEY_UINT, F(remote_max_per_peer), .min = 1, .max = 4096,
	.dflt = "16", .doc = "`remote_listen`: connections at once from one address"},
    {"api", "admins", KEY_IDENTITIES, F(admins), COUNT(n_admins), CONFIG_MAX_IDENTITIES,
	.flags = KEY_EMPTY_OK, .dflt = "",
	.doc = "client certificate identities (SAN, else CN) with the `admin` role"},
    {"api", "readers", KEY_IDENTITIES, F(readers), COUNT(n_readers), CONFIG_MAX_IDENTITIES,
	.flags = KEY_EMPTY_OK, .dflt = "",
	.doc = "client certificate identities with the `reader` role"},

    {"export", "max_backlog", KEY_UINT, F(max_backlog), .min = 1000, .max = UINT64_C(1) << 32,
	.dflt = "1000000",
	.doc = "events kept for a sink that has not shipped them; past it the oldest are "
	       "dropped and counted (`export_lost`)"},
    {"export", "include_open", KEY_CHOICE, F(include_open), .choices = yes_no, .dflt = "no",
	.doc = "`yes`: also ship each connection's opening, not only its final state"},
    {"export", "degraded_after_s", KEY_UINT, F(degraded_after_s), .min = 1, .max = 86400,
	.dflt = "60", .doc = "health turns degraded while a sink cannot ship for this long"},
    {"export", "ecs_file", KEY_PATH, F(ecs_file), .dflt = "",
	.doc = "write every record as a line of ECS JSON to this file; empty: off"},
    {"export", "ecs_file_max_mb", KEY_UINT, F(ecs_file_max_mb), .min = 1, .max = 100000,
	.dflt = "100", .doc = "rotate `ecs_file` when it reaches this size (MiB)"},
    {"export", "ecs_file_keep", KEY_UINT, F(ecs_file_keep), .min = 1, .max = 1000, .dflt = "5",
	.doc = "rotated files kept: `ecs_file.1` (newest) to `ecs_file.N`"},

    {"fleet", "servers", KEY_URLS, F(fleet_servers), .flags = KEY_EMPTY_OK, .dflt = "",
	.doc = "NATS servers, `nats://HOST:PORT` or `tls://HOST:PORT` (a `user:password@` "
	       "is allowed; prefer `creds`), comma-separated; empty: no fleet connection"},
    {"fleet", "tls_ca", KEY_PATH, F(fleet_tls_ca), .dflt = "",
	.doc = "CA (PEM) the NATS server's certificate must chain to"},
    {"fleet", "tls_cert", KEY_PATH, F(fleet_tls_cert), .dflt = "",
	.doc = "this agent's client certificate (PEM), when the server asks for one"},
    {"fleet", "tls_key", KEY_PATH, F(fleet_tls_key), .dflt = "",
	.doc = "the key (PEM) of `tls_cert`"},
    {"fleet", "creds", KEY_PATH, F(fleet_creds), .dflt = "",
	.doc = "a NATS `.creds` file (user JWT and NKey seed)"},
    {"fleet", "subject_prefix", KEY_WORD, F(fleet_subject_prefix), .charset = subject_chars,
	.dflt = "redirect", .doc = "records go to `<prefix>.conn.<agent uuid>`"},
    {"fleet", "stream", KEY_WORD, F(fleet_stream), .charset = id_chars, .dflt = "REDIRECT_CONN",
	.doc = "the JetStream stream that takes the records"},
    {"fleet", "create_stream", KEY_CHOICE, F(fleet_create_stream), .choices = yes_no, .dflt = "no",
	.doc = "`yes`: create the stream and the two buckets if missing (else the operator "
	       "makes them, and the agent needs the rights of `deploy/nats/` only)"},
    {"fleet", "groups", KEY_IDENTITIES, F(fleet_groups), COUNT(n_fleet_groups),
	CONFIG_MAX_IDENTITIES, .flags = KEY_EMPTY_OK, .dflt = "",
	.doc = "this agent's groups, in order: the first with a policy key applies "
	       "(letters, digits, `_`, `-`)"},
    {"fleet", "heartbeat_s", KEY_UINT, F(fleet_heartbeat_s), .min = 1, .max = 3600, .dflt = "15",
	.doc = "the inventory entry is written this often (and at once on a change)"},
    {"fleet", "agents_bucket", KEY_WORD, F(fleet_agents_bucket), .charset = id_chars,
	.dflt = "REDIRECT_AGENTS", .doc = "the key-value bucket of the inventory"},
    {"fleet", "policy_bucket", KEY_WORD, F(fleet_policy_bucket), .charset = id_chars,
	.dflt = "REDIRECT_POLICY",
	.doc = "the key-value bucket of policies: `group.<name>`, `agent.<uuid>`"},
    {"fleet", "local_policy", KEY_CHOICE, F(fleet_local_policy), .choices = deny_allow,
	.dflt = "deny",
	.doc = "`allow`: a local SetPolicy may replace a policy from the fleet; `deny`: refused "
	       "while a fleet key is in force"},
    {"fleet", "policy_wait_s", KEY_UINT, F(fleet_policy_wait_s), .min = 0, .max = 300, .dflt = "5",
	.doc = "at start, how long the fleet's policy is waited for before connections are "
	       "taken (then the last one applied)"},
};

#undef F
#undef COUNT

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* ---- setting one key from its text ---- */

static void
put_uint(void *field, size_t size, uint64_t v)
{
	switch (size) {
	case 1: {
		uint8_t x = (uint8_t)v;
		memcpy(field, &x, 1);
		break;
	}
	case 2: {
		uint16_t x = (uint16_t)v;
		memcpy(field, &x, 2);
		break;
	}
	case 4: {
		uint32_t x = (uint32_t)v;
		memcpy(field, &x, 4);
		break;
	}
	default:
		memcpy(field, &v, 8);
		break;
	}
}

/* A list of certificate identities, separated by commas and/or blanks. */
static int
parse_identities(
    const char *v, char out[][CONFIG_IDENTITY_MAX], size_t *n, char *err, size_t errlen)
{
	size_t count = 0;

	while (*v != '\0') {
		size_t len;

		while (*v == ',' || isspace((unsigned char)*v))
			v++;
		if (*v == '\0')
			break;
		len = strcspn(v, ", \t");
		if (len >= CONFIG_IDENTITY_MAX) {
			snprintf(err, errlen, "identity longer than %d characters",
			    CONFIG_IDENTITY_MAX - 1);
			return -1;
		}
		if (count == CONFIG_MAX_IDENTITIES) {
			snprintf(err, errlen, "more than %d identities", CONFIG_MAX_IDENTITIES);
			return -1;
		}
		memcpy(out[count], v, len);
		out[count++][len] = '\0';
		v += len;
	}
	*n = count;
	return 0;
}

/* Each of a comma-separated list is nats://HOST:PORT or tls://HOST:PORT. */
static int
check_urls(const char *v, char *err, size_t errlen)
{
	while (*v != '\0') {
		char one[256], host[200];
		const char *hp;
		size_t len;
		uint16_t port;

		while (*v == ',' || isspace((unsigned char)*v))
			v++;
		if (*v == '\0')
			break;
		len = strcspn(v, ", \t");
		if (len >= sizeof(one)) {
			snprintf(
			    err, errlen, "a server URL longer than %zu bytes", sizeof(one) - 1);
			return -1;
		}
		memcpy(one, v, len);
		one[len] = '\0';
		v += len;
		if (strncmp(one, "nats://", 7) == 0)
			hp = one + 7;
		else if (strncmp(one, "tls://", 6) == 0)
			hp = one + 6;
		else
			hp = NULL;
		if (hp != NULL && strrchr(hp, '@') != NULL) /* user:password@ or token@ */
			hp = strrchr(hp, '@') + 1;
		if (hp == NULL || parse_host_port(hp, host, sizeof(host), &port) != 0) {
			snprintf(err, errlen,
			    "a server is not nats://HOST:PORT or tls://HOST:PORT (e.g. "
			    "tls://nats.corp:4222)");
			return -1;
		}
	}
	return 0;
}

static int
set_key(struct config *cfg, const struct key *k, const char *v, char *err, size_t errlen)
{
	char *field = (char *)cfg + k->off;
	size_t *count = (size_t *)((char *)cfg + k->count_off);
	size_t n = strlen(v);
	uint64_t x;
	int r;

	if (n == 0 && !(k->flags & KEY_EMPTY_OK) && k->type != KEY_PATH) {
		snprintf(err, errlen, "a value is required");
		return -1;
	}
	switch (k->type) {
	case KEY_UINT:
		if ((r = parse_u64(v, 1, k->min, k->max, &x)) != 0) {
			if (r == -ERANGE)
				snprintf(err, errlen, "%s is out of range (%llu to %llu)", v,
				    (unsigned long long)k->min, (unsigned long long)k->max);
			else
				snprintf(err, errlen, "'%s' is not a number", v);
			return -1;
		}
		if (k->check != NULL && k->check(x, err, errlen) != 0)
			return -1;
		put_uint(field, k->size, x);
		return 0;
	case KEY_CHOICE: {
		char names[128];
		size_t off = 0;

		for (const struct choice *c = k->choices; c->name != NULL; c++) {
			if (strcmp(c->name, v) == 0) {
				memcpy(field, &c->value, sizeof(int));
				return 0;
			}
			off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
			    c == k->choices ? "" : ", ", c->name);
		}
		snprintf(err, errlen, "'%s' is not one of %s", v, names);
		return -1;
	}
	case KEY_WORD:
		if (n >= k->size || strspn(v, k->charset) != n) {
			snprintf(err, errlen, "must be 1 to %zu characters, %s: '%s'", k->size - 1,
			    k->charset == id_chars ? "letters, digits, '_' and '-'"
						   : "letters, digits, '_', '-' and '.'",
			    v);
			return -1;
		}
		memcpy(field, v, n + 1);
		return 0;
	case KEY_PATH:
		if (n == 0 && k->dflt != NULL && k->dflt[0] == '\0') {
			field[0] = '\0';
			return 0;
		}
		if (n == 0) {
			snprintf(err, errlen, "a value is required");
			return -1;
		}
		if (!paths_is_absolute(v)) {
			snprintf(err, errlen, "'%s' is not an absolute path", v);
			return -1;
		}
		if (n >= k->size) {
			snprintf(err, errlen, "path longer than %zu bytes", k->size - 1);
			return -1;
		}
		memcpy(field, v, n + 1);
		return 0;
	case KEY_HOSTPORT: {
		char host[128];
		uint16_t port;

		if (n == 0) {
			field[0] = '\0';
			return 0;
		}
		if (n >= k->size || parse_host_port(v, host, sizeof(host), &port) != 0) {
			snprintf(err, errlen,
			    "'%s' is not HOST:PORT (e.g. 0.0.0.0:50051, [::]:50051)", v);
			return -1;
		}
		memcpy(field, v, n + 1);
		return 0;
	}
	case KEY_PORTS:
		return addr_parse_port_list(v, (struct port_range *)(void *)field, k->max_items,
			   count, err, errlen) == 0
			   ? 0
			   : -1;
	case KEY_CIDRS:
		return addr_parse_cidr_list(
			   v, (struct cidr *)(void *)field, k->max_items, count, err, errlen) == 0
			   ? 0
			   : -1;
	case KEY_IDENTITIES:
		return parse_identities(
		    v, (char(*)[CONFIG_IDENTITY_MAX])(void *)field, count, err, errlen);
	case KEY_URLS:
		if (n >= k->size) {
			snprintf(err, errlen, "longer than %zu bytes", k->size - 1);
			return -1;
		}
		if (check_urls(v, err, errlen) != 0)
			return -1;
		memcpy(field, v, n + 1);
		return 0;
	}
	return -1;
}

static const struct key *
find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int
known_section(const char *section)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return 1;
	return 0;
}

void
config_defaults(struct config *cfg)
{
	char dir[CONFIG_PATH_MAX], err[256];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].dflt != NULL &&
		    set_key(cfg, &keys[i], keys[i].dflt, err, sizeof(err)) != 0)
			fatalx("config: the default of [%s] %s does not parse: %s", keys[i].section,
			    keys[i].name, err);
	paths_join(
	    cfg->db_path, sizeof(cfg->db_path), paths_state_dir(dir, sizeof(dir)), "agent.db");
	paths_join(cfg->local_socket, sizeof(cfg->local_socket),
	    paths_runtime_dir(dir, sizeof(dir)), "agent.sock");
}

/* ---- the INI reader ---- */

struct ini {
	struct config *cfg;
	const char *name; /* the file, for messages */
	char *err;
	size_t errlen;
	char section[64];
	int section_known;
	unsigned char seen[N_KEYS]; /* set already in this text: ... */
	int seen_line[N_KEYS];      /* ... on this line */
};

static int LOG_PRINTF(3, 4) ini_fail(struct ini *p, int line, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s:%d: %s", p->name, line, what);
	return -1;
}

static char *
trim(char *s, char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* One line: [section], key = value, a comment or nothing. */
static int
ini_line(struct ini *p, char *line, int lineno)
{
	char *end = line + strlen(line), *s, *eq, *key, *value, *c;
	char why[384];
	const struct key *k;

	s = trim(line, end);
	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[') {
		char *close = strchr(s, ']');

		if (close == NULL || close[1] != '\0' || close == s + 1 ||
		    (size_t)(close - s - 1) >= sizeof(p->section))
			return ini_fail(
			    p, lineno, "syntax error (expected [section] or key = value)");
		*close = '\0';
		snprintf(p->section, sizeof(p->section), "%s", s + 1);
		if (!known_section(p->section))
			return ini_fail(p, lineno, "[%s]: unknown section", p->section);
		p->section_known = 1;
		return 0;
	}
	if ((eq = strchr(s, '=')) == NULL || eq == s)
		return ini_fail(p, lineno, "syntax error (expected [section] or key = value)");
	key = trim(s, eq);
	value = eq + 1;
	/* An inline comment starts at a ';' after a blank. */
	for (c = value; (c = strchr(c, ';')) != NULL; c++) {
		if (c > value && isspace((unsigned char)c[-1])) {
			*c = '\0';
			break;
		}
	}
	value = trim(value, value + strlen(value));
	if (!p->section_known)
		return ini_fail(p, lineno, "%s: a key before any [section]", key);
	if ((k = find_key(p->section, key)) == NULL)
		return ini_fail(p, lineno, "[%s] %s: unknown key", p->section, key);
	if (p->seen[k - keys])
		return ini_fail(p, lineno, "[%s] %s: set twice (first on line %d)", p->section, key,
		    p->seen_line[k - keys]);
	p->seen[k - keys] = 1;
	p->seen_line[k - keys] = lineno;
	if (set_key(p->cfg, k, value, why, sizeof(why)) != 0)
		return ini_fail(p, lineno, "[%s] %s: %s", p->section, key, why);
	return 0;
}

/* Cross-key checks that no single key can make. */
static int
config_check(const struct config *cfg, const char *name, char *err, size_t errlen)
{
	/* There is no insecure remote listener: TLS with client certificates, or none. */
	if (cfg->remote_listen[0] != '\0' && (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0' ||
						 cfg->tls_client_ca[0] == '\0')) {
		snprintf(err, errlen,
		    "%s: [api] remote_listen: needs tls_cert, tls_key and tls_client_ca (the "
		    "remote API is TLS with client certificates only)",
		    name);
		return -1;
	}
	/* The marks are one word shared by every cooperating proxy: each bit
	 * must mean one thing. */
	if ((cfg->mark & cfg->escape_mark) != 0 ||
	    (cfg->mode == MODE_TPROXY &&
		((cfg->tproxy_mark & (cfg->mark | cfg->escape_mark)) != 0))) {
		snprintf(err, errlen,
		    "%s: [proxy] mark 0x%x, escape_mark 0x%x%s must not share bits", name,
		    cfg->mark, cfg->escape_mark,
		    cfg->mode == MODE_TPROXY ? " and tproxy_mark" : "");
		return -1;
	}
	if ((cfg->fleet_tls_cert[0] != '\0') != (cfg->fleet_tls_key[0] != '\0')) {
		snprintf(err, errlen, "%s: [fleet] tls_cert and tls_key go together", name);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_fleet_groups; i++) {
		const char *g = cfg->fleet_groups[i];

		if (g[strspn(
			g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")] !=
		    '\0') {
			snprintf(err, errlen,
			    "%s: [fleet] groups: '%s' is not a group name (letters, digits, '_', "
			    "'-')",
			    name, g);
			return -1;
		}
	}
	if (cfg->fleet_subject_prefix[0] == '.' ||
	    cfg->fleet_subject_prefix[strlen(cfg->fleet_subject_prefix) - 1] == '.' ||
	    strstr(cfg->fleet_subject_prefix, "..") != NULL) {
		snprintf(err, errlen,
		    "%s: [fleet] subject_prefix: '%s' is not a subject (tokens "
		    "separated by single dots)",
		    name, cfg->fleet_subject_prefix);
		return -1;
	}
	if (cfg->n_redirect_ports == 0 || cfg->n_redirect_cidrs == 0)
		return 0; /* allowed: the agent then records nothing; main warns */
	for (size_t i = 0; i < cfg->n_redirect_ports; i++) {
		const struct port_range *pr = &cfg->redirect_ports[i];

		if (cfg->listen_port >= pr->lo && cfg->listen_port <= pr->hi) {
			snprintf(err, errlen,
			    "%s: [proxy] redirect_ports: includes listen_port %u, which would "
			    "redirect the agent's listener to itself",
			    name, (unsigned)cfg->listen_port);
			return -1;
		}
	}
	return 0;
}

/* Parse len bytes of text (modified in place: lines are cut at their ends). */
static int
ini_parse(struct config *cfg, const char *name, char *text, size_t len, char *err, size_t errlen)
{
	struct ini p = {.cfg = cfg, .name = name, .err = err, .errlen = errlen};
	char *line = text, *end = text + len;
	int lineno = 1;

	if (memchr(text, '\0', len) != NULL) {
		size_t at = (size_t)((char *)memchr(text, '\0', len) - text);

		for (size_t i = 0; i < at; i++)
			lineno += text[i] == '\n';
		return ini_fail(&p, lineno, "a NUL byte: not a text file");
	}
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) /* a UTF-8 byte order mark */
		line += 3;
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *stop = nl != NULL ? nl : end;

		*stop = '\0';
		if (stop > line && stop[-1] == '\r')
			stop[-1] = '\0';
		if (ini_line(&p, line, lineno) != 0)
			return -1;
		line = stop + 1;
		lineno++;
	}
	return config_check(cfg, name, err, errlen);
}

int
config_load_string(struct config *cfg, const char *name, const char *text, char *err, size_t errlen)
{
	size_t len = strlen(text);
	char *copy;
	int rc;

	if (len > CONFIG_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", name, CONFIG_FILE_MAX);
		return -1;
	}
	if ((copy = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	memcpy(copy, text, len + 1);
	rc = ini_parse(cfg, name, copy, len, err, errlen);
	free(copy);
	return rc;
}

/*
 * The whole of a regular file, at most CONFIG_FILE_MAX bytes: a device
 * (/dev/zero), a directory or a FIFO is refused before anything is read.
 */
static char *
read_config_file(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd;

#ifdef _WIN32
	fd = open(path, O_RDONLY | O_BINARY);
#else
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
#endif
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, err_str(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, err_str(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	/* Read to the end, bounded: the file may have grown since fstat. */
	for (;;) {
		long n = (long)read(fd, buf + got, (size_t)st.st_size + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, err_str(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > (size_t)st.st_size) {
			snprintf(err, errlen, "%s: changed while being read", path);
			goto fail;
		}
	}
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

int
config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	size_t len;
	char *text = read_config_file(path, &len, err, errlen);
	int rc;

	if (text == NULL)
		return -1;
	rc = ini_parse(cfg, path, text, len, err, errlen);
	free(text);
	return rc;
}

/* ---- writing ---- */

int
config_write_file(const char *path, char *const *settings, int n, char *err, size_t errlen)
{
	static struct config scratch; /* large: not on the stack */
	size_t cap = 256, len = 0;
	char *text = malloc(cap), *tmp = NULL;
	FILE *f = NULL;
	int rc = -1;

	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	len = (size_t)snprintf(text, cap, "; written by redirect-agent --write-config\n");
	/* One [section] line per setting keeps the text simple; sections may reopen. */
	for (int i = 0; i < n; i++) {
		const char *dot = strchr(settings[i], '.'), *eq = strchr(settings[i], '=');
		size_t need;

		if (dot == NULL || eq == NULL || dot > eq) {
			snprintf(err, errlen, "'%s' is not section.key=value", settings[i]);
			goto out;
		}
		if (eq[1] == '\0')
			continue;
		if (strchr(eq + 1, '\n') != NULL || strchr(eq + 1, '\r') != NULL) {
			snprintf(err, errlen, "%.*s: a value may not span lines",
			    (int)(eq - settings[i]), settings[i]);
			goto out;
		}
		need = len + strlen(settings[i]) + 16;
		if (need > cap) {
			char *bigger = realloc(text, cap = need * 2);

			if (bigger == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			text = bigger;
		}
		len += (size_t)snprintf(text + len, cap - len, "[%.*s]\n%.*s = %s\n",
		    (int)(dot - settings[i]), settings[i], (int)(eq - dot - 1), dot + 1, eq + 1);
	}
	config_defaults(&scratch);
	if (config_load_string(&scratch, path, text, err, errlen) != 0)
		goto out;
	if ((tmp = malloc(strlen(path) + 8)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(tmp, strlen(path) + 8, "%s.new", path);
	if ((f = fopen(tmp, "we")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, err_str(errno));
		goto out;
	}
	if (fputs(text, f) == EOF) {
		snprintf(err, errlen, "%s: %s", tmp, err_str(errno));
		fclose(f);
		(void)remove(tmp);
		goto out;
	}
	if (fclose(f) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, err_str(errno));
		(void)remove(tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, err_str(errno));
		(void)remove(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	free(text);
	return rc;
}

size_t
config_diff(
    const struct config *a, const struct config *b, char (*out)[CONFIG_KEY_NAME_MAX], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		int differ =
		    memcmp((const char *)a + k->off, (const char *)b + k->off, k->size) != 0;

		if (k->max_items > 0)
			differ |= memcmp((const char *)a + k->count_off,
				      (const char *)b + k->count_off, sizeof(size_t)) != 0;
		if (differ && n < max)
			snprintf(out[n++], CONFIG_KEY_NAME_MAX, "[%s] %s", k->section, k->name);
	}
	return n;
}

/* ---- documentation from the table ---- */

/* The doc line without Markdown's backquotes, for the plain-text template. */
static void
print_plain(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != '`')
			fputc(*s, f);
}

void
config_print_template(FILE *f)
{
	const char *section = "";

	fputs("; redirect-agent's configuration (/etc/redirect-agent/agent.conf).\n"
	      "; Every key is shown commented out with its default; uncomment to change it.\n"
	      "; For list keys an empty value means \"none\". Generated from the agent's own\n"
	      "; table: redirect-agent --print-config.\n",
	    f);
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];

		if (strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(f, "\n[%s]\n", section);
		}
		fputs("; ", f);
		print_plain(f, k->doc);
		fputc('\n', f);
		if (k->dflt != NULL) {
			fprintf(f, ";%s = %s\n", k->name, k->dflt);
		} else {
			fprintf(f, ";%s = (default: ", k->name);
			print_plain(f, k->dflt_doc);
			fputs(")\n", f);
		}
	}
}

void
config_print_reference(FILE *f)
{
	fputs("| key | default | meaning |\n| --- | --- | --- |\n", f);
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];

		fprintf(f, "| `[%s] %s` | ", k->section, k->name);
		if (k->dflt == NULL)
			fputs(k->dflt_doc, f);
		else if (k->dflt[0] == '\0')
			fputs("(empty)", f);
		else
			fprintf(f, "`%s`", k->dflt);
		fprintf(f, " | %s |\n", k->doc);
	}
}
