/*
 * paths_win.c: default places on Windows (paths.h).
 */
#include "paths.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

const char *
paths_state_dir(char *buf, size_t len)
{
	const char *base = getenv("ProgramData");

	snprintf(buf, len, "%s\\redirect-agent",
	    base != NULL && base[0] != '\0' ? base : "C:\\ProgramData");
	return buf;
}

const char *
paths_runtime_dir(char *buf, size_t len)
{
	return paths_state_dir(buf, len);
}

const char *
paths_join(char *buf, size_t len, const char *dir, const char *file)
{
	snprintf(buf, len, "%s\\%s", dir, file);
	return buf;
}

int
paths_is_absolute(const char *path)
{
	if (isalpha((unsigned char)path[0]) && path[1] == ':' &&
	    (path[2] == '\\' || path[2] == '/'))
		return 1;
	/* \\server\share\... (and \\?\C:\...) */
	return (path[0] == '\\' || path[0] == '/') && (path[1] == '\\' || path[1] == '/') &&
	       path[2] != '\0' && path[2] != '\\' && path[2] != '/';
}
