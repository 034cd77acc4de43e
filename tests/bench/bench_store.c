/*
 * bench_store: the database writer's CPU per 1,000 recorded connections.
 *
 * Connections are submitted as the event loop does (opened, relaying ten
 * connections later, closed forty later), paced at RATE per second so that
 * the writer batches as it does under load. The writer thread's own CPU
 * time (schedstat) is divided by the connections. Also printed: the disk the
 * database takes, per million connections.
 *
 * Baseline, measured in the same run on the same machine: the same rows
 * written by a plain prepared INSERT into a table with no index, in
 * transactions of the writer's typical batch, on this thread. The ratio says
 * what the schema (indexes, upsert, watch events) and the queue cost over
 * writing the bytes at all. Bounded: a fixed number of connections.
 *
 *   build/tests/bench_store [CONNECTIONS] [RATE]   (files in a temporary folder)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

#define BASELINE_BATCH                                                                             \
	250 /* rows per transaction: about 25 ms of the writer's linger at 10,000/s */

static double
now_s(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process's thread named name (schedstat: nanoseconds on CPU). */
static double
thread_cpu_s(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	double s = -1;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char path[300], comm[32] = "";
		unsigned long long ns;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, name) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
		if ((f = fopen(path, "r")) != NULL && fscanf(f, "%llu", &ns) == 1)
			s = (double)ns / 1e9;
		if (f != NULL)
			fclose(f);
	}
	if (d != NULL)
		closedir(d);
	return s;
}

static void
make_records(struct conn_record *r, int n, struct store *st)
{
	for (int i = 0; i < n; i++) {
		r[i].id = st != NULL ? store_next_id(st) : (uint64_t)i + 1;
		r[i].opened_at_us = 1700000000000000 + i * 100;
		r[i].client.family = AF_INET;
		r[i].client.port = (uint16_t)(1024 + i % 60000);
		inet_pton(AF_INET, "10.89.0.1", r[i].client.addr);
		r[i].orig_dst = r[i].client;
		r[i].orig_dst.port = 80;
		inet_pton(AF_INET, "10.89.0.2", r[i].orig_dst.addr);
		r[i].redirect_state = REDIRECT_NONE;
		r[i].verdict = VERDICT_ALLOW;
		r[i].state = CONN_OPEN;
		r[i].connect_us = -1;
		r[i].uid = r[i].pid = -1;
	}
}

static long long disk_bytes; /* run_store's database, file and WAL */

