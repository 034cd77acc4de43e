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
	    {"[proxxy]\nlisten_port = 1\n", "test.conf:2: [proxxy] listen_port: unknown section"},
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
	    cmocka_unit_test(test_file_io),
	    cmocka_unit_test(test_write_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
