/*
 * host_linux.c: host.h on Linux.
 */
#include "host.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *
host_machine_id(char *buf, size_t len)
{
	static const char *const files[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && buf[0] == '\0'; i++) {
		FILE *f = fopen(files[i], "re");

		if (f == NULL)
			continue;
		if (fgets(buf, (int)len, f) == NULL)
			buf[0] = '\0';
		buf[strcspn(buf, " \r\n")] = '\0';
		fclose(f);
	}
	return buf;
}

const char *
host_name(char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (gethostname(buf, len - 1) != 0)
		buf[0] = '\0';
	buf[len - 1] = '\0';
	return buf;
}
