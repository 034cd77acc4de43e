/*
 * bench_export: how fast the export drains a backlog into NATS JetStream,
 * against a plain publish loop to the same server in the same run.
 *
 *   bench_export URL DB_DIR [EVENTS]     (a nats-server with JetStream at URL;
 *                                          tests/bench/bench_export.sh starts one)
 *
 * 1. A database holding EVENTS (default 1,000,000) closed connections, each
 *    with its final event, written in bulk with SQL (the backlog an agent
 *    cut off from its server for a while would hold).
 * 2. The baseline: the same number of records of the same size, published
 *    by a plain loop (js_PublishMsgAsync, acknowledgements awaited) to
 *    another subject of the same stream: what the server and library allow.
 * 3. The export: the agent's NATS sink from the stored cursor (0) until
 *    every event is acknowledged, with everything the agent does per event:
 *    read the row (SQLite), format ECS JSON, publish with Nats-Msg-Id,
 *    track the acknowledgement, store the cursor.
 * Prints events/s of both and the ratio.
 */
#include <inttypes.h>
#include <nats/nats.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "export.h"
#include "fleet.h"
#include "store.h"

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "bench_export: %s: %s\n", what, why);
	exit(1);
}

/* EVENTS closed connections and their final events, in bulk. */
static void
fill(const char *path, long n)
{
	char sql[2048];
	sqlite3 *db;
	char *err = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path, sqlite3_errmsg(db));
	snprintf(sql, sizeof(sql),
	    "BEGIN;"
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %ld)"
	    " INSERT INTO connections (id, opened_at_us, closed_at_us, family, client_addr,"
	    " client_port, orig_dst_addr, orig_dst_port, orig_dst_bin, upstream_local_addr,"
	    " upstream_local_port, redirect_state, records_mark, verdict, state, bytes_up,"
	    " bytes_down, connect_us, close_reason)"
	    " SELECT i, 1764480000000000 + i * 100, 1764480000000000 + i * 100 + 5300, 4,"
	    " '10.89.0.1', 1024 + i %% 60000, '10.89.0.2', 80, X'0A590002', '10.89.0.1',"
	    " 1024 + (i * 7) %% 60000, 'none', 0, 'allow', 'closed', 86, 238, 412, 'completed'"
	    " FROM n;"
	    "INSERT INTO connection_events (seq, conn_id, at_us, state, closed_at_us,"
	    " upstream_local_addr, upstream_local_port, verdict, bytes_up, bytes_down, connect_us,"
	    " close_reason)"
	    " SELECT id, id, closed_at_us + 1000, state, closed_at_us, upstream_local_addr,"
	    " upstream_local_port, verdict, bytes_up, bytes_down, connect_us, close_reason"
	    " FROM connections;"
	    "COMMIT;",
	    n);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die("bulk load", err);
	sqlite3_close(db);
}

static volatile long acked;

static void
on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	(void)js, (void)pae, (void)arg;
	if (pa != NULL)
		__atomic_add_fetch(&acked, 1, __ATOMIC_RELAXED);
	natsMsg_Destroy(m);
}

/* The plain loop: n records of len bytes, async, every acknowledgement awaited. */
static double
baseline(const char *url, long n, size_t len)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	char *payload = malloc(len), id[64];
	uint64_t t0;

	memset(payload, 'x', len);
	if (natsConnection_ConnectTo(&nc, url) != NATS_OK)
		die(url, "cannot connect");
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 1024;
	jo.PublishAsync.AckHandler = on_ack;
	if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
		die("JetStream", "no context");
	t0 = clock_mono_us();
	for (long i = 0; i < n; i++) {
		natsMsg *m = NULL;

		natsMsg_Create(&m, "redirect.conn.baseline", NULL, payload, (int)len);
		snprintf(id, sizeof(id), "baseline:%ld", i);
		natsMsgHeader_Set(m, "Nats-Msg-Id", id);
		while (js_PublishMsgAsync(js, &m, NULL) != NATS_OK)
			;
	}
	while (acked < n)
		usleep(1000);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	free(payload);
	return (double)n / ((double)(clock_mono_us() - t0) / 1e6);
}

int
main(int argc, char **argv)
{
	static struct config cfg;
	struct store_options so = {0};
	struct store *st;
	struct fleet *fleet;
	struct exporter *ex;
	struct export_sink_stats es;
	struct ecs_agent agent = {
	    "0b1b1b1b-0000-4000-8000-000000000000", "bench", "bench", "bench-host", "linux"};
	char path[512], err[512];
	long n = argc > 3 ? strtol(argv[3], NULL, 10) : 1000000;
	double base, rate;
	uint64_t t0;

	if (argc < 3 || n <= 0) {
		fprintf(stderr, "usage: bench_export URL DB_DIR [EVENTS]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/bench.db", argv[2]);
	config_defaults(&cfg);
	snprintf(cfg.db_path, sizeof(cfg.db_path), "%s", path);
	snprintf(cfg.fleet_servers, sizeof(cfg.fleet_servers), "%s", argv[1]);
	cfg.max_backlog = (uint64_t)n * 2;
	so.path = path;
	so.sinks[0] = "nats";
	so.n_sinks = 1;
	so.max_backlog = cfg.max_backlog;
	if (store_open(&st, &so, err, sizeof(err)) != 0) /* the schema */
		die("store", err);
	store_close(st);
	t0 = clock_mono_us();
	fill(path, n);
	printf(
	    "backlog of %ld events written in %.1f s\n", n, (double)(clock_mono_us() - t0) / 1e6);
	if (store_open(&st, &so, err, sizeof(err)) != 0)
		die("store", err);

	/* A record as the export formats it is about 1 KB: the baseline sends as much. */
	base = baseline(argv[1], n, 1000);
	printf("plain publish loop (js async, acknowledged): %.0f records/s\n", base);

	if (fleet_open(&fleet, &cfg, agent.uuid, err, sizeof(err)) != 0)
		die("fleet", err);
	t0 = clock_mono_us();
	if (export_start(&ex, &cfg, st, &agent, fleet, err, sizeof(err)) != 0)
		die("export", err);
	for (;;) {
		usleep(20000);
		export_get_stats(ex, &es, 1);
		if (es.pending == 0 && es.acked >= (uint64_t)n)
			break;
		if (clock_mono_us() - t0 > 600 * 1000000ull)
			die("export", "did not drain in 10 minutes");
	}
	rate = (double)n / ((double)(clock_mono_us() - t0) / 1e6);
	printf("export drain (read, ECS JSON, publish, acknowledged): %.0f events/s (%.2fx of the "
	       "plain loop), %" PRIu64 " shipped\n",
	    rate, rate / base, es.shipped);
	export_stop(ex, 1000);
	fleet_close(fleet);
	store_close(st);
	return 0;
}
