/*
 * The configuration's paths on Windows, run under wine: what counts as
 * absolute there (a drive, "C:\..." or "C:/...", or a UNC path,
 * "\\server\share\..." and "\\?\C:\..."), and the config reader and the
 * installer's writer taking such paths, refusing relative ones with the
 * same message as on Linux. The same config.c the Linux agent runs; its
 * cmocka tests check the "/..." side.
 */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "paths.h"

static void
test_absolute(void)
{
	static const struct {
		const char *path;
		int absolute;
	} cases[] = {
	    {"C:\\certs\\agent.pem", 1},
	    {"c:/certs/agent.pem", 1},
	    {"D:\\", 1},
	    {"\\\\server\\share\\x", 1},
	    {"//server/share/x", 1},
	    {"\\\\?\\C:\\certs\\agent.pem", 1},
	    {"agent.pem", 0},
	    {"certs\\agent.pem", 0},
	    {"C:agent.pem", 0},        /* relative to drive C's current folder */
	    {"\\certs\\agent.pem", 0}, /* relative to the current drive */
	    {"/etc/agent.pem", 0},
	    {"\\\\", 0},
	    {"\\\\\\server", 0},
	    {"C:", 0},
	    {"", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = paths_is_absolute(cases[i].path);

		if (got != cases[i].absolute)
			fprintf(stderr, "paths_is_absolute(\"%s\") = %d\n", cases[i].path, got);
		CHECK_EQ(got, cases[i].absolute);
	}
}

static void
test_config_paths(void)
{
	static struct config cfg; /* large */
	char err[512];

	config_defaults(&cfg);
	CHECK_EQ(config_load_string(&cfg, "test.conf",
		     "[api]\n"
		     "remote_listen = 127.0.0.1:50051\n"
		     "tls_cert = C:\\certs\\agent.pem\n"
		     "tls_key = \\\\server\\share\\agent.key\n"
		     "tls_client_ca = c:/certs/ca.pem\n"
		     "local_socket = C:\\ProgramData\\redirect-agent\\agent.sock\n"
		     "[db]\n"
		     "path = \\\\?\\D:\\data\\agent.db\n",
		     err, sizeof(err)),
	    0);
	CHECK(strcmp(cfg.tls_cert, "C:\\certs\\agent.pem") == 0);
	CHECK(strcmp(cfg.tls_key, "\\\\server\\share\\agent.key") == 0);
	CHECK(strcmp(cfg.tls_client_ca, "c:/certs/ca.pem") == 0);
	CHECK(strcmp(cfg.db_path, "\\\\?\\D:\\data\\agent.db") == 0);

	static const struct {
		const char *text, *err;
	} bad[] = {
	    {"[db]\npath = certs\\agent.db\n",
		"test.conf:2: [db] path: 'certs\\agent.db' is not an absolute path"},
	    {"[db]\npath = C:agent.db\n",
		"test.conf:2: [db] path: 'C:agent.db' is not an absolute path"},
	    {"[db]\npath = /var/lib/agent.db\n",
		"test.conf:2: [db] path: '/var/lib/agent.db' is not an absolute path"},
	    {"[api]\nlocal_socket = \\agent.sock\n",
		"test.conf:2: [api] local_socket: '\\agent.sock' is not an absolute path"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config_defaults(&cfg);
		err[0] = '\0';
		CHECK_EQ(config_load_string(&cfg, "test.conf", bad[i].text, err, sizeof(err)), -1);
		if (strcmp(err, bad[i].err) != 0)
			fprintf(stderr, "got '%s'\nwant '%s'\n", err, bad[i].err);
		CHECK(strcmp(err, bad[i].err) == 0);
	}
}

/* The defaults are absolute Windows paths under %ProgramData%. */
static void
test_defaults(void)
{
	static struct config cfg;
	char want[MAX_PATH];
	const char *pd = getenv("ProgramData");

	config_defaults(&cfg);
	CHECK(pd != NULL);
	snprintf(want, sizeof(want), "%s\\redirect-agent\\agent.db", pd != NULL ? pd : "?");
	CHECK(strcmp(cfg.db_path, want) == 0);
	snprintf(want, sizeof(want), "%s\\redirect-agent\\agent.sock", pd != NULL ? pd : "?");
	CHECK(strcmp(cfg.local_socket, want) == 0);
	CHECK(paths_is_absolute(cfg.db_path));
}

/* The installer's route (--write-config): a file written with such paths reads back. */
static void
test_write_config(void)
{
	static struct config cfg;
	char dir[MAX_PATH], path[MAX_PATH], err[512];
	char *ok[] = {"api.tls_cert=C:\\certs\\agent.pem", "db.path=\\\\server\\share\\agent.db"};
	char *rel[] = {"api.tls_cert=certs\\agent.pem"};

	CHECK(GetTempPathA(sizeof(dir), dir) > 0);
	snprintf(path, sizeof(path), "%sra-test-config-%lu.conf", dir,
	    (unsigned long)GetCurrentProcessId());
	CHECK_EQ(config_write_file(path, ok, 2, err, sizeof(err)), 0);
	config_defaults(&cfg);
	CHECK_EQ(config_load_file(&cfg, path, err, sizeof(err)), 0);
	CHECK(strcmp(cfg.tls_cert, "C:\\certs\\agent.pem") == 0);
	CHECK(strcmp(cfg.db_path, "\\\\server\\share\\agent.db") == 0);
	DeleteFileA(path);
	CHECK_EQ(config_write_file(path, rel, 1, err, sizeof(err)), -1);
	CHECK(strstr(err, "'certs\\agent.pem' is not an absolute path") != NULL);
	CHECK(GetFileAttributesA(path) == INVALID_FILE_ATTRIBUTES); /* nothing written */
}

int
main(void)
{
	test_absolute();
	test_config_paths();
	test_defaults();
	test_write_config();
	return check_finish("test_config");
}
