/* Unit tests: the serialized redirect records and context (agent/records.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "records.h"

static struct endpoint
ep(int family, const char *addr, uint16_t port)
{
	struct endpoint e;

	memset(&e, 0, sizeof(e));
	e.family = (uint8_t)family;
	e.port = port;
	assert_int_equal(inet_pton(family, addr, e.addr), 1);
	return e;
}

static void
test_records_layout(void **state)
{
	struct records_v1 r = {0x3, 0x4, ep(AF_INET, "10.77.0.2", 443)}, back;
	uint8_t buf[RECORDS_V1_LEN];
	static const uint8_t want[RECORDS_V1_LEN] = {1, 0, 0, 0, 3, 0, 0, 0, 4, 4, 10, 77, 0, 2, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xbb};

	(void)state;
	assert_int_equal(records_encode(buf, sizeof(buf), &r), RECORDS_V1_LEN);
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(records_decode(buf, sizeof(buf), &back), 0);
	assert_int_equal(back.incoming_mark, 3);
	assert_int_equal(back.own_mark, 4);
	assert_true(endpoint_equal(&back.orig_dst, &r.orig_dst));
	/* too small a buffer: nothing written */
	assert_int_equal(records_encode(buf, RECORDS_V1_LEN - 1, &r), 0);
}

static void
test_records_bad(void **state)
{
	struct records_v1 r = {0, 1, ep(AF_INET6, "fd77::2", 80)}, back;
	uint8_t buf[RECORDS_V1_LEN];

	(void)state;
	assert_int_equal(records_encode(buf, sizeof(buf), &r), RECORDS_V1_LEN);
	assert_int_equal(records_decode(buf, sizeof(buf), &back), 0);
	assert_true(endpoint_equal(&back.orig_dst, &r.orig_dst));
	assert_int_equal(records_decode(buf, sizeof(buf) - 1, &back), -EINVAL);
	buf[0] = 2; /* a version this build does not know */
	assert_int_equal(records_decode(buf, sizeof(buf), &back), -EINVAL);
	buf[0] = 1;
	buf[9] = 5; /* no such family */
	assert_int_equal(records_decode(buf, sizeof(buf), &back), -EINVAL);
}

static void
test_context(void **state)
{
	struct context_v1 c = {ep(AF_INET6, "fd77::2", 80), ep(AF_INET6, "fd77::1", 40000),
			      "edge-1"},
			  back;
	uint8_t buf[CONTEXT_V1_MAXLEN];
	size_t n;

	(void)state;
	n = context_encode(buf, sizeof(buf), &c);
	assert_int_equal(n, 40 + strlen("edge-1"));
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[1], 6);
	assert_int_equal(buf[39], 6);
	assert_memory_equal(buf + 40, "edge-1", 6);
	assert_int_equal(context_decode(buf, n, &back), 0);
	assert_true(endpoint_equal(&back.orig_dst, &c.orig_dst));
	assert_true(endpoint_equal(&back.orig_src, &c.orig_src));
	assert_string_equal(back.agent_id, "edge-1");
	/* the id length must account for every byte */
	assert_int_equal(context_decode(buf, n + 1, &back), -EINVAL);
	assert_int_equal(context_decode(buf, n - 1, &back), -EINVAL);
	buf[39] = 200;
	assert_int_equal(context_decode(buf, 240, &back), -EINVAL);
	assert_int_equal(context_encode(buf, 45, &c), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records_layout),
	    cmocka_unit_test(test_records_bad),
	    cmocka_unit_test(test_context),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
