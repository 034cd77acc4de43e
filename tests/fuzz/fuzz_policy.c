/* libFuzzer target: policy documents come from a remote console. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_problems pr;
	struct policy *p = policy_compile((const char *)data, size, &pr);

	if (p == NULL) {
		if (pr.n == 0) /* a refusal always says why */
			__builtin_trap();
		policy_problems_free(&pr);
		return 0;
	}
	/* A compiled policy answers any destination. */
	for (int fam = 0; fam < 2; fam++) {
		struct endpoint e;
		struct policy_input in = {&e, REDIRECT_NONE, "a.example", 0, "/bin/x"};

		memset(&e, 0, sizeof(e));
		e.family = fam ? AF_INET6 : AF_INET;
		if (size >= 16)
			memcpy(e.addr, data, 16);
		e.port = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 80;
		(void)policy_evaluate(p, &in);
	}
	policy_free(p);
	return 0;
}
