/*
 * sink_file.c: the ECS file sink. One JSON object per line, appended to
 * [export] ecs_file, for the log shippers enterprises already run (Elastic
 * Agent, Splunk UF, Fluent Bit, Wazuh). The file is rotated by size:
 * FILE.1 is the newest rotated file, FILE.<keep> the oldest kept.
 *
 * Exactly once across crashes and rotations: lines are written in sequence
 * order and acknowledged once flushed to the disk (fdatasync), so the file's
 * last complete line says how far the sink got, whatever the stored cursor
 * says. At start a torn last line (a crash mid-write) is cut off, and the
 * shipper resumes after the last whole one.
 */
#include "sink_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifndef _WIN32
#include <unistd.h>
#endif

#include "err.h"
#include "log.h"
#include "platform.h"
#include "shipper.h"

#define TAIL_MAX (ECS_RECORD_MAX + 2) /* the last line fits in this */

/* The last c in buf[0, n), or NULL (memrchr is not everywhere). */
static char *
last_of(char *buf, size_t n, char c)
{
	while (n > 0)
		if (buf[--n] == c)
			return buf + n;
	return NULL;
}

struct sink_file {
	char path[1024];
	uint64_t max_bytes;
	unsigned keep;
	FILE *f;
	uint64_t size;
	uint64_t last_sent; /* the newest sequence written, not yet flushed */
	char error[1400];   /* a path and why */
	struct shipper *sh;
};

static int
open_file(struct sink_file *s)
{
	struct stat st;

#ifdef _WIN32
	s->f = fopen(s->path, "ab"); /* the folder's access list guards it */
#else
	/* Every user's connections: readable by root and the file's group only. */
	int fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if ((s->f = fd >= 0 ? fdopen(fd, "ab") : NULL) == NULL && fd >= 0)
		close(fd);
#endif
	if (s->f == NULL) {
		snprintf(s->error, sizeof(s->error), "%s: %s", s->path, err_str(errno));
		return -1;
	}
	s->size = fstat(fileno(s->f), &st) == 0 ? (uint64_t)st.st_size : 0;
	s->error[0] = '\0';
	return 0;
}

/* FILE -> FILE.1 -> ... -> FILE.keep (dropped). */
static int
rotate(struct sink_file *s)
{
	char from[1100], to[1100];

	fclose(s->f);
	s->f = NULL;
	for (unsigned i = s->keep; i >= 1; i--) {
		snprintf(to, sizeof(to), "%s.%u", s->path, i);
		if (i == 1)
			snprintf(from, sizeof(from), "%s", s->path);
		else
			snprintf(from, sizeof(from), "%s.%u", s->path, i - 1);
		(void)remove(to); /* Windows' rename does not replace */
		if (rename(from, to) != 0 && errno != ENOENT) {
			/* Keep the file open (the next try rotates again), and say why. */
			snprintf(
			    s->error, sizeof(s->error), "rotating %s: %s", from, err_str(errno));
			(void)open_file(s);
			return -1;
		}
	}
	return open_file(s);
}

static int
file_ready(void *arg, char *why, size_t whylen)
{
	struct sink_file *s = arg;

	if (s->f == NULL && open_file(s) != 0) {
		snprintf(why, whylen, "%s", s->error);
		return 0;
	}
	return 1;
}

static int
file_send(void *arg, uint64_t seq, const char *rec, size_t len)
{
	struct sink_file *s = arg;

	if (s->f == NULL)
		return -1;
	if (s->size > 0 && s->size + len + 1 > s->max_bytes) {
		/* What is written so far is acknowledged before it moves. */
		if (fflush(s->f) != 0 || platform_fsync(s->f) != 0) {
			snprintf(s->error, sizeof(s->error), "%s: %s", s->path, err_str(errno));
			return -1;
		}
		shipper_ack_upto(s->sh, s->last_sent);
		if (rotate(s) != 0)
			return -1;
	}
	if (fwrite(rec, 1, len, s->f) != len || fputc('\n', s->f) == EOF) {
		snprintf(s->error, sizeof(s->error), "%s: %s", s->path, err_str(errno));
		return -1;
	}
	s->size += len + 1;
	s->last_sent = seq;
	return 0;
}

