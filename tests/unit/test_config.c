/* Unit tests: configuration defaults and the INI parser (agent/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static struct config cfg;
static char err[512];

static int
load(const char *text)
{
	config_defaults(&cfg);
	err[0] = '\0';
	return config_load_string(&cfg, "test.conf", text, err, sizeof(err));
}

static void
test_defaults(void **state)
{
	(void)state;
	unsetenv("STATE_DIRECTORY");
	unsetenv("RUNTIME_DIRECTORY");
	config_defaults(&cfg);
	assert_int_equal(cfg.listen_port, 15001);
	assert_int_equal(cfg.mark, 0x1);
	assert_int_equal(cfg.n_redirect_ports, 2);
	assert_int_equal(cfg.redirect_ports[0].lo, 80);
	assert_int_equal(cfg.redirect_ports[1].lo, 443);
	assert_int_equal(cfg.n_redirect_cidrs, 2);
	assert_int_equal(cfg.n_exclude_cidrs, 2);
	assert_string_equal(cfg.db_path, "/var/lib/redirect-agent/agent.db");
	assert_string_equal(cfg.local_socket, "/run/redirect-agent/agent.sock");

	setenv("STATE_DIRECTORY", "/var/lib/x:/var/lib/y", 1);
	setenv("RUNTIME_DIRECTORY", "/run/x", 1);
	config_defaults(&cfg);
	assert_string_equal(cfg.db_path, "/var/lib/x/agent.db");
	assert_string_equal(cfg.local_socket, "/run/x/agent.sock");
	unsetenv("STATE_DIRECTORY");
	unsetenv("RUNTIME_DIRECTORY");
}

static void
test_good_file(void **state)
{
	(void)state;
	assert_int_equal(load("; comment\n"
			      "[agent]\nlog_level = debug\n"
			      "[proxy]\n"
			      "listen_port = 16000\n"
			      "mark = 0x40\n"
			      "agent_id = edge-1\n"
			      "redirect_ports = 80, 8000-8100\n"
			      "redirect_cidrs = 10.0.0.0/8 fd00::/8\n"
			      "exclude_cidrs =\n"
			      "connect_timeout_ms = 250\n"
			      "idle_timeout_s = 0\n"
			      "max_sessions = 100\n"
			      "workers = 1\n"
			      "[db]\npath = /tmp/x.db\nretention_days = 7\nmax_rows = 0\n"
			      "[api]\nlocal_socket = /tmp/x.sock\n"),
	    0);
	assert_string_equal(err, "");
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg.listen_port, 16000);
	assert_int_equal(cfg.mark, 0x40);
	assert_string_equal(cfg.agent_id, "edge-1");
	assert_int_equal(cfg.n_redirect_ports, 2);
	assert_int_equal(cfg.redirect_ports[1].hi, 8100);
	assert_int_equal(cfg.n_redirect_cidrs, 2);
	assert_int_equal(cfg.n_exclude_cidrs, 0); /* empty means none */
	assert_int_equal(cfg.connect_timeout_ms, 250);
	assert_int_equal(cfg.idle_timeout_s, 0);
	assert_int_equal(cfg.max_sessions, 100);
	assert_string_equal(cfg.db_path, "/tmp/x.db");
	assert_int_equal(cfg.retention_days, 7);
	assert_int_equal(cfg.max_rows, 0);
	assert_string_equal(cfg.local_socket, "/tmp/x.sock");
}

