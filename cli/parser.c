/*
 * parser.c: redirectctl's command table and its parser (parser.h).
 */
#include "parser.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "clock.h"
#include "conn.h"
#include "log.h"
#include "parse.h"
#include "paths.h"
#include "version.h"

/* One option: "--name ARG" (arg NULL: a flag), its help, and what it sets. */
struct option_row {
	const char *name;
	const char *arg;
	const char *help;
	int (*set)(struct request *rq, const char *value);
};

struct command {
	const char *name;  /* "conns", or two words: "policy set" */
	const char *args;  /* positional arguments, for the usage line ("ID") */
	unsigned min_args; /* how many positional arguments ... */
	unsigned max_args; /* ... at least and at most */
	const char *help;
	enum action action;
	const struct option_row *opts; /* ends with a NULL name; NULL: none */
	int (*args_fn)(struct request *rq, char **argv, unsigned n);
};

static void LOG_PRINTF(1, 2) usage_error(const char *fmt, ...);

/* ---- option setters: each returns 0, or -1 after saying what is wrong ---- */

static int
set_limit(struct request *rq, const char *v)
{
	uint64_t n;

	if (parse_u64(v, 0, 1, 1000000, &n) != 0) {
		usage_error("--limit takes 1 to 1000000");
		return -1;
	}
	rq->limit = (unsigned long)n;
	return 0;
}

static int
duration_before_now(const char *opt, const char *v, int64_t *out)
{
	int64_t d;

	if (parse_duration_us(v, &d) != 0) {
		usage_error("%s takes a duration like 90s, 15m, 2h, 7d (not '%s')", opt, v);
		return -1;
	}
	*out = clock_wall_us() - d;
	return 0;
}

static int
set_since(struct request *rq, const char *v)
{
	return duration_before_now("--since", v, &rq->since_us);
}

static int
set_until(struct request *rq, const char *v)
{
	return duration_before_now("--until", v, &rq->until_us);
}

static int
set_dst_cidr(struct request *rq, const char *v)
{
	struct cidr c;
	char why[128];

	if (addr_parse_cidr(v, &c, why, sizeof(why)) != 0) {
		usage_error("--dst-cidr: %s", why);
		return -1;
	}
	rq->dst_cidr = v;
	return 0;
}

static int
set_dst_port(struct request *rq, const char *v)
{
	uint16_t p;

	if (parse_port(v, &p) != 0) {
		usage_error("--dst-port takes 1 to 65535");
		return -1;
	}
	rq->dst_port = p;
	return 0;
}

/* v, when it is one of the record's words (conn.h); else NULL, said with the words. */
static const char *
one_of(const char *opt, const char *v, const char *const *names)
{
	char listed[256];
	size_t o = 0;

	for (const char *const *n = names; *n != NULL; n++)
		if (strcmp(v, *n) == 0)
			return v;
	for (const char *const *n = names; *n != NULL && o < sizeof(listed); n++)
		o += (size_t)snprintf(listed + o, sizeof(listed) - o, "%s%s",
		    n == names     ? ""
		    : n[1] == NULL ? " or "
				   : ", ",
		    *n);
	usage_error("--%s takes %s, not '%s'", opt, listed, v);
	return NULL;
}

/* The help rows' lists: test_cli.sh checks each word is accepted. */
#define STATES          "open, relaying, closed, failed or interrupted"
#define VERDICTS        "allow, block, bypass, forward or refuse"
#define REDIRECT_STATES "none, by_self, by_other or previously_by_self"

static int
set_state(struct request *rq, const char *v)
{
	return (rq->state = one_of("state", v, conn_state_names)) != NULL ? 0 : -1;
}

static int
set_verdict(struct request *rq, const char *v)
{
	return (rq->verdict = one_of("verdict", v, conn_verdict_names)) != NULL ? 0 : -1;
}

static int
set_redirect_state(struct request *rq, const char *v)
{
	return (rq->redirect_state = one_of("redirect-state", v, redirect_state_names)) != NULL
		   ? 0
		   : -1;
}

static int
set_after(struct request *rq, const char *v)
{
	if (parse_u64(v, 0, 0, UINT64_MAX, &rq->after) != 0) {
		usage_error("--after takes a sequence number");
		return -1;
	}
	return 0;
}

