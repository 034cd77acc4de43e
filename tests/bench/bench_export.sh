#!/usr/bin/env bash
# Benchmark: fleet telemetry's cost and speed, against a real nats-server.
#
#   tests/bench/bench_export.sh [--rounds N] [--reqs N] [--backlog N]   (root; not in CI)
#
# 1. Connection rate with export on vs off: two agents side by side (each one
#    worker on CPU 0, each recording every connection in SQLite), one of
#    them also shipping every connection to NATS JetStream; ab (-c 32) runs
#    against each in turn, round by round. The ratio is of the medians.
# 2. End-to-end lag: for every record the export shipped during those
#    rounds, the time from the connection's close (event.end) to the
#    stream's storing it (the message's JetStream timestamp): p50, p99, max,
#    at the rate the rounds ran.
# 3. Draining a backlog: build/bench/tests/bench_export (see its header):
#    the export against a plain publish loop to the same server.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=5 REQS=20000 BACKLOG=1000000
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	--reqs) REQS=$2; shift ;;
	--backlog) BACKLOG=$2; shift ;;
	*) echo "usage: $0 [--rounds N] [--reqs N] [--backlog N]" >&2; exit 2 ;;
	esac
	shift
done

deploy/install-deps.sh --bench
command -v nginx >/dev/null || apt-get install -y -qq nginx-light >/dev/null
source tests/bench/lib.sh
bench_build
ADMIN=$ROOT/build/bench/tests/nats_admin
bench_net raexp
bench_nginx 80 8082
NATS=nats://127.0.0.1:14222
cat >"$WORK/nats.conf" <<EOF2
listen: 127.0.0.1:14222
jetstream { store_dir: "$WORK/js", max_file_store: 50G }
EOF2
ip netns exec "$C" taskset -c 1 nats-server -c "$WORK/nats.conf" >"$WORK/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do ip netns exec "$C" "$ADMIN" "$NATS" count X >/dev/null 2>&1 && break; ip netns exec "$C" ss -Hltn 'sport = :14222' | grep -q LISTEN && break; sleep 0.1; done
ip netns exec "$C" "$ADMIN" "$NATS" add-stream REDIRECT_CONN 'redirect.conn.>'

agent() { # NAME PORT MARK LISTEN EXTRA-LINES
	cat >"$WORK/$1.conf" <<EOF2
[agent]
log_level = warn
[proxy]
workers = 1
agent_id = $1
redirect_ports = $2
mark = $3
listen_port = $4
max_sessions = 9968
[db]
path = $WORK/$1.db
[api]
local_socket = $WORK/$1.sock
$5
EOF2
	ip netns exec "$C" taskset -c 0 "$AGENT" --foreground --config "$WORK/$1.conf" >"$WORK/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [ -S "$WORK/$1.sock" ] && break; sleep 0.1; done
}
agent off 80 0x1 15001 ""
agent on 8082 0x2 15002 "[fleet]
servers = $NATS"
sleep 0.5
ip netns exec "$C" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1

rate() {
	ip netns exec "$C" taskset -c 1 ab -q -n "$REQS" -c 32 "http://$SRV:$1/" >"$WORK/ab.out" 2>&1
	awk '/^Requests per second/ { print $4 }' "$WORK/ab.out"
}
declare -a off on
for r in $(seq "$ROUNDS"); do
	off+=("$(rate 80)")
	on+=("$(rate 8082)")
	echo "round $r: export off ${off[-1]}/s, on ${on[-1]}/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
moff=$(median "${off[@]}")
mon=$(median "${on[@]}")
echo
echo "short connections/s, median of $ROUNDS rounds ($REQS requests each, ab -c 32)"
printf '%-28s %10s\n' "export off (SQLite only)" "$moff"
printf '%-28s %10s   %.3fx\n' "export on (SQLite + NATS)" "$mon" "$(echo "$mon / $moff" | bc -l)"

# Lag: wait for the export to catch up, then read every record with its stored time.
for _ in $(seq 600); do
	p=$("$CTL" --socket "$WORK/on.sock" --json stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["export_sinks"][0]["pending"])')
	[ "$p" = 0 ] && break
	sleep 0.1
done
ip netns exec "$C" "$ADMIN" "$NATS" times REDIRECT_CONN >"$WORK/times"
"$PY" - "$WORK/times" <<'EOF2'
import json, sys, datetime
lags = []
for line in open(sys.argv[1]):
    ns, doc = line.split("\t", 1)
    end = json.loads(doc)["event"]["end"]
    t = datetime.datetime.strptime(end, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    lags.append(int(ns) / 1e9 - t.timestamp())
lags.sort()
pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
print("end-to-end lag, close -> stored in the stream, %d records: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
      % (len(lags), pick(0.5) * 1e3, pick(0.99) * 1e3, lags[-1] * 1e3))
EOF2

echo
echo "backlog drain ($BACKLOG events):"
mkdir -p "$WORK/drain"
ip netns exec "$C" taskset -c 0 "$ROOT/build/bench/tests/bench_export" "$NATS" "$WORK/drain" "$BACKLOG" 2>/dev/null
