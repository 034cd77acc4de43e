#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef _WIN32
#include "service_win.h"
#endif

#define DEFAULT_STATE_DIR   "/var/lib/redirect-agent"
#define DEFAULT_RUNTIME_DIR "/run/redirect-agent"

#ifdef _WIN32
/* Everything in the agent's data folder (service_data_dir), whose access list it sets. */
static void
dir_from_env(const char *var, const char *fallback, const char *file, char *out, size_t len)
{
	char dir[MAX_PATH];

	(void)var, (void)fallback;
	snprintf(out, len, "%s\\%s", service_data_dir(dir, sizeof(dir)), file);
}
#else
/* systemd may pass several directories separated by ':'; the first is ours. */
static void
dir_from_env(const char *var, const char *fallback, const char *file, char *out, size_t len)
{
	const char *dir = getenv(var);
	size_t n;

	if (dir == NULL || dir[0] == '\0') {
		snprintf(out, len, "%s/%s", fallback, file);
		return;
	}
	n = strcspn(dir, ":");
	snprintf(out, len, "%.*s/%s", (int)n, dir, file);
}
#endif

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = LOG_LEVEL_INFO;

	cfg->listen_port = 15001;
	cfg->mark = 0x1;
	cfg->escape_mark = 0x80000000u;
	cfg->mode = MODE_REDIRECT;
	cfg->tproxy_mark = 0x40000000u;
	cfg->tproxy_table = 15001;
	snprintf(cfg->agent_id, sizeof(cfg->agent_id), "default");
	cfg->redirect_ports[0] = (struct port_range){80, 80};
	cfg->redirect_ports[1] = (struct port_range){443, 443};
	cfg->n_redirect_ports = 2;
	(void)addr_parse_cidr("0.0.0.0/0", &cfg->redirect_cidrs[0], NULL, 0);
	(void)addr_parse_cidr("::/0", &cfg->redirect_cidrs[1], NULL, 0);
	cfg->n_redirect_cidrs = 2;
	(void)addr_parse_cidr("127.0.0.0/8", &cfg->exclude_cidrs[0], NULL, 0);
	(void)addr_parse_cidr("::1/128", &cfg->exclude_cidrs[1], NULL, 0);
	cfg->n_exclude_cidrs = 2;
	cfg->connect_timeout_ms = 5000;
	cfg->idle_timeout_s = 600;
	cfg->max_sessions = 8192;
	cfg->workers = 0;
	cfg->drain_timeout_ms = 5000;

	dir_from_env(
	    "STATE_DIRECTORY", DEFAULT_STATE_DIR, "agent.db", cfg->db_path, sizeof(cfg->db_path));
	cfg->retention_days = 30;
	cfg->max_rows = 1000000;
	cfg->queue_size = 65536;

	dir_from_env("RUNTIME_DIRECTORY", DEFAULT_RUNTIME_DIR, "agent.sock", cfg->local_socket,
	    sizeof(cfg->local_socket));
	snprintf(cfg->admin_group, sizeof(cfg->admin_group), "redirect-admin");
}

/* ---- value parsers: each returns 0 or -1 with a reason in err ---- */