static int
set_expected_version(struct request *rq, const char *v)
{
	uint64_t n;

	if (parse_u64(v, 0, 0, INT64_MAX, &n) != 0) {
		usage_error("--expected-version takes a version number (0: none set yet)");
		return -1;
	}
	rq->expected_version = (long long)n;
	return 0;
}

static int
set_simulate(struct request *rq, const char *v)
{
	uint64_t n;

	if (parse_u64(v, 0, 1, 100000, &n) != 0) {
		usage_error("--simulate takes 1 to 100000 (recorded connections to judge again)");
		return -1;
	}
	rq->simulate = (unsigned)n;
	return 0;
}

static int
set_agent(struct request *rq, const char *v)
{
	if (v[strspn(v, "0123456789abcdef-")] != '\0' || strlen(v) != 36) {
		usage_error("--agent takes an agent UUID (redirectctl status shows it)");
		return -1;
	}
	rq->agent = v;
	return 0;
}

static int
set_follow(struct request *rq, const char *v)
{
	(void)v;
	rq->follow = 1;
	return 0;
}

static int
set_expected_revision(struct request *rq, const char *v)
{
	uint64_t n;

	if (parse_u64(v, 0, 0, INT64_MAX, &n) != 0) {
		usage_error("--expected-revision takes the key's revision (0: it must not exist)");
		return -1;
	}
	rq->expected_revision = (long long)n;
	return 0;
}

static int
set_ttl(struct request *rq, const char *v)
{
	int64_t us;

	if (parse_duration_us(v, &us) != 0 || us < 1000000) {
		usage_error("--inventory-ttl takes a duration like 10m, 1h (not '%s')", v);
		return -1;
	}
	rq->ttl_s = us / 1000000;
	return 0;
}

/* ---- positional arguments ---- */

static int
arg_id(struct request *rq, char **argv, unsigned n)
{
	(void)n;
	if (parse_u64(argv[0], 0, 1, INT64_MAX, &rq->id) != 0) {
		usage_error("conn takes one connection id (a number), not '%s'", argv[0]);
		return -1;
	}
	return 0;
}

static int
arg_file(struct request *rq, char **argv, unsigned n)
{
	(void)n;
	rq->file = argv[0];
	return 0;
}

static int arg_help(struct request *rq, char **argv, unsigned n);