/* Each bad file names the file, the line and the key. */
static void
test_bad_files(void **state)
{
	static const struct {
		const char *text;
		const char *expect;
	} cases[] = {
	    {"[proxy]\nlisten_port = 0\n", "test.conf:2: [proxy] listen_port: 0 is out of range"},
	    {"[proxy]\nlisten_port = 70000\n", "test.conf:2: [proxy] listen_port:"},
	    {"[proxy]\nlisten_port = http\n",
		"test.conf:2: [proxy] listen_port: 'http' is not a number"},
	    {"[proxy]\nlisten_port =\n", "test.conf:2: [proxy] listen_port: a value is required"},
	    {"[proxy]\nmark = 0\n", "test.conf:2: [proxy] mark:"},
	    {"[proxy]\nmark = 0x1ffffffff\n", "test.conf:2: [proxy] mark:"},
	    {"\n\n[proxy]\nlisten_prot = 1\n", "test.conf:4: [proxy] listen_prot: unknown key"},
	    {"[proxxy]\nlisten_port = 1\n", "test.conf:1: [proxxy]: unknown section"},
	    {"listen_port = 1\n", "test.conf:1: listen_port: a key before any [section]"},
	    {"[proxy]\nmark = 0x2\n\n[db]\n[proxy]\nmark = 0x4\n",
		"test.conf:6: [proxy] mark: set twice (first on line 2)"},
	    {"[proxy\nmark = 1\n", "test.conf:1: syntax error"},
	    {"[proxy]\n= 1\n", "test.conf:2: syntax error"},
	    {"[proxy]\nredirect_cidrs = 10.0.0.1/8\n",
		"test.conf:2: [proxy] redirect_cidrs: '10.0.0.1/8' has host bits"},
	    {"[proxy]\nredirect_ports = 80,0\n",
		"test.conf:2: [proxy] redirect_ports: '0' is not a port"},
	    {"[proxy]\nagent_id = a b\n", "test.conf:2: [proxy] agent_id:"},
	    {"[proxy]\nagent_id = abcdefghijklmnopqrstuvwxyz0123456789\n",
		"test.conf:2: [proxy] agent_id: must be"},
	    {"[db]\npath = relative.db\n",
		"test.conf:2: [db] path: 'relative.db' is not an absolute path"},
	    {"[agent]\nlog_level = loud\n", "test.conf:2: [agent] log_level:"},
	    {"[proxy]\nthis line has no equals sign\n", "test.conf:2: syntax error"},
	    {"[proxy]\nredirect_ports = 15000-15002\n",
		"test.conf: [proxy] redirect_ports: includes listen_port 15001"},
	    {"[proxy]\nlisten_port = 1\nmark = 2\nmark = x\n", "test.conf:4: [proxy] mark:"},
	    {"[proxy]\nmode = bridge\n",
		"test.conf:2: [proxy] mode: 'bridge' is not one of redirect, tproxy"},
	    {"[proxy]\ntproxy_table = 254\n", "test.conf:2: [proxy] tproxy_table: 254 is a table"},
	    {"[proxy]\nmark = 0x80000001\n",
		"test.conf: [proxy] mark 0x80000001, escape_mark 0x80000000 must not share bits"},
	    {"[proxy]\nmode = tproxy\ntproxy_mark = 0x3\n",
		"test.conf: [proxy] mark 0x1, escape_mark 0x80000000 and tproxy_mark"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(cases[i].text), -1);
		if (strncmp(err, cases[i].expect, strlen(cases[i].expect)) != 0)
			fail_msg("case %zu: got '%s', want prefix '%s'", i, err, cases[i].expect);
	}
}

/* What inih did not: long lines, inline comments, a BOM, CRLF. */
static void
test_syntax(void **state)
{
	char *text = malloc(64 * 1024);
	size_t off;

	(void)state;
	assert_non_null(text);
	/* The documented 256 CIDRs on one line (about 3,500 bytes). */
	off = (size_t)snprintf(text, 64, "[proxy]\nredirect_cidrs = ");
	for (int i = 0; i < CONFIG_MAX_CIDRS; i++)
		off += (size_t)snprintf(text + off, 64, "%s10.%d.0.0/16", i ? ", " : "", i);
	snprintf(text + off, 64, "\n");
	assert_int_equal(load(text), 0);
	assert_int_equal(cfg.n_redirect_cidrs, CONFIG_MAX_CIDRS);
	assert_int_equal(cfg.redirect_cidrs[255].addr[1], 255);
	free(text);

	assert_int_equal(load("\xEF\xBB\xBF[proxy]\r\nmark = 0x4 ; our bit\r\n"
			      "# a comment\r\nagent_id = a;b\r\n"),
	    -1); /* ';' without a blank before it is part of the value: not an id */
	assert_int_equal(load("\xEF\xBB\xBF[proxy]\r\nmark = 0x4 ; our bit\r\n"
			      "# a comment\r\n  listen_port=16001  \r\n"),
	    0);
	assert_int_equal(cfg.mark, 0x4);
	assert_int_equal(cfg.listen_port, 16001);
}

/* Files that are not configuration: refused at once, never read forever. */
static void
test_not_a_config(void **state)
{
	char path[] = "/tmp/ra-config-XXXXXX";
	int fd;

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, "/dev/zero", err, sizeof(err)), -1);
	assert_string_equal(err, "/dev/zero: not a regular file");
	assert_int_equal(config_load_file(&cfg, "/tmp", err, sizeof(err)), -1);
	assert_string_equal(err, "/tmp: not a regular file");

	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, "[proxy]\nmark = 0x2\0\n", 20), 20);
	close(fd);
	assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: a NUL byte"));

	/* Larger than CONFIG_FILE_MAX: refused before it is read. */
	assert_int_equal(truncate(path, CONFIG_FILE_MAX + 1), 0);
	assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than"));
	unlink(path);
}