static int
parse_uint(const char *v, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	char *end;
	unsigned long long x;
	int base = 10;

	if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))
		base = 16;
	if (!isdigit((unsigned char)v[0])) {
		snprintf(err, errlen, "'%s' is not a number", v);
		return -1;
	}
	errno = 0;
	x = strtoull(v, &end, base);
	if (errno != 0 || *end != '\0') {
		snprintf(err, errlen, "'%s' is not a number", v);
		return -1;
	}
	if (x < min || x > max) {
		snprintf(err, errlen, "%s is out of range (%llu to %llu)", v,
		    (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = x;
	return 0;
}

#define UINT_FIELD(field, lo, hi)                                                                  \
	do {                                                                                       \
		uint64_t x_;                                                                       \
		if (parse_uint(v, lo, hi, &x_, err, errlen) != 0)                                  \
			return -1;                                                                 \
		cfg->field = (__typeof__(cfg->field))x_;                                           \
	} while (0)

static int
set_log_level(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (log_level_parse(v, &cfg->log_level) != 0) {
		snprintf(err, errlen, "'%s' is not one of error, warn, info, debug", v);
		return -1;
	}
	return 0;
}

static int
set_listen_port(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(listen_port, 1, 65535);
	return 0;
}

static int
set_mark(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(mark, 1, UINT32_MAX);
	return 0;
}

static int
set_escape_mark(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(escape_mark, 1, UINT32_MAX);
	return 0;
}

static int
set_mode(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "redirect") == 0)
		cfg->mode = MODE_REDIRECT;
	else if (strcmp(v, "tproxy") == 0)
		cfg->mode = MODE_TPROXY;
	else {
		snprintf(err, errlen, "'%s' is not one of redirect, tproxy", v);
		return -1;
	}
	return 0;
}

static int
set_owner_lookup(struct config *cfg, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "auto") == 0)
		cfg->owner_lookup = OWNER_AUTO;
	else if (strcmp(v, "always") == 0)
		cfg->owner_lookup = OWNER_ALWAYS;
	else if (strcmp(v, "never") == 0)
		cfg->owner_lookup = OWNER_NEVER;
	else {
		snprintf(err, errlen, "'%s' is not one of auto, always, never", v);
		return -1;
	}
	return 0;
}

static int
set_tproxy_mark(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(tproxy_mark, 1, UINT32_MAX);
	return 0;
}

static int
set_tproxy_table(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(tproxy_table, 1, UINT32_MAX);
	/* 253-255 are the kernel's default, main and local tables. */
	if (cfg->tproxy_table >= 253 && cfg->tproxy_table <= 255) {
		snprintf(err, errlen, "%s is a table the kernel uses itself (253-255)", v);
		return -1;
	}
	return 0;
}

static int
set_agent_id(struct config *cfg, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n == 0 || n > CONFIG_AGENT_ID_MAX) {
		snprintf(err, errlen, "must be 1 to %d characters", CONFIG_AGENT_ID_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '_' && v[i] != '-') {
			snprintf(err, errlen, "'%s' may hold only letters, digits, '_' and '-'", v);
			return -1;
		}
	}
	memcpy(cfg->agent_id, v, n + 1);
	return 0;
}

static int
set_redirect_ports(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return addr_parse_port_list(v, cfg->redirect_ports, CONFIG_MAX_PORTS,
		   &cfg->n_redirect_ports, err, errlen) == 0
		   ? 0
		   : -1;
}

static int
set_redirect_cidrs(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return addr_parse_cidr_list(v, cfg->redirect_cidrs, CONFIG_MAX_CIDRS,
		   &cfg->n_redirect_cidrs, err, errlen) == 0
		   ? 0
		   : -1;
}

static int
set_exclude_cidrs(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return addr_parse_cidr_list(
		   v, cfg->exclude_cidrs, CONFIG_MAX_CIDRS, &cfg->n_exclude_cidrs, err, errlen) == 0
		   ? 0
		   : -1;
}

static int
set_connect_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(connect_timeout_ms, 1, 600000);
	return 0;
}

static int
set_idle_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(idle_timeout_s, 0, 7 * 86400);
	return 0;
}

static int
set_max_sessions(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(max_sessions, 1, 1000000);
	return 0;
}

static int
set_workers(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(workers, 0, 256);
	return 0;
}

static int
set_drain_timeout(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(drain_timeout_ms, 0, 600000);
	return 0;
}

static int
set_path(char *dst, size_t dstlen, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n == 0 || v[0] != '/') {
		snprintf(err, errlen, "'%s' is not an absolute path", v);
		return -1;
	}
	if (n >= dstlen) {
		snprintf(err, errlen, "path longer than %zu bytes", dstlen - 1);
		return -1;
	}
	memcpy(dst, v, n + 1);
	return 0;
}

