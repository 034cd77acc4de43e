/* Unit tests: sessions per uid (agent/proxy/uidcount.c), against a plain array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "uidcount.h"

/* Random adds and removes over a few colliding uids agree with a reference count. */
static void
test_against_reference(void **state)
{
	enum { SESSIONS = 512, UIDS = 64 };
	static unsigned ref[UIDS];
	uint32_t uids[UIDS];
	struct uidcount u;
	unsigned live = 0;

	(void)state;
	assert_int_equal(uidcount_init(&u, SESSIONS), 0);
	for (unsigned i = 0; i < UIDS; i++) /* multiples of the table size collide */
		uids[i] = i % 2 ? 1000 + i : (uint32_t)(i * (u.mask + 1));
	srand(7);
	for (int step = 0; step < 200000; step++) {
		unsigned k = (unsigned)rand() % UIDS;

		if ((rand() % 2 == 0 && live < SESSIONS) || ref[k] == 0) {
			if (live == SESSIONS)
				continue;
			uidcount_add(&u, uids[k]);
			ref[k]++;
			live++;
		} else {
			uidcount_remove(&u, uids[k]);
			ref[k]--;
			live--;
		}
		if (step % 97 == 0)
			for (unsigned i = 0; i < UIDS; i++)
				assert_int_equal(uidcount_get(&u, uids[i]), ref[i]);
	}
	for (unsigned i = 0; i < UIDS; i++)
		assert_int_equal(uidcount_get(&u, uids[i]), ref[i]);
	assert_int_equal(uidcount_get(&u, 4242424), 0);
	uidcount_free(&u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_against_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