/* Read a whole file from the source tree. */
static char *
slurp(const char *rel)
{
	char p[1024];
	FILE *f;
	char *buf = malloc(1 << 20);
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", SRCDIR, rel);
	if (buf == NULL || (f = fopen(p, "r")) == NULL)
		fail_msg("cannot read %s", p);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static char *
generated(void (*print)(FILE *))
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	print(f);
	fclose(f);
	return text;
}

/*
 * The shipped config and the README's table come from the table: a key
 * added, renamed or given another default without them fails here. To
 * refresh: redirect-agent --print-config > deploy/agent.conf; the README's
 * table is written to config-reference.md on a mismatch.
 */
static void
test_docs_from_table(void **state)
{
	char *want = generated(config_print_template), *have = slurp("deploy/agent.conf");
	char *ref = generated(config_print_reference), *readme = slurp("README.md");

	(void)state;
	if (strcmp(want, have) != 0)
		fail_msg("deploy/agent.conf differs from redirect-agent --print-config:\n%s", want);
	if (strstr(readme, ref) == NULL) {
		/* Whole, in a file: a failure message is cut short. */
		FILE *out = fopen("config-reference.md", "w");

		if (out != NULL) {
			fputs(ref, out);
			fclose(out);
		}
		fail_msg("README.md lacks the configuration table: it is in "
			 "config-reference.md (the test's working directory)");
	}
	/* And the template itself parses, every key commented or not. */
	{
		char *uncommented = strdup(want), *o = uncommented;

		for (const char *i = want; *i != '\0'; i++) {
			if (*i == ';' && (i == want || i[-1] == '\n') && i[1] != ' ')
				continue; /* ";key = default" becomes "key = default" */
			*o++ = *i;
		}
		*o = '\0';
		/* Computed defaults read "(default: ...)": give them real values. */
		config_defaults(&cfg);
		{
			char *line, *save = NULL, *text = strdup(uncommented),
				    *out = calloc(1, 1 << 20);
			size_t off = 0;

			for (line = strtok_r(text, "\n", &save); line != NULL;
			     line = strtok_r(NULL, "\n", &save)) {
				if (strstr(line, "(default:") != NULL)
					off += (size_t)snprintf(out + off, 256, "%.*s= /tmp/x\n",
					    (int)(strchr(line, '=') - line), line);
				else
					off += (size_t)snprintf(out + off, 4096, "%s\n", line);
			}
			if (load(out) != 0)
				fail_msg("the template does not parse: %s", err);
			free(text);
			free(out);
		}
		free(uncommented);
	}
	free(want);
	free(have);
	free(ref);
	free(readme);
}

static void
test_file_io(void **state)
{
	char path[] = "/tmp/ra-config-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("[proxy]\nlisten_port = 15999\n[db]\nmax_rows = x\n", f);
	fclose(f);
	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":4: [db] max_rows:"));
	assert_int_equal(strncmp(err, path, strlen(path)), 0);
	unlink(path);

	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, "/nonexistent/agent.conf", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/agent.conf: cannot open"));
}

static void
test_write_file(void **state)
{
	char path[] = "/tmp/ra-write-XXXXXX";
	char *good[] = {"proxy.mark=0x8", "api.readers=", "db.retention_days=7"};
	char *bad_form[] = {"proxy.mark"};
	char *bad_key[] = {"proxy.colour=blue"};
	char *two_lines[] = {"api.admins=a\n[db]\npath=/evil"};
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(config_write_file(path, good, 3, err, sizeof(err)), 0);
	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.mark, 0x8);
	assert_int_equal(cfg.retention_days, 7);
	assert_int_equal(cfg.n_readers, 0);

	/* failures name the setting and leave the file as it was */
	assert_int_equal(config_write_file(path, bad_form, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'proxy.mark' is not section.key=value"));
	assert_int_equal(config_write_file(path, bad_key, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "[proxy] colour: unknown key"));
	assert_int_equal(config_write_file(path, two_lines, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "api.admins: a value may not span lines"));
	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.mark, 0x8);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_good_file),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_not_a_config),
	    cmocka_unit_test(test_docs_from_table),
	    cmocka_unit_test(test_file_io),
	    cmocka_unit_test(test_write_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