/* A policy key: "group.NAME", "agent.UUID", or a bare group name. */
static int
arg_key(struct request *rq, char **argv, unsigned n)
{
	const char *k = argv[0], *name = k;

	if (strncmp(k, "group.", 6) == 0)
		name = k + 6;
	else if (strncmp(k, "agent.", 6) == 0)
		name = k + 6;
	if (name[0] == '\0' ||
	    name[strspn(name,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")] != '\0') {
		usage_error("'%s' is not a policy key (GROUP, group.GROUP or agent.UUID)", k);
		return -1;
	}
	snprintf(rq->key_buf, sizeof(rq->key_buf), "%s%s", name == k ? "group." : "", k);
	rq->policy_key = rq->key_buf;
	if (n > 1)
		rq->file = argv[1];
	return 0;
}

static int
arg_uuid(struct request *rq, char **argv, unsigned n)
{
	(void)n;
	if (argv[0][strspn(argv[0], "0123456789abcdef-")] != '\0' || strlen(argv[0]) != 36) {
		usage_error(
		    "'%s' is not an agent UUID (redirectctl fleet agents lists them)", argv[0]);
		return -1;
	}
	rq->agent = argv[0];
	return 0;
}

/* ---- the table ---- */

static const struct option_row conns_opts[] = {
    {"limit", "N", "show at most N connections (default 20; pages through the API)", set_limit},
    {"since", "DURATION", "opened at most DURATION ago: 90s, 15m, 2h, 7d", set_since},
    {"until", "DURATION", "opened at least DURATION ago", set_until},
    {"dst-cidr", "CIDR", "original destination in CIDR", set_dst_cidr},
    {"dst-port", "PORT", "original destination port", set_dst_port},
    {"state", "STATE", STATES, set_state},
    {"verdict", "VERDICT", VERDICTS, set_verdict},
    {"redirect-state", "STATE", REDIRECT_STATES, set_redirect_state},
    {NULL, NULL, NULL, NULL},
};

static const struct option_row watch_opts[] = {
    {"after", "SEQUENCE", "resume after this sequence number (default: from now)", set_after},
    {NULL, NULL, NULL, NULL},
};

static const struct option_row set_opts[] = {
    {"expected-version", "N",
	"compare-and-set: fail if the policy is no longer at version N (default: the version "
	"read just before)",
	set_expected_version},
    {NULL, NULL, NULL, NULL},
};

static const struct option_row validate_opts[] = {
    {"simulate", "N", "also judge the last N recorded connections again", set_simulate},
    {NULL, NULL, NULL, NULL},
};

static const struct option_row fleet_conns_opts[] = {
    {"agent", "UUID", "this agent's records only", set_agent},
    {"since", "DURATION",
	"shipped at most DURATION ago: 90s, 15m, 2h, 7d (default: the last "
	"--limit)",
	set_since},
    {"limit", "N", "without --since: the last N records (default 20)", set_limit},
    {"follow", NULL, "then keep printing records as they come", set_follow},
    {NULL, NULL, NULL, NULL},
};

static const struct option_row fleet_set_opts[] = {
    {"expected-revision", "N",
	"compare-and-set: fail unless the key is at revision N (0: unless it does not exist)",
	set_expected_revision},
    {NULL, NULL, NULL, NULL},
};

static const struct option_row fleet_init_opts[] = {
    {"inventory-ttl", "DURATION", "an agent silent this long leaves the inventory (default 1h)",
	set_ttl},
    {NULL, NULL, NULL, NULL},
};

static const struct command commands[] = {
    {"status", "", 0, 0, "the agent's identity, configuration summary and health", ACT_STATUS, NULL,
	NULL},
    {"stats", "", 0, 0, "counters since the agent started", ACT_STATS, NULL, NULL},
    {"reload", "", 0, 0,
	"read the configuration file and the TLS certificates again (what needs a restart is "
	"refused)",
	ACT_RELOAD, NULL, NULL},
    {"conns", "", 0, 0, "recorded connections, newest first", ACT_CONNS, conns_opts, NULL},
    {"conn", "ID", 1, 1, "one connection in full, redirect records and context in hex", ACT_CONN,
	NULL, arg_id},
    {"watch", "", 0, 0, "follow connection events as they are committed", ACT_WATCH, watch_opts,
	NULL},
    {"policy get", "", 0, 0, "the policy in force: its version line, then the document",
	ACT_POLICY_GET, NULL, NULL},
    {"policy set", "FILE", 1, 1, "a new policy version from a JSON file", ACT_POLICY_SET, set_opts,
	arg_file},
    {"policy validate", "FILE", 1, 1, "check a policy file; its problems, with their paths",
	ACT_POLICY_VALIDATE, validate_opts, arg_file},
    {"policy history", "", 0, 0, "every policy version, newest first", ACT_POLICY_HISTORY, NULL,
	NULL},
    {"fleet init", "", 0, 0, "create the fleet's stream and buckets (the NATS operator)",
	ACT_FLEET_INIT, fleet_init_opts, NULL},
    {"fleet agents", "", 0, 0, "the fleet's agents (the inventory); stale ones marked",
	ACT_FLEET_AGENTS, NULL, NULL},
    {"fleet conns", "", 0, 0, "the fleet's connection records, from the stream", ACT_FLEET_CONNS,
	fleet_conns_opts, NULL},
    {"fleet policy get", "KEY", 1, 1, "a fleet policy key: its revision, then the document",
	ACT_FLEET_POLICY_GET, NULL, arg_key},
    {"fleet policy set", "KEY FILE", 2, 2,
	"set a group's (or an agent's) policy from a JSON file, checked first",
	ACT_FLEET_POLICY_SET, fleet_set_opts, arg_key},
    {"fleet policy delete", "KEY", 1, 1, "delete a policy key: its agents fall back to the next",
	ACT_FLEET_POLICY_DELETE, fleet_set_opts, arg_key},
    {"fleet policy history", "KEY", 1, 1, "a policy key's revisions, newest first",
	ACT_FLEET_POLICY_HISTORY, NULL, arg_key},
    {"fleet call", "UUID COMMAND [ARGS]", 2, 2,
	"any command above (status, stats, conns, conn, policy ...) to one agent, over NATS",
	ACT_FLEET_CALL, NULL, arg_uuid},
    {"help", "[COMMAND]", 0, 3, "this help, or one command's", ACT_HELP, NULL, arg_help},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The global options: one table for the parser and for the help. */
#define SET_STRING(fn, field)                                                                      \
	static int fn(struct request *rq, const char *v)                                           \
	{                                                                                          \
		rq->field = v;                                                                     \
		return 0;                                                                          \
	}
SET_STRING(set_socket, socket_path)
SET_STRING(set_target, target)
SET_STRING(set_ca, ca)
SET_STRING(set_cert, cert)
SET_STRING(set_key, key)
SET_STRING(set_server, nats.server)
SET_STRING(set_user, nats.user)
SET_STRING(set_password, nats.password)
SET_STRING(set_creds, nats.creds)
SET_STRING(set_tls_ca, nats.tls_ca)
SET_STRING(set_tls_cert, nats.tls_cert)
SET_STRING(set_tls_key, nats.tls_key)
SET_STRING(set_inbox, nats.inbox)
SET_STRING(set_prefix, nats.prefix)
#undef SET_STRING

static int
set_json(struct request *rq, const char *v)
{
	(void)v;
	rq->json = 1;
	return 0;
}

/* --version and --help have no setter: parse_global answers them. */
static const struct option_row global_opts[] = {
    {"socket", "PATH", "the agent's local socket", set_socket},
    {"target", "HOST:PORT", "a remote agent, over TLS with --ca, --cert and --key", set_target},
    {"ca", "FILE", "the CA (PEM) the remote agent's certificate must chain to", set_ca},
    {"cert", "FILE", "this client's certificate (PEM): its identity picks the role", set_cert},
    {"key", "FILE", "this client's private key (PEM)", set_key},
    {"json", NULL, "print one JSON document (field names as in the API) for scripts", set_json},
    {"version", NULL, "print the version and exit", NULL},
    {"help", NULL, "print this help (or a command's, after it) and exit; also -h", NULL},
    {NULL, NULL, NULL, NULL},
};

/* The fleet's NATS server: before or after the word "fleet". */
static const struct option_row fleet_opts[] = {
    {"server", "URL", "nats://HOST:PORT or tls://HOST:PORT (default nats://127.0.0.1:4222)",
	set_server},
    {"user", "NAME", "a NATS user", set_user},
    {"password", "PW", "its password (or the REDIRECTCTL_NATS_PASSWORD variable)", set_password},
    {"creds", "FILE", "a NATS .creds file, instead of --user", set_creds},
    {"tls-ca", "FILE", "TLS to the server: the CA (PEM) its certificate chains to", set_tls_ca},
    {"tls-cert", "FILE", "a client certificate (PEM), with --tls-key", set_tls_cert},
    {"tls-key", "FILE", "its private key (PEM)", set_tls_key},
    {"inbox", "PREFIX", "replies under PREFIX (default _INBOX.<user>)", set_inbox},
    {"prefix", "P", "the agents' [fleet] subject_prefix (default redirect)", set_prefix},
    {NULL, NULL, NULL, NULL},
};

/* ---- usage ---- */

static const struct command *usage_for; /* the command being parsed, for errors */

static void
print_option_usage(FILE *f, const struct option_row *o)
{
	for (; o != NULL && o->name != NULL; o++) {
		if (o->arg != NULL)
			fprintf(f, " [--%s %s]", o->name, o->arg);
		else
			fprintf(f, " [--%s]", o->name);
	}
}

static void
print_command_line(FILE *f, const struct command *c)
{
	fprintf(f, "redirectctl [GLOBAL OPTIONS] %s", c->name);
	if (c->args[0] != '\0')
		fprintf(f, " %s", c->args);
	print_option_usage(f, c->opts);
	fputc('\n', f);
}

static void
print_option_help(FILE *f, const struct option_row *o)
{
	for (; o != NULL && o->name != NULL; o++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg != NULL ? " " : "",
		    o->arg != NULL ? o->arg : "");
		fprintf(f, "  %-26s %s\n", left, o->help);
	}
}

void
print_group_usage(FILE *f, const char *group)
{
	size_t n = strlen(group);

	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strncmp(commands[i].name, group, n) != 0 || commands[i].name[n] != ' ')
			continue;
		fputs("usage: ", f);
		print_command_line(f, &commands[i]);
		fprintf(f, "       %s.\n", commands[i].help);
	}
}