static int
file_flush(void *arg)
{
	struct sink_file *s = arg;

	if (s->f == NULL || fflush(s->f) != 0 || platform_fsync(s->f) != 0) {
		if (s->f != NULL)
			snprintf(s->error, sizeof(s->error), "%s: %s", s->path, err_str(errno));
		return -1;
	}
	shipper_ack_upto(s->sh, s->last_sent);
	return 0;
}

/*
 * The sequence of the last whole line of path (0: none), cutting off a
 * torn line after it.
 */
static uint64_t
last_line_seq(const char *path, int *empty)
{
	char *buf = malloc(TAIL_MAX + 1), *end, *line, *p;
	uint64_t seq = 0;
	long size, from;
	size_t n;
	FILE *f;

	*empty = 1;
	if (buf == NULL || (f = fopen(path, "r+b")) == NULL) {
		free(buf);
		return 0;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	from = size > TAIL_MAX ? size - TAIL_MAX : 0;
	fseek(f, from, SEEK_SET);
	n = fread(buf, 1, TAIL_MAX, f);
	buf[n] = '\0';
	*empty = size == 0;
	end = last_of(buf, n, '\n');
	if (end == NULL) {
		fclose(f);
		free(buf);
		return 0;
	}
	if ((size_t)(end - buf) + 1 < n) { /* a torn last line: cut it off */
		long keep = from + (long)(end - buf) + 1;

		fflush(f);
#ifdef _WIN32
		(void)_chsize(_fileno(f), keep);
#else
		(void)ftruncate(fileno(f), keep);
#endif
		log_warnx("export ecs_file: cut a torn last line off %s", path);
	}
	*end = '\0';
	line = last_of(buf, (size_t)(end - buf), '\n');
	line = line != NULL ? line + 1 : buf;
	/* The record's own sequence: "event":{..."sequence":N,...} */
	if ((p = strstr(line, "\"sequence\":")) != NULL)
		seq = strtoull(p + 11, NULL, 10);
	fclose(f);
	free(buf);
	return seq;
}

static uint64_t
file_recover(void *arg)
{
	struct sink_file *s = arg;
	char rotated[1100];
	int empty;
	uint64_t seq = last_line_seq(s->path, &empty);

	if (seq == 0 && empty) { /* just rotated: the last line is in FILE.1 */
		snprintf(rotated, sizeof(rotated), "%s.1", s->path);
		seq = last_line_seq(rotated, &empty);
	}
	return seq;
}

static void
file_attach(void *arg, struct shipper *sh)
{
	((struct sink_file *)arg)->sh = sh;
}

static void
file_close(void *arg)
{
	struct sink_file *s = arg;

	if (s->f != NULL)
		fclose(s->f);
	free(s);
}

static const struct sink_ops file_ops = {
    .name = "ecs_file",
    .ready = file_ready,
    .send = file_send,
    .flush = file_flush,
    .recover = file_recover,
    .attach = file_attach,
    .close = file_close,
};

int
sink_file_start(struct shipper **out, const char *path, unsigned max_mb, unsigned keep,
    const struct shipper_options *base, char *err, size_t errlen)
{
	struct sink_file *s = calloc(1, sizeof(*s));
	struct shipper_options opt = *base;

	*out = NULL;
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->max_bytes = (uint64_t)max_mb << 20;
	s->keep = keep;
	opt.ops = &file_ops;
	opt.sink = s;
	opt.window = 512;
	if (shipper_start(out, &opt, err, errlen) != 0) {
		free(s);
		return -1;
	}
	return 0;
}
