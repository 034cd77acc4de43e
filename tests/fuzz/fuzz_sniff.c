/* libFuzzer target: the server-name parser reads bytes a client chose. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sniff_names out;

	if (sniff_server_name(data, size, &out) == SNIFF_FOUND &&
	    (strlen(out.name) > SNIFF_NAME_MAX || strlen(out.alt) > SNIFF_NAME_MAX ||
		out.name[0] == '\0'))
		__builtin_trap();
	return 0;
}