void
print_usage(FILE *f, const struct command *cmd)
{
	char sock[256], dir[256];

	if (cmd != NULL) {
		fputs("usage: ", f);
		print_command_line(f, cmd);
		fprintf(f, "\n%s.\n", cmd->help);
		if (cmd->opts != NULL) {
			fputs("\noptions:\n", f);
			print_option_help(f, cmd->opts);
		}
		return;
	}
	paths_join(sock, sizeof(sock), paths_runtime_dir(dir, sizeof(dir)), "agent.sock");
	fputs("usage: redirectctl [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	      "       redirectctl --version | --help | help [COMMAND] | COMMAND --help\n\n"
	      "Talks to redirect-agent over the API a console uses: on its local socket, or\n"
	      "over TLS to a remote agent.\n\nglobal options:\n",
	    f);
	print_option_help(f, global_opts);
	fprintf(f, "  (the default socket is %s)\n\n", sock);
	fputs("fleet options (before or after `fleet`; the fleet's NATS server):\n", f);
	print_option_help(f, fleet_opts);
	fputs("\ncommands:\n", f);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s", commands[i].name,
		    commands[i].args[0] != '\0' ? " " : "", commands[i].args);
		fprintf(f, "  %-26s %s\n", left, commands[i].help);
	}
	fputs("\nexit codes: 0 ok, 1 the agent said no, 2 usage, 3 cannot reach the agent\n", f);
}

