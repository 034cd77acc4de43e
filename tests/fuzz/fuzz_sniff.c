/* libFuzzer target: the server-name parser reads bytes a client chose. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[SNIFF_NAME_MAX + 1];

	if (sniff_server_name(data, size, out, sizeof(out), NULL) == SNIFF_FOUND &&
	    strlen(out) > SNIFF_NAME_MAX)
		__builtin_trap();
	return 0;
}
