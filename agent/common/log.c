#include "log.h"

#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#ifdef _WIN32
#include <io.h>
#else
#include <syslog.h>
#include <unistd.h>
#endif

static enum log_target log_target = LOG_TARGET_STDERR;
static _Atomic enum log_level log_level = LOG_LEVEL_INFO; /* changed by a reload */
static FILE *log_stream;                                  /* LOG_TARGET_STREAM */

void
log_init(const char *ident, enum log_target target, enum log_level level)
{
	log_target = target;
	log_level = level;
#ifdef _WIN32
	(void)ident;
	if (target == LOG_TARGET_SYSLOG)
		log_target = LOG_TARGET_STDERR; /* no syslog: the caller asked for a stream */
#else
	if (target == LOG_TARGET_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
#endif
}

void
log_init_stream(FILE *f, enum log_level level)
{
	log_stream = f;
	log_target = f != NULL ? LOG_TARGET_STREAM : LOG_TARGET_STDERR;
	log_level = level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
	    {"error", LOG_LEVEL_ERROR},
	    {"warn", LOG_LEVEL_WARN},
	    {"info", LOG_LEVEL_INFO},
	    {"debug", LOG_LEVEL_DEBUG},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

static void
log_vwrite(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	static const char *const names[8] = {
	    [LOG_LEVEL_ERROR] = "error",
	    [LOG_LEVEL_WARN] = "warn",
	    [LOG_LEVEL_INFO] = "info",
	    [LOG_LEVEL_DEBUG] = "debug",
	};
	char line[2048];
	size_t off = 0;
	int n;

	if (level > log_level)
		return;

	if (log_target == LOG_TARGET_JOURNAL) {
		n = snprintf(line, sizeof(line), "<%d>", (int)level);
		off = n > 0 ? (size_t)n : 0;
	} else if (log_target == LOG_TARGET_STDERR || log_target == LOG_TARGET_STREAM) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line + off, sizeof(line) - off, ".%03ldZ %s: ", ts.tv_nsec / 1000000L,
		    names[level]);
		off += n > 0 ? (size_t)n : 0;
	}

	n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (n > 0)
		off += (size_t)n;
	if (off >= sizeof(line) - 1)
		off = sizeof(line) - 2; /* truncated: keep the newline */
	if (errnum != 0) {
		n = snprintf(line + off, sizeof(line) - off, ": %s", err_str(errnum));
		if (n > 0)
			off += (size_t)n;
		if (off >= sizeof(line) - 1)
			off = sizeof(line) - 2;
	}

#ifndef _WIN32
	if (log_target == LOG_TARGET_SYSLOG) {
		line[off] = '\0';
		syslog((int)level, "%s", line);
		return;
	}
#endif
	line[off++] = '\n';
	if (log_target == LOG_TARGET_STREAM) {
		/* Whole lines, flushed at once: a log file read while the agent runs. */
		fwrite(line, 1, off, log_stream);
		fflush(log_stream);
		return;
	}
	/* One write per line; a short write to stderr is not worth retrying. */
	if (write(2, line, (unsigned)off) < 0)
		return;
}

#define LOG_BODY(level, errnum)                                                                    \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vwrite(level, errnum, fmt, ap);                                                \
		va_end(ap);                                                                        \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	int saved = errno;

	LOG_BODY(LOG_LEVEL_WARN, saved);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, 0);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, 0);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;

	LOG_BODY(LOG_LEVEL_ERROR, saved);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_ERROR, 0);
	exit(1);
}
