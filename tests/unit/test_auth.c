/* Unit tests: certificate identities to roles, and the [api] keys behind them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "rpc_internal.h"

static struct config cfg;

static enum rpc_role
role(const char *id)
{
	return rpc_role_of_identity(&cfg, id, strlen(id));
}

static void
test_roles(void **state)
{
	char err[256];

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(config_load_string(&cfg, "t",
			     "[api]\nadmins = ops-console, alice@example.com\n"
			     "readers = dashboard,ops-console   grafana\n",
			     err, sizeof(err)),
	    0);
	assert_int_equal(cfg.n_admins, 2);
	assert_int_equal(cfg.n_readers, 3);
	assert_int_equal(role("ops-console"), RPC_ROLE_ADMIN); /* admin wins over reader */
	assert_int_equal(role("alice@example.com"), RPC_ROLE_ADMIN);
	assert_int_equal(role("dashboard"), RPC_ROLE_READER);
	assert_int_equal(role("grafana"), RPC_ROLE_READER);
	/* exact matches only: no prefixes, no case folding */
	assert_int_equal(role("dash"), RPC_ROLE_NONE);
	assert_int_equal(role("dashboard2"), RPC_ROLE_NONE);
	assert_int_equal(role("Dashboard"), RPC_ROLE_NONE);
	assert_int_equal(role(""), RPC_ROLE_NONE);
	/* a length-delimited identity: bytes after len do not count */
	assert_int_equal(rpc_role_of_identity(&cfg, "grafanaXYZ", 7), RPC_ROLE_READER);

	config_defaults(&cfg);
	assert_int_equal(cfg.n_admins + cfg.n_readers, 0);
	assert_int_equal(role("anyone"), RPC_ROLE_NONE);
}

static void
test_api_keys(void **state)
{
	char err[256];
	char long_id[200];

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(config_load_string(&cfg, "t",
			     "[api]\nremote_listen = [::]:50051\n"
			     "tls_cert = /a.pem\ntls_key = /a.key\n"
			     "tls_client_ca = /ca.pem\n",
			     err, sizeof(err)),
	    0);
	assert_string_equal(cfg.remote_listen, "[::]:50051");

	config_defaults(&cfg);
	assert_int_equal(
	    config_load_string(&cfg, "t", "[api]\nremote_listen = 50051\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t:2: [api] remote_listen: '50051' is not HOST:PORT"));
	config_defaults(&cfg);
	assert_int_equal(
	    config_load_string(&cfg, "t", "[api]\nremote_listen = h:99999\n", err, sizeof(err)),
	    -1);
	config_defaults(&cfg);
	assert_int_equal(
	    config_load_string(&cfg, "t",
		"[api]\nremote_listen = 0.0.0.0:50051\ntls_cert = /a.pem\n", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "needs tls_cert, tls_key and tls_client_ca"));

	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	{
		char text[512];

		snprintf(text, sizeof(text), "[api]\nadmins = %s\n", long_id);
		config_defaults(&cfg);
		assert_int_equal(config_load_string(&cfg, "t", text, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "identity longer than"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_api_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