/* The agent's path: three events per connection through the queue; the writer's CPU. */
static double
run_store(const char *dir, int n, int rate)
{
	char path[512], err[256];
	struct store_options o = {.path = path, .queue_size = 65536};
	struct conn_record *r = calloc((size_t)n, sizeof(*r));
	struct store *st;
	double t0, cpu;

	snprintf(path, sizeof(path), "%s/store.db", dir);
	if (r == NULL || store_open(&st, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_store: %s\n", r == NULL ? "out of memory" : err);
		exit(1);
	}
	make_records(r, n, st);
	t0 = now_s(CLOCK_MONOTONIC);
	for (int i = 0; i < n + 40; i++) {
		if (i < n)
			store_submit(st, &r[i]);
		if (i >= 10 && i - 10 < n) {
			struct conn_record *x = &r[i - 10];

			x->state = CONN_RELAYING;
			x->connect_us = 300;
			x->upstream_local = x->client;
			x->upstream_local.port = (uint16_t)(x->client.port + 1);
			store_submit(st, x);
		}
		if (i >= 40) {
			struct conn_record *x = &r[i - 40];

			x->state = CONN_CLOSED;
			x->closed_at_us = x->opened_at_us + 4000;
			x->bytes_up = 80;
			x->bytes_down = 230;
			x->close_reason = "completed";
			store_submit(st, x);
		}
		if (i % 10 == 9) { /* pace: connection i opens at i / rate seconds */
			double ahead = (double)(i + 1) / rate - (now_s(CLOCK_MONOTONIC) - t0);

			if (ahead > 0)
				usleep((useconds_t)(ahead * 1e6));
		}
	}
	if (store_flush(st, 30000) != 0)
		fprintf(stderr, "bench_store: the writer did not catch up\n");
	cpu = thread_cpu_s("ra-db-writer");
	store_close(st);
	{ /* the disk it takes: the file, and its WAL (checkpointed at close) */
		struct stat sb;
		long long bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : 0;

		snprintf(path, sizeof(path), "%s/store.db-wal", dir);
		bytes += stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
		disk_bytes = bytes;
	}
	free(r);
	return cpu;
}

/* The floor: the same rows, one plain INSERT each, no index, on this thread. */
static double
run_baseline(const char *dir, int n)
{
	char path[512], a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	struct conn_record *r = calloc((size_t)n, sizeof(*r));
	sqlite3 *db;
	sqlite3_stmt *ins;
	double t0;

	snprintf(path, sizeof(path), "%s/baseline.db", dir);
	if (r == NULL || sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
		"PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		"CREATE TABLE c (id INTEGER PRIMARY KEY, opened INTEGER, closed INTEGER,"
		" family INTEGER, client TEXT, cport INTEGER, dst TEXT, dport INTEGER, dbin BLOB,"
		" ulocal TEXT, uport INTEGER, rstate TEXT, verdict TEXT, state TEXT, up INTEGER,"
		" down INTEGER, connect_us INTEGER, reason TEXT)",
		NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
		"INSERT INTO c VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
		" ?15, ?16, ?17, ?18)",
		-1, &ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_store: baseline set-up failed\n");
		exit(1);
	}
	make_records(r, n, NULL);
	t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
	for (int i = 0; i < n; i++) {
		if (i % BASELINE_BATCH == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		inet_ntop(AF_INET, r[i].client.addr, a, sizeof(a));
		inet_ntop(AF_INET, r[i].orig_dst.addr, b, sizeof(b));
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)r[i].id);
		sqlite3_bind_int64(ins, 2, r[i].opened_at_us);
		sqlite3_bind_int64(ins, 3, r[i].opened_at_us + 4000);
		sqlite3_bind_int(ins, 4, 4);
		sqlite3_bind_text(ins, 5, a, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 6, r[i].client.port);
		sqlite3_bind_text(ins, 7, b, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 8, 80);
		sqlite3_bind_blob(ins, 9, r[i].orig_dst.addr, 4, SQLITE_STATIC);
		sqlite3_bind_text(ins, 10, a, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 11, r[i].client.port + 1);
		sqlite3_bind_text(ins, 12, "none", -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 13, "allow", -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 14, "closed", -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 15, 80);
		sqlite3_bind_int(ins, 16, 230);
		sqlite3_bind_int(ins, 17, 300);
		sqlite3_bind_text(ins, 18, "completed", -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			fprintf(stderr, "bench_store: baseline insert: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
		if (i % BASELINE_BATCH == BASELINE_BATCH - 1 || i == n - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	t0 = now_s(CLOCK_THREAD_CPUTIME_ID) - t0;
	sqlite3_finalize(ins);
	sqlite3_close(db);
	free(r);
	return t0;
}

/* argv[i] as a whole decimal number in [lo, hi], or def when absent; -1 when malformed. */
static long
arg_number(int argc, char **argv, int i, long def, long lo, long hi)
{
	char *end;
	long v;

	if (i >= argc)
		return def;
	errno = 0;
	v = strtol(argv[i], &end, 10);
	if (errno != 0 || end == argv[i] || *end != '\0' || v < lo || v > hi)
		return -1;
	return v;
}

int
main(int argc, char **argv)
{
	long n = arg_number(argc, argv, 1, 50000, 100, 10000000);
	long rate = arg_number(argc, argv, 2, 10000, 100, 10000000);
	char dir[] = "/tmp/bench_store.XXXXXX";
	char cmd[64];
	double base, writer;

	if (n < 0 || rate < 0 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "usage: bench_store [CONNECTIONS 100..10000000] [RATE >= 100]\n");
		return 2;
	}
	base = run_baseline(dir, (int)n);
	writer = run_store(dir, (int)n, (int)rate);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_store: could not remove %s\n", dir);
	printf("%ld connections at %ld/s, CPU per 1,000 connections:\n", n, rate);
	printf(
	    "  baseline (plain INSERT of the rows, no index) %8.2f ms\n", base * 1000 * 1000 / n);
	printf("  writer (queue, upsert, indexes, watch events)  %8.2f ms  (%.2fx)\n",
	    writer * 1000 * 1000 / n, writer / base);
	printf("disk: %lld bytes for %ld connections (rows and their events, indexes): %.0f MB per "
	       "million\n",
	    disk_bytes, n, (double)disk_bytes * 1e6 / (double)n / 1e6);
	return 0;
}
