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
	ACT_CONNS,
	ACT_CONN,
	ACT_WATCH,
	ACT_POLICY_GET,
	ACT_POLICY_SET,
	ACT_POLICY_VALIDATE,
	ACT_POLICY_HISTORY,
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