static void
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("redirectctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (usage_for != NULL) {
		fputs("usage: ", stderr);
		print_command_line(stderr, usage_for);
	} else {
		fputs("usage: redirectctl [GLOBAL OPTIONS] COMMAND [ARGS] (redirectctl help)\n",
		    stderr);
	}
}

/* ---- parsing ---- */

/* Whether command name c (words separated by spaces) starts with argv's first n words. */
static int
words_match(const char *c, int n, char **argv, int *words)
{
	int k = 0;

	while (*c != '\0' && k < n) {
		size_t len = strcspn(c, " ");

		if (strlen(argv[k]) != len || strncmp(c, argv[k], len) != 0)
			return 0;
		k++;
		c += len;
		c += *c == ' ';
	}
	*words = k;
	return *c == '\0' ? 2 : 1; /* 2: all of the name; 1: argv is a prefix of it */
}

/* The command whose name is argv's first words (the longest such); *used: how many. */
static const struct command *
find_command(int argc, char **argv, int *used)
{
	const struct command *best = NULL;
	int best_n = 0;

	for (size_t i = 0; i < N_COMMANDS; i++) {
		int words, m = words_match(commands[i].name, argc, argv, &words);

		if (m == 2 && words > best_n) {
			best = &commands[i];
			best_n = words;
		}
	}
	*used = best_n;
	return best;
}

/* Whether argv's first n words start some longer command ("policy", "fleet policy"). */
static int
is_group_n(int n, char **argv)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		int words;

		if (words_match(commands[i].name, n, argv, &words) == 1 && words == n)
			return 1;
	}
	return 0;
}

static int
is_group(const char *word)
{
	char *w[1] = {(char *)word};

	return is_group_n(1, w);
}

static int
arg_help(struct request *rq, char **argv, unsigned n)
{
	int used;

	if (n == 0)
		return 0;
	if ((rq->help_for = find_command((int)n, argv, &used)) != NULL && (unsigned)used == n)
		return 0;
	rq->help_for = NULL;
	if (is_group_n((int)n, argv)) {
		snprintf(rq->key_buf, sizeof(rq->key_buf), "%s%s%s", argv[0], n > 1 ? " " : "",
		    n > 1 ? argv[1] : "");
		rq->help_group = rq->key_buf;
		return 0;
	}
	usage_error("help: no command '%s%s%s'", argv[0], n > 1 ? " " : "", n > 1 ? argv[1] : "");
	return -1;
}

/*
 * "--name value", "--name=value" or "--flag" against rows. Returns how many
 * words were used, 0 when no row has that name, or -1.
 */
