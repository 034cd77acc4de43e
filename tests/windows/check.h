/*
 * check.h: a minimal assertion harness for the Windows-only tests.
 * cmocka has no mingw-w64 build in Debian, so these tests carry their own.
 */
#ifndef RA_CHECK_H
#define RA_CHECK_H

#include <stdio.h>

static int check_failures, check_passes;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			check_passes++;                                                            \
		} else {                                                                           \
			check_failures++;                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ == b_) {                                                                    \
			check_passes++;                                                            \
		} else {                                                                           \
			check_failures++;                                                          \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,        \
			    __LINE__, #a, #b, a_, b_);                                             \
		}                                                                                  \
	} while (0)

static int
check_finish(const char *name)
{
	printf("%s: %d checks passed, %d failed\n", name, check_passes, check_failures);
	return check_failures == 0 && check_passes > 0 ? 0 : 1;
}

#endif
