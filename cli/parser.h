/*
 * parser.h: redirectctl's command line, as a table (parser.c).
 *
 * Every command, its arguments and its options are rows of one table; the
 * parser turns argv into a struct request before anything is sent, so a
 * typo exits 2 whether or not the agent is up. The same rows print the
 * usage lines and each command's --help, so the help cannot drift from
 * what the parser accepts.
 */
#ifndef RA_CLI_PARSER_H
#define RA_CLI_PARSER_H

#include <stdint.h>
#include <stdio.h>

#define EXIT_NO          1 /* the agent said no */
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3

enum action {
	ACT_NONE,
	ACT_HELP,
	ACT_STATUS,
	ACT_STATS,
	ACT_RELOAD,
	ACT_CONNS,
	ACT_CONN,
	ACT_WATCH,
	ACT_POLICY_GET,
	ACT_POLICY_SET,
	ACT_POLICY_VALIDATE,
	ACT_POLICY_HISTORY,
	ACT_FLEET_INIT,
	ACT_FLEET_AGENTS,
	ACT_FLEET_CONNS,
	ACT_FLEET_POLICY_GET,
	ACT_FLEET_POLICY_SET,
	ACT_FLEET_POLICY_DELETE,
	ACT_FLEET_POLICY_HISTORY,
	ACT_FLEET_CALL, /* then `action` is the command called, and fleet_call is set */
};

/* redirectctl fleet's connection to NATS, and the names it uses. */
struct fleet_opts {
	const char *server; /* "nats://127.0.0.1:4222" */
	const char *user, *password, *creds;
	const char *tls_ca, *tls_cert, *tls_key;
	const char *inbox;  /* NULL: "_INBOX.<user>", or "_INBOX" */
	const char *prefix; /* subjects: "redirect" */
};

/* Everything the command line says, parsed and checked. */
struct request {
	enum action action;
	/* global */
	const char *socket_path; /* NULL: the default */
	const char *target, *ca, *cert, *key;
	int json;
	/* conns */
	unsigned long limit;
	int64_t since_us, until_us; /* durations before now, resolved at parse time */
	const char *dst_cidr;       /* checked by the agent, which says which part is wrong */
	uint32_t dst_port;
	const char *state, *verdict, *redirect_state;
	/* conn */
	uint64_t id;
	/* watch */
	uint64_t after;
	/* policy */
	const char *file;
	long long expected_version; /* -1: the version read just before */
	unsigned simulate;
	/* help */
	const struct command *help_for; /* NULL: every command, or ... */
	const char *help_group;         /* ... the commands of one group ("policy") */
	/* fleet */
	int fleet;      /* a fleet command: over NATS */
	int fleet_call; /* fleet call UUID COMMAND: action is COMMAND's */
	struct fleet_opts nats;
	const char *agent;      /* an agent's UUID (call, conns --agent) */
	const char *policy_key; /* a policy key: "group.NAME" or "agent.UUID" */
	char key_buf[160];
	long long expected_revision; /* -1: none */
	int follow;
	int64_t ttl_s; /* fleet init: the inventory's age limit */
};

struct command;

/*
 * Parse argv into rq. Returns 0, or EXIT_USAGE with the reason and the
 * relevant usage printed on stderr; --help and --version are answered here
 * (rq->action is then ACT_NONE and the return 0).
 */
int parse_command_line(int argc, char **argv, struct request *rq);

/* The usage of one command (NULL: every command), to f. */
void print_usage(FILE *f, const struct command *cmd);

/* The usage of every command of a group ("policy"), to f. */
void print_group_usage(FILE *f, const char *group);

#endif