static int
set_db_path(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_path(cfg->db_path, sizeof(cfg->db_path), v, err, errlen);
}

static int
set_retention_days(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(retention_days, 0, 36500);
	return 0;
}

static int
set_max_rows(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(max_rows, 0, UINT64_C(1) << 40);
	return 0;
}

static int
set_queue_size(struct config *cfg, const char *v, char *err, size_t errlen)
{
	UINT_FIELD(queue_size, 16, 1u << 22);
	return 0;
}

static int
set_local_socket(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_path(cfg->local_socket, sizeof(cfg->local_socket), v, err, errlen);
}

static int
set_admin_group(struct config *cfg, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n >= sizeof(cfg->admin_group) ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz"
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != n) {
		snprintf(err, errlen, "'%s' is not a group name", v);
		return -1;
	}
	memcpy(cfg->admin_group, v, n + 1);
	return 0;
}

static int
set_remote_listen(struct config *cfg, const char *v, char *err, size_t errlen)
{
	const char *colon = strrchr(v, ':');
	uint64_t port;

	if (v[0] == '\0') {
		cfg->remote_listen[0] = '\0';
		return 0;
	}
	if (strlen(v) >= sizeof(cfg->remote_listen) || colon == NULL || colon == v ||
	    parse_uint(colon + 1, 1, 65535, &port, err, errlen) != 0) {
		snprintf(err, errlen, "'%s' is not HOST:PORT (e.g. 0.0.0.0:50051, [::]:50051)", v);
		return -1;
	}
	memcpy(cfg->remote_listen, v, strlen(v) + 1);
	return 0;
}

static int
set_tls_cert(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_path(cfg->tls_cert, sizeof(cfg->tls_cert), v, err, errlen);
}

static int
set_tls_key(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_path(cfg->tls_key, sizeof(cfg->tls_key), v, err, errlen);
}

static int
set_tls_client_ca(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return set_path(cfg->tls_client_ca, sizeof(cfg->tls_client_ca), v, err, errlen);
}

/* A list of certificate identities, separated by commas and/or blanks. */
static int
parse_identities(
    const char *v, char out[][CONFIG_IDENTITY_MAX], size_t *n, char *err, size_t errlen)
{
	*n = 0;
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
		if (*n == CONFIG_MAX_IDENTITIES) {
			snprintf(err, errlen, "more than %d identities", CONFIG_MAX_IDENTITIES);
			return -1;
		}
		memcpy(out[*n], v, len);
		out[(*n)++][len] = '\0';
		v += len;
	}
	return 0;
}

static int
set_admins(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return parse_identities(v, cfg->admins, &cfg->n_admins, err, errlen);
}

static int
set_readers(struct config *cfg, const char *v, char *err, size_t errlen)
{
	return parse_identities(v, cfg->readers, &cfg->n_readers, err, errlen);
}

/*
 * Every key the agent knows. allow_empty marks the keys whose empty value
 * means "none" (an empty list); for the others an empty value is an error.
 */
