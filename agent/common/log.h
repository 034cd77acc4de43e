/*
 * log.h: the agent's one logging facility.
 *
 * Lines go to stderr (foreground, or under systemd where journald reads the
 * "<N>" syslog priority prefix) or to syslog (daemonized). Every call writes
 * one whole line with a single write(2), so lines from different threads
 * never interleave.
 */
#ifndef RA_LOG_H
#define RA_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum log_level {
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_WARN = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

enum log_target {
	LOG_TARGET_STDERR,  /* timestamped lines for a terminal */
	LOG_TARGET_JOURNAL, /* "<N>" priority prefix, no timestamp */
	LOG_TARGET_SYSLOG,  /* Linux only; stderr elsewhere */
	LOG_TARGET_STREAM,  /* timestamped lines to a FILE (log_init_stream) */
};

#ifdef _WIN32
/* mingw-w64 built with __USE_MINGW_ANSI_STDIO: C99 formats (%zu, %lld). */
#define LOG_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#else
#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#endif

/* Set where lines go and the most verbose level written. Call before any thread starts. */
void log_init(const char *ident, enum log_target target, enum log_level level);

/*
 * Write timestamped lines to f (the Windows service's log file), each
 * flushed as it is written. The caller keeps f open while anything logs;
 * NULL goes back to stderr.
 */
void log_init_stream(FILE *f, enum log_level level);

/* Parse "error", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

enum log_level log_get_level(void);

/* The level from now on (a reload). Thread-safe. */
void log_set_level(enum log_level level);

/* log_warn appends ": " and err_str(errno) (err.h); log_warnx does not. */
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);

/* Start-up failures and broken invariants only: log at error level and exit(1). */
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

#endif