static int
match_option(struct request *rq, const struct option_row *opts, int argc, char **argv)
{
	const char *word = argv[0] + 2, *eq = strchr(word, '=');
	size_t len = eq != NULL ? (size_t)(eq - word) : strlen(word);

	for (const struct option_row *o = opts; o != NULL && o->name != NULL; o++) {
		if (strlen(o->name) != len || strncmp(o->name, word, len) != 0 || o->set == NULL)
			continue;
		if (o->arg == NULL) {
			if (eq != NULL) {
				usage_error("--%s takes no value", o->name);
				return -1;
			}
			return o->set(rq, NULL) == 0 ? 1 : -1;
		}
		if (eq != NULL)
			return o->set(rq, eq + 1) == 0 ? 1 : -1;
		if (argc < 2) {
			usage_error("--%s needs a value (%s)", o->name, o->arg);
			return -1;
		}
		return o->set(rq, argv[1]) == 0 ? 2 : -1;
	}
	return 0;
}

/* A command's option (or --json, the one global flag taken after a command too). */
static int
parse_option(struct request *rq, const struct option_row *opts, int argc, char **argv)
{
	int r = match_option(rq, opts, argc, argv);

	if (r == 0 && strcmp(argv[0], "--json") == 0)
		r = set_json(rq, NULL) == 0 ? 1 : -1;
	if (r == 0)
		usage_error("%s: unknown option '%s'", usage_for->name, argv[0]);
	return r == 0 ? -1 : r;
}

/* "fleet --server URL ... SUBCOMMAND": the options between fleet and its subcommand. */
static int
parse_fleet_options(struct request *rq, int argc, char **argv, int *i)
{
	int r;

	while (*i < argc && strncmp(argv[*i], "--", 2) == 0 && argv[*i][2] != '\0') {
		if ((r = match_option(rq, fleet_opts, argc - *i, argv + *i)) < 0)
			return -1;
		if (r == 0)
			return 0; /* the subcommand's own options come after it */
		*i += r;
	}
	return 0;
}

/* Returns 0, 1 when --help or --version was answered, or -1. */
static int
parse_global(struct request *rq, int argc, char **argv, int *i)
{
	int r;

	while (*i < argc && (strncmp(argv[*i], "--", 2) == 0 || strcmp(argv[*i], "-h") == 0)) {
		if (strcmp(argv[*i], "--version") == 0) {
			printf("redirectctl %s\n", RA_VERSION);
			rq->action = ACT_NONE;
			return 1;
		}
		if (strcmp(argv[*i], "--help") == 0 || strcmp(argv[*i], "-h") == 0) {
			print_usage(stdout, NULL);
			rq->action = ACT_NONE;
			return 1;
		}
		if ((r = match_option(rq, global_opts, argc - *i, argv + *i)) == 0)
			r = match_option(rq, fleet_opts, argc - *i, argv + *i);
		if (r == 0)
			usage_error("unknown option '%s'", argv[*i]);
		if (r <= 0)
			return -1;
		*i += r;
	}
	return 0;
}

