#!/usr/bin/env bash
# API benchmark (root; not part of CI).
#  1. ListConnections over a database of 1,000,000 rows: first page and page
#     500 at page size 100, and a filtered page, against GetInfo (a trivial
#     call through the same stack) measured in the same run.
#  2. WatchConnections during the data-path load (ab, short connections as
#     fast as they go through the agent): does a console keep up, with no
#     event lost?
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROWS=${ROWS:-1000000}
REQS=${REQS:-30000}
deploy/install-deps.sh --bench
command -v nginx >/dev/null || apt-get install -y -qq nginx-light >/dev/null
source tests/bench/lib.sh
bench_build
bench_net rabapi

cat >"$WORK/agent.conf" <<EOF2
[agent]
log_level = warn
[proxy]
workers = 1
[db]
path = $WORK/agent.db
retention_days = 0
max_rows = 0
[api]
local_socket = $WORK/agent.sock
EOF2
start_agent() {
	ip netns exec "$C" taskset -c 0 "$AGENT" --foreground --config "$WORK/agent.conf" >>"$WORK/agent.log" 2>&1 &
	apid=$!
	pids+=($apid)
	for _ in $(seq 100); do [ -S "$WORK/agent.sock" ] && return 0; sleep 0.1; done
	return 1
}
# The agent creates the schema; then the rows are loaded in bulk with SQL.
start_agent
kill -TERM "$apid"; wait "$apid"
echo "loading $ROWS rows..." >&2
sqlite3 "$WORK/agent.db" >/dev/null <<SQL
PRAGMA journal_mode = WAL; -- (already WAL: the agent made it)
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO connections (id, opened_at_us, closed_at_us, family, client_addr, client_port,
  orig_dst_addr, orig_dst_port, orig_dst_bin, redirect_state, verdict, state, bytes_up,
  bytes_down, connect_us, close_reason)
SELECT i, 1700000000000000 + i * 1000, 1700000000000000 + i * 1000 + 500, 4, '10.0.0.1',
  1024 + i % 60000, '192.0.2.' || (i % 250), CASE i % 3 WHEN 0 THEN 80 ELSE 443 END,
  X'C0000201', 'none', 'allow',
  CASE i % 50 WHEN 0 THEN 'failed' ELSE 'closed' END, 100, 1000, 200, 'completed' FROM n;
COMMIT;
SQL
start_agent
"$PY" -m grpc_tools.protoc -I"$ROOT/proto" --python_out="$WORK" --grpc_python_out="$WORK" \
	"$ROOT"/proto/redirect/v1/*.proto
taskset -c 1 "$PY" "$ROOT/tests/bench/api_client.py" "$WORK" "$WORK/agent.sock" pages >"$WORK/pages"

# Watch under the data-path load.
bench_nginx 80
sleep 0.5
ip netns exec "$C" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1
head0=$(sqlite3 "$WORK/agent.db" "SELECT coalesce(max(seq), 0) FROM connection_events")
taskset -c 1 "$PY" "$ROOT/tests/bench/api_client.py" "$WORK" "$WORK/agent.sock" watch 999999999 >"$WORK/watch" &
watcher=$!
sleep 1
ip netns exec "$C" taskset -c 1 ab -q -n "$REQS" -c 32 "http://$SRV/" >"$WORK/ab.out"
rate=$(awk '/^Requests per second/ { print $4 }' "$WORK/ab.out")
sleep 2 # the last commits (25 ms apart) and their delivery
head1=$(sqlite3 "$WORK/agent.db" "SELECT max(seq) FROM connection_events")
kill -TERM "$apid"; wait "$apid" || true   # the stream ends: the watcher prints its count
wait "$watcher" || true
read -r _ seen contiguous <"$WORK/watch"

med() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/pages"; }
p99() { awk -v k="$1" '$1 == k { print $3 }' "$WORK/pages"; }
base=$(med getinfo)
echo
echo "ListConnections over $ROWS rows (page size 100), median / p99 ms, ratio to GetInfo"
for k in getinfo first_page page_500 filtered_page; do
	printf '  %-14s %8s / %8s ms  (%s)\n' "$k" "$(med $k)" "$(p99 $k)" \
		"$("$PY" -c "print('%.2fx' % ($(med $k) / $base))")"
done
echo
echo "WatchConnections during $REQS short connections at $rate conn/s:"
echo "  events committed $((head1 - head0)), received $seen, sequences contiguous: $([ "$contiguous" = 1 ] && echo yes || echo no)"
