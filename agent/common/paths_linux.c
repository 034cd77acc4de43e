/*
 * paths_linux.c: default places on Linux (paths.h).
 */
#include "paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
env_dir(const char *var, const char *fallback, char *buf, size_t len)
{
	const char *dir = getenv(var);

	if (dir == NULL || dir[0] == '\0')
		snprintf(buf, len, "%s", fallback);
	else
		snprintf(buf, len, "%.*s", (int)strcspn(dir, ":"), dir);
	return buf;
}

const char *
paths_state_dir(char *buf, size_t len)
{
	return env_dir("STATE_DIRECTORY", "/var/lib/redirect-agent", buf, len);
}

const char *
paths_runtime_dir(char *buf, size_t len)
{
	return env_dir("RUNTIME_DIRECTORY", "/run/redirect-agent", buf, len);
}

const char *
paths_join(char *buf, size_t len, const char *dir, const char *file)
{
	snprintf(buf, len, "%s/%s", dir, file);
	return buf;
}

int
paths_is_absolute(const char *path)
{
	return path[0] == '/';
}