/* A command and its options and arguments, from argv[i] on. Returns 0 or EXIT_USAGE. */
static int
parse_cmd(struct request *rq, int argc, char **argv, int i)
{
	const struct command *cmd;
	char *pos[4];
	unsigned npos = 0;
	int used, r;

	if ((cmd = find_command(argc - i, argv + i, &used)) == NULL) {
		/* "policy --help", "fleet policy -h": the group's help, as "help policy" */
		int g = argc - i >= 2 && is_group_n(2, argv + i) ? 2 : is_group(argv[i]) ? 1 : 0;

		if (g > 0 && i + g < argc &&
		    (strcmp(argv[i + g], "--help") == 0 || strcmp(argv[i + g], "-h") == 0))
			return arg_help(rq, argv + i, (unsigned)g) != 0
				   ? EXIT_USAGE
				   : (rq->action = ACT_HELP, 0);
		if (g > 0) {
			const char *sp = g > 1 ? " " : "", *w2 = g > 1 ? argv[i + 1] : "";

			usage_error("'%s%s%s' needs a subcommand (redirectctl help %s%s%s)",
			    argv[i], sp, w2, argv[i], sp, w2);
		} else
			usage_error("unknown command '%s'", argv[i]);
		return EXIT_USAGE;
	}
	usage_for = cmd;
	if (cmd->action == ACT_FLEET_CALL) {
		/* fleet call UUID COMMAND [ARGS]: COMMAND is parsed as itself */
		i += used;
		if (i < argc && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
			print_usage(stdout, cmd);
			rq->action = ACT_NONE;
			return 0;
		}
		if (i + 1 >= argc) {
			usage_error("fleet call needs UUID COMMAND");
			return EXIT_USAGE;
		}
		if (arg_uuid(rq, argv + i, 1) != 0)
			return EXIT_USAGE;
		if (strcmp(argv[i + 1], "fleet") == 0 || strcmp(argv[i + 1], "help") == 0 ||
		    strcmp(argv[i + 1], "watch") == 0) {
			usage_error("fleet call: '%s' is not a command for one agent over NATS%s",
			    argv[i + 1],
			    strcmp(argv[i + 1], "watch") == 0 ? " (use fleet conns --follow)" : "");
			return EXIT_USAGE;
		}
		rq->fleet_call = 1;
		return parse_cmd(rq, argc, argv, i + 1);
	}
	for (i += used; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			print_usage(stdout, cmd);
			rq->action = ACT_NONE;
			return 0;
		}
		if (strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0') {
			if ((r = parse_option(rq, cmd->opts, argc - i, argv + i)) < 0)
				return EXIT_USAGE;
			i += r - 1;
			continue;
		}
		if (npos == cmd->max_args || npos == sizeof(pos) / sizeof(pos[0])) {
			usage_error("%s: unexpected argument '%s'", cmd->name, argv[i]);
			return EXIT_USAGE;
		}
		pos[npos++] = argv[i];
	}
	if (npos < cmd->min_args) {
		usage_error("%s needs %s", cmd->name, cmd->args);
		return EXIT_USAGE;
	}
	if (cmd->args_fn != NULL && (npos > 0 || cmd->min_args > 0) &&
	    cmd->args_fn(rq, pos, npos) != 0)
		return EXIT_USAGE;
	if (rq->since_us != 0 && rq->until_us != 0 && rq->since_us > rq->until_us) {
		usage_error("--since must reach further back than --until");
		return EXIT_USAGE;
	}
	rq->action = cmd->action;
	rq->fleet |= strncmp(cmd->name, "fleet ", 6) == 0;
	return 0;
}

int
parse_command_line(int argc, char **argv, struct request *rq)
{
	int i = 1, r;

	memset(rq, 0, sizeof(*rq));
	rq->limit = 20;
	rq->expected_version = -1;
	rq->expected_revision = -1;
	usage_for = NULL;
	if ((r = parse_global(rq, argc, argv, &i)) != 0)
		return r > 0 ? 0 : EXIT_USAGE;
	if (i >= argc) {
		usage_error("no command given");
		return EXIT_USAGE;
	}
	if ((rq->target != NULL)
		? (rq->socket_path != NULL || rq->ca == NULL || rq->cert == NULL || rq->key == NULL)
		: (rq->ca != NULL || rq->cert != NULL || rq->key != NULL)) {
		usage_error("use --socket PATH, or --target HOST:PORT with all of --ca, --cert and "
			    "--key");
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "fleet") == 0) {
		/* "fleet [--server URL ...] SUBCOMMAND": the options go before it */
		int j = i + 1;

		if (parse_fleet_options(rq, argc, argv, &j) != 0)
			return EXIT_USAGE;
		if (j > i + 1) { /* move "fleet" next to its subcommand */
			argv[j - 1] = argv[i];
			i = j - 1;
		}
		if (i + 1 >= argc) {
			usage_error("'fleet' needs a subcommand (redirectctl help fleet)");
			return EXIT_USAGE;
		}
	}
	if ((r = parse_cmd(rq, argc, argv, i)) != 0)
		return r;
	if ((rq->fleet || rq->fleet_call) && rq->nats.server == NULL)
		rq->nats.server = "nats://127.0.0.1:4222";
	if ((rq->nats.tls_cert != NULL) != (rq->nats.tls_key != NULL)) {
		usage_error("--tls-cert and --tls-key go together");
		return EXIT_USAGE;
	}
	return 0;
}
