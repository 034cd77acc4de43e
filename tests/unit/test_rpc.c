/* Unit tests: the API layer: certificate identities to roles and the [api] keys
 * behind them; request validation (agent/rpc/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "query.h"
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

/* The API's request validation names the field at fault. */
static void
test_request_validation(void **state)
{
	static const struct {
		const char *cidr, *state, *verdict, *rstate;
		uint32_t port, page;
		int64_t since, until;
		const char *expect; /* NULL: valid */
	} cases[] = {
	    {"", "", "", "", 0, 0, 0, 0, NULL},
	    {"10.0.0.0/8", "closed", "allow", "by_other", 443, 1000, 1, 2, NULL},
	    {"10.0.0.1/8", "", "", "", 0, 0, 0, 0, "dst_cidr: '10.0.0.1/8' has host bits"},
	    {"bogus", "", "", "", 0, 0, 0, 0, "dst_cidr:"},
	    {"", "opened", "", "", 0, 0, 0, 0, "state: 'opened' is not one of"},
	    {"", "", "maybe", "", 0, 0, 0, 0, "verdict: 'maybe'"},
	    {"", "", "", "self", 0, 0, 0, 0, "redirect_state: 'self'"},
	    {"", "", "", "", 70000, 0, 0, 0, "dst_port: 70000"},
	    {"", "", "", "", 0, 1001, 0, 0, "page_size: 1001 is over the limit"},
	    {"", "", "", "", 0, 0, -1, 0, "since_us/until_us"},
	    {"", "", "", "", 0, 0, 5, 4, "since is after until"},
	    {"", "averyveryverylongstate", "", "", 0, 0, 0, 0, "state: too long"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Redirect__V1__ListConnectionsRequest rq =
		    REDIRECT__V1__LIST_CONNECTIONS_REQUEST__INIT;
		struct conn_filter f;
		char msg[256] = "";
		int r;

		rq.dst_cidr = (char *)cases[i].cidr;
		rq.state = (char *)cases[i].state;
		rq.verdict = (char *)cases[i].verdict;
		rq.redirect_state = (char *)cases[i].rstate;
		rq.dst_port = cases[i].port;
		rq.page_size = cases[i].page;
		rq.since_us = cases[i].since;
		rq.until_us = cases[i].until;
		r = rpc_filter_from_request(&rq, &f, msg, sizeof(msg));
		if (cases[i].expect == NULL) {
			if (r != 0)
				fail_msg("case %zu: unexpected error '%s'", i, msg);
		} else if (r == 0 || strncmp(msg, cases[i].expect, strlen(cases[i].expect)) != 0) {
			fail_msg("case %zu: got '%s', want '%s'", i, msg, cases[i].expect);
		}
	}
}

/* A string field holding a NUL is found, however deep; other bytes are not mistaken for one. */
static void
test_nul_in_string(void **state)
{
	/* SetPolicyRequest: document_json (1) = "{}\0x", expected_version (2) = 0 */
	static const uint8_t with_nul[] = {0x0a, 4, '{', '}', 0, 'x', 0x10, 0};
	static const uint8_t clean[] = {0x0a, 2, '{', '}', 0x10, 0};
	/* ListConnectionsRequest: a since_us of 0 and a port of 0: NULs, but not in a string */
	static const uint8_t zeros[] = {0x08, 0, 0x10, 0};
	const char *name;

	(void)state;
	name = rpc_string_with_nul(
	    &redirect__v1__set_policy_request__descriptor, with_nul, sizeof(with_nul));
	assert_non_null(name);
	assert_string_equal(name, "document_json");
	assert_null(rpc_string_with_nul(
	    &redirect__v1__set_policy_request__descriptor, clean, sizeof(clean)));
	assert_null(rpc_string_with_nul(
	    &redirect__v1__list_connections_request__descriptor, zeros, sizeof(zeros)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_api_keys),
	    cmocka_unit_test(test_request_validation),
	    cmocka_unit_test(test_nul_in_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
