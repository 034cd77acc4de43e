/*
 * parser.c: redirectctl's command table and its parser (parser.h).
 */
#include "parser.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
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

static int
set_state(struct request *rq, const char *v)
{
	rq->state = v;
	return 0;
}

static int
set_verdict(struct request *rq, const char *v)
{
	rq->verdict = v;
	return 0;
}

static int
set_redirect_state(struct request *rq, const char *v)
{
	rq->redirect_state = v;
	return 0;
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

/* ---- the table ---- */

static const struct option_row conns_opts[] = {
    {"limit", "N", "show at most N connections (default 20; pages through the API)", set_limit},
    {"since", "DURATION", "opened at most DURATION ago: 90s, 15m, 2h, 7d", set_since},
    {"until", "DURATION", "opened at least DURATION ago", set_until},
    {"dst-cidr", "CIDR", "original destination in CIDR", set_dst_cidr},
    {"dst-port", "PORT", "original destination port", set_dst_port},
    {"state", "STATE", "open, relaying, closed, failed or interrupted", set_state},
    {"verdict", "VERDICT", "allow, block, bypass, forward or refuse", set_verdict},
    {"redirect-state", "STATE", "none, by_self, by_other or previously_by_self",
	set_redirect_state},
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

static const struct command commands[] = {
    {"status", "", 0, 0, "the agent's identity, configuration summary and health", ACT_STATUS, NULL,
	NULL},
    {"stats", "", 0, 0, "counters since the agent started", ACT_STATS, NULL, NULL},
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
    {"help", "[COMMAND]", 0, 2, "this help, or one command's", ACT_HELP, NULL, arg_help},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct option_row global_opts[] = {
    {"socket", "PATH", "the agent's local socket", NULL},
    {"target", "HOST:PORT", "a remote agent, over TLS with --ca, --cert and --key", NULL},
    {"ca", "FILE", "the CA (PEM) the remote agent's certificate must chain to", NULL},
    {"cert", "FILE", "this client's certificate (PEM): its identity picks the role", NULL},
    {"key", "FILE", "this client's private key (PEM)", NULL},
    {"json", NULL, "print one JSON document (field names as in the API) for scripts", NULL},
    {"version", NULL, "print the version and exit", NULL},
    {"help", NULL, "print this help and exit", NULL},
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
	fprintf(f, "  (the default socket is %s)\n\ncommands:\n", sock);
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

/* The command whose name matches argv's first word or two; *used: how many. */
static const struct command *
find_command(int argc, char **argv, int *used)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const char *name = commands[i].name, *space = strchr(name, ' ');

		if (space == NULL) {
			if (argc >= 1 && strcmp(argv[0], name) == 0) {
				*used = 1;
				return &commands[i];
			}
		} else if (argc >= 2 && strncmp(argv[0], name, (size_t)(space - name)) == 0 &&
			   argv[0][space - name] == '\0' && strcmp(argv[1], space + 1) == 0) {
			*used = 2;
			return &commands[i];
		}
	}
	return NULL;
}

/* Whether a word starts some two-word command ("policy"). */
static int
is_group(const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strncmp(commands[i].name, word, n) == 0 && commands[i].name[n] == ' ')
			return 1;
	return 0;
}

static int
arg_help(struct request *rq, char **argv, unsigned n)
{
	int used;

	if (n == 0)
		return 0;
	if (n == 1 && is_group(argv[0])) {
		rq->help_group = argv[0];
		return 0;
	}
	if ((rq->help_for = find_command((int)n, argv, &used)) == NULL || (unsigned)used != n) {
		usage_error(
		    "help: no command '%s%s%s'", argv[0], n > 1 ? " " : "", n > 1 ? argv[1] : "");
		return -1;
	}
	return 0;
}

/*
 * "--name value", "--name=value" or "--flag" against a command's rows.
 * Returns how many words were used, or -1.
 */
static int
parse_option(struct request *rq, const struct option_row *opts, int argc, char **argv)
{
	const char *word = argv[0] + 2, *eq = strchr(word, '=');
	size_t len = eq != NULL ? (size_t)(eq - word) : strlen(word);

	for (const struct option_row *o = opts; o != NULL && o->name != NULL; o++) {
		if (strlen(o->name) != len || strncmp(o->name, word, len) != 0)
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
	usage_error("%s: unknown option '%s'", usage_for->name, argv[0]);
	return -1;
}

static int
parse_global(struct request *rq, int argc, char **argv, int *i)
{
	for (; *i < argc && strncmp(argv[*i], "--", 2) == 0; (*i)++) {
		const char *w = argv[*i] + 2;
		const char **slot = NULL;

		if (strcmp(w, "json") == 0) {
			rq->json = 1;
			continue;
		}
		if (strcmp(w, "version") == 0) {
			printf("redirectctl %s\n", RA_VERSION);
			rq->action = ACT_NONE;
			return 1;
		}
		if (strcmp(w, "help") == 0) {
			print_usage(stdout, NULL);
			rq->action = ACT_NONE;
			return 1;
		}
		if (strcmp(w, "socket") == 0)
			slot = &rq->socket_path;
		else if (strcmp(w, "target") == 0)
			slot = &rq->target;
		else if (strcmp(w, "ca") == 0)
			slot = &rq->ca;
		else if (strcmp(w, "cert") == 0)
			slot = &rq->cert;
		else if (strcmp(w, "key") == 0)
			slot = &rq->key;
		if (slot == NULL) {
			usage_error("unknown option '%s'", argv[*i]);
			return -1;
		}
		if (*i + 1 >= argc) {
			usage_error("%s needs a value", argv[*i]);
			return -1;
		}
		*slot = argv[++(*i)];
	}
	return 0;
}

int
parse_command_line(int argc, char **argv, struct request *rq)
{
	const struct command *cmd;
	char *pos[4];
	unsigned npos = 0;
	int i = 1, used, r;

	memset(rq, 0, sizeof(*rq));
	rq->limit = 20;
	rq->expected_version = -1;
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
	if ((cmd = find_command(argc - i, argv + i, &used)) == NULL) {
		if (is_group(argv[i]))
			usage_error("'%s' needs a subcommand (redirectctl help)", argv[i]);
		else
			usage_error("unknown command '%s'", argv[i]);
		return EXIT_USAGE;
	}
	usage_for = cmd;
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
	return 0;
}
