#!/usr/bin/env bash
# Benchmark: 1,000 simulated agents against one local nats-server (issue 14,
# "Fleet control"). Prints figures; it does not pass or fail.
#
#   tests/bench/bench_fleet.sh BUILD_DIR [bench_fleet options...]
#
#   BUILD_DIR  a build tree with bench_fleet built:
#              cmake -S . -B BUILD_DIR -DCMAKE_BUILD_TYPE=Release
#              cmake --build BUILD_DIR --target bench_fleet
#   options    passed on (see tests/bench/bench_fleet.c): -n AGENTS (1000),
#              -c CONNS (20), --heartbeat S (5), --duration S (10), --writes W (20),
#              --requests R (2000), --delivery-threads T (2), --no-fetch, --prefix P
#   CTL=path/to/redirectctl        also time `$CTL fleet --server URL agents --json`
#   AGENT_SOCKET=... AGENT_UUID=...  a running agent: GetInfo over its gRPC socket
#   [AGENT_NATS=nats://...]          against GetInfo over NATS (the server it uses)
#
# A throwaway nats-server with JetStream (loopback, a port it picks itself,
# its store in a mktemp -d directory) is started, the buckets are created as
# the operator would (REDIRECT_AGENTS with a TTL, REDIRECT_POLICY republishing
# to P.policy.>), bench_fleet runs against it, and the server is killed and
# its directory removed on exit, whatever happens.
set -euo pipefail
if [ $# -lt 1 ]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d'
	exit 2
fi
BUILD=$1
shift
BENCH=$BUILD/tests/bench_fleet
[ -x "$BENCH" ] || { echo "no $BENCH: cmake --build $BUILD --target bench_fleet" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "nats-server is not installed" >&2; exit 2; }
PREFIX=redirect
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	[ "${args[$i]}" = --prefix ] && PREFIX=${args[$((i + 1))]:-redirect}
done

WORK=$(mktemp -d /tmp/bench_fleet.XXXXXX)
SERVER=""
cleanup() {
	if [ -n "$SERVER" ]; then
		kill "$SERVER" 2>/dev/null || true
		wait "$SERVER" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# port -1: the server takes a free port itself and logs it (no race with a prober).
cat >"$WORK/nats.conf" <<EOF
listen: 127.0.0.1:-1
jetstream {
	store_dir: "$WORK/js"
	max_memory_store: 256MB
	max_file_store: 2GB
}
EOF
nats-server -c "$WORK/nats.conf" >"$WORK/nats.log" 2>&1 &
SERVER=$!
PORT=""
for _ in $(seq 100); do
	PORT=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		"$WORK/nats.log")
	[ -n "$PORT" ] && break
	kill -0 "$SERVER" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$PORT" ]; then
	echo "nats-server did not start:" >&2
	cat "$WORK/nats.log" >&2
	exit 1
fi
URL=nats://127.0.0.1:$PORT

echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
	"$(nats-server --version), server pid $SERVER at $URL"
echo "busiest other processes (%CPU, command):"
# (awk reads all of ps's output: head would close the pipe, and pipefail would end us.)
ps -eo pcpu=,pid=,args= --sort=-pcpu | awk -v me=$$ '$2 != me && n++ < 5' | cut -c1-110 |
	sed 's/^/  /'
"$BENCH" --create-buckets --prefix "$PREFIX" "$URL"
rc=0
"$BENCH" --server-pid "$SERVER" "$@" "$URL" || rc=$?
echo "nats-server after the run: $(awk '/VmRSS|VmHWM/ { printf "%s %s %s  ", $1, $2, $3 }' \
	"/proc/$SERVER/status")"
if grep -qi 'slow consumer\|error\|warn' "$WORK/nats.log"; then
	echo "nats-server logged (first 10):"
	grep -i 'slow consumer\|error\|warn' "$WORK/nats.log" | head -10 | sed 's/^/  /'
fi
[ "$rc" -eq 0 ] || echo "bench_fleet exited with status $rc" >&2
exit "$rc"