static const struct config_key {
	const char *section;
	const char *name;
	int (*set)(struct config *, const char *, char *, size_t);
	int allow_empty;
} config_keys[] = {
    {"agent", "log_level", set_log_level, 0},
    {"proxy", "listen_port", set_listen_port, 0},
    {"proxy", "mark", set_mark, 0},
    {"proxy", "agent_id", set_agent_id, 0},
    {"proxy", "escape_mark", set_escape_mark, 0},
    {"proxy", "mode", set_mode, 0},
    {"proxy", "owner_lookup", set_owner_lookup, 0},
    {"proxy", "tproxy_mark", set_tproxy_mark, 0},
    {"proxy", "tproxy_table", set_tproxy_table, 0},
    {"proxy", "redirect_ports", set_redirect_ports, 1},
    {"proxy", "redirect_cidrs", set_redirect_cidrs, 1},
    {"proxy", "exclude_cidrs", set_exclude_cidrs, 1},
    {"proxy", "connect_timeout_ms", set_connect_timeout, 0},
    {"proxy", "idle_timeout_s", set_idle_timeout, 0},
    {"proxy", "max_sessions", set_max_sessions, 0},
    {"proxy", "workers", set_workers, 0},
    {"proxy", "drain_timeout_ms", set_drain_timeout, 0},
    {"db", "path", set_db_path, 0},
    {"db", "retention_days", set_retention_days, 0},
    {"db", "max_rows", set_max_rows, 0},
    {"db", "queue_size", set_queue_size, 0},
    {"api", "local_socket", set_local_socket, 0},
    {"api", "admin_group", set_admin_group, 0},
    {"api", "remote_listen", set_remote_listen, 1},
    {"api", "tls_cert", set_tls_cert, 0},
    {"api", "tls_key", set_tls_key, 0},
    {"api", "tls_client_ca", set_tls_client_ca, 0},
    {"api", "admins", set_admins, 1},
    {"api", "readers", set_readers, 1},
};

struct parse_state {
	struct config *cfg;
	char reason[256];
	char section[32];
	char key[64];
	int failed;
};

static int
config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	int known_section = 0;

	if (ps->failed)
		return 1; /* keep the first error; inih reports its line */
	snprintf(ps->section, sizeof(ps->section), "%s", section);
	snprintf(ps->key, sizeof(ps->key), "%s", name != NULL ? name : "");

	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		const struct config_key *k = &config_keys[i];

		if (strcmp(k->section, section) != 0)
			continue;
		known_section = 1;
		if (name == NULL || strcmp(k->name, name) != 0)
			continue;
		if (value == NULL || (value[0] == '\0' && !k->allow_empty)) {
			snprintf(ps->reason, sizeof(ps->reason), "a value is required");
			goto fail;
		}
		if (k->set(ps->cfg, value, ps->reason, sizeof(ps->reason)) != 0)
			goto fail;
		return 1;
	}
	if (name == NULL && known_section)
		return 1; /* a section header on its own (INI_CALL_HANDLER_ON_NEW_SECTION) */
	snprintf(ps->reason, sizeof(ps->reason), known_section ? "unknown key" : "unknown section");
fail:
	ps->failed = 1;
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
		    "remote "
		    "API is TLS with client certificates only)",
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

static int
config_finish(struct config *cfg, struct parse_state *ps, int line, const char *name, char *err,
    size_t errlen)
{
	if (line == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", name, strerror(errno));
		return -1;
	}
	if (line == -2) {
		snprintf(err, errlen, "%s: out of memory while parsing", name);
		return -1;
	}
	if (line > 0) {
		if (ps->failed)
			snprintf(err, errlen, "%s:%d: [%s] %s: %s", name, line, ps->section,
			    ps->key, ps->reason);
		else
			snprintf(err, errlen,
			    "%s:%d: syntax error (expected [section] or key = value)", name, line);
		return -1;
	}
	return config_check(cfg, name, err, errlen);
}

int
config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct parse_state ps = {.cfg = cfg};
	int line;

	errno = 0;
	line = ini_parse(path, config_handler, &ps);
	return config_finish(cfg, &ps, line, path, err, errlen);
}

int
config_load_string(struct config *cfg, const char *name, const char *text, char *err, size_t errlen)
{
	struct parse_state ps = {.cfg = cfg};
	int line = ini_parse_string(text, config_handler, &ps);

	return config_finish(cfg, &ps, line, name, err, errlen);
}

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
	/* One [section] line per setting keeps the text simple; inih merges them. */
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
	if ((f = fopen(tmp, "we")) == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (f != NULL)
			(void)remove(tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		(void)remove(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	free(text);
	return rc;
}
