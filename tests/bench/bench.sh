#!/usr/bin/env bash
# Benchmark: the same workloads direct, through HAProxy and through
# redirect-agent, in one run, each printed as a ratio to direct.
#
#   tests/bench/bench.sh [--quick] [--rounds N] [--conns-only]   (root; not in CI)
#
# --conns-only runs just the short-connection workload (rate, p50, p99), the
# quick loop for work on the per-connection path.
# BENCH_AGENT=PATH benchmarks another build instead of this tree's.
# BENCH_AGENT_B=PATH adds a fourth column, "agent B": a second agent (another
# build) on CPU 0 beside the first, measured in the same interleaved rounds,
# so a before/after comparison does not depend on the machine's drift.
# --plain adds the issue's other reference, a plain single-threaded C relay
# (tests/bench/plain_relay.c: no policy, no record), as a column of its own.
#
# Topology: a client namespace (the clients, and both proxies under test,
# whose nft rules redirect the client's connections) joined by a veth pair to
# a server namespace (nginx, iperf3, an idle-connection holder). Each proxy
# runs one thread pinned to CPU 0; clients and servers are pinned to CPU 1.
# HAProxy runs in TCP mode with "server orig 0.0.0.0:0", which forwards to
# SO_ORIGINAL_DST; its own upstream connections are exempted by uid.
# redirect-agent records every connection in SQLite while it runs.
#
# Both proxies run for the whole benchmark and each mode has its own
# destination ports (the servers listen on all of them), so rounds interleave
# direct / haproxy / agent and each figure is the median of its rounds: slow
# drift on the machine then hits every mode alike.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

ROUNDS=5 SECS=5 REQS=20000 CONNS_ONLY=0 PLAIN=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) ROUNDS=3 SECS=2 REQS=5000 ;;
	--rounds) ROUNDS=$2; shift ;;
	--conns-only) CONNS_ONLY=1 ;;
	--plain) PLAIN=1 ;;
	*) echo "usage: $0 [--quick] [--rounds N] [--conns-only] [--plain]" >&2; exit 2 ;;
	esac
	shift
done
HOLD=9900 # the hard fd limit here is 20,000 and a proxy needs two per connection

deploy/install-deps.sh --bench
command -v nginx >/dev/null || apt-get install -y -qq nginx-light >/dev/null
source tests/bench/lib.sh
bench_build # BENCH_AGENT=PATH: benchmark another build of the agent

MODES=(direct haproxy agent)
declare -A HTTP=([direct]=8080 [haproxy]=8081 [agent]=80 [agent_b]=8082 [plain]=8083)
declare -A IPERF=([direct]=5201 [haproxy]=5202 [agent]=5203 [agent_b]=5204 [plain]=5205)
declare -A HOLDP=([haproxy]=9001 [agent]=9002 [agent_b]=9003 [plain]=9004)
[ -n "${BENCH_AGENT_B:-}" ] && MODES+=(agent_b)
[ "$PLAIN" = 1 ] && MODES+=(plain)

bench_net rabench
# Servers, on CPU 1, listening on every mode's port.
bench_nginx "${HTTP[direct]}" "${HTTP[haproxy]}" "${HTTP[agent]}" "${HTTP[agent_b]}" "${HTTP[plain]}"
for m in "${MODES[@]}"; do
	ip netns exec "$S" taskset -c 1 iperf3 -s -p "${IPERF[$m]}" >/dev/null 2>&1 &
	pids+=($!)
done
for m in "${MODES[@]:1}"; do
	ip netns exec "$S" taskset -c 1 "$PY" "$ROOT/tests/scenario/hold.py" server "${HOLDP[$m]}" &
	pids+=($!)
done

# HAProxy on CPU 0, one thread.
cat >"$WORK/haproxy.cfg" <<EOF2
global
	maxconn 9950
	nbthread 1
	user haproxy
	group haproxy
defaults
	mode tcp
	timeout connect 5s
	timeout client 600s
	timeout server 600s
frontend redirected
	bind 127.0.0.1:15002
	default_backend orig
backend orig
	server orig 0.0.0.0:0
EOF2
ip netns exec "$C" taskset -c 0 haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
hpid=$!
pids+=($hpid)
redirect_to() { # MODE EXEMPT LISTEN-PORT: nft sends MODE's ports, except EXEMPT, to a proxy
	ip netns exec "$C" nft -f - <<NFT
table inet bench_$1 {
	chain output {
		type nat hook output priority -100; policy accept;
		$2 return
		ip daddr $SRV tcp dport { ${HTTP[$1]}, ${IPERF[$1]}, ${HOLDP[$1]} } redirect to :$3
	}
}
NFT
}
redirect_to haproxy 'meta skuid "haproxy"' 15002

# redirect-agent on CPU 0, one worker, recording everything.
start_agent() { # MODE BINARY EXTRA-PROXY-LINES; sets started to its pid
	cat >"$WORK/$1.conf" <<EOF2
[agent]
log_level = warn
[proxy]
workers = 1
redirect_ports = ${HTTP[$1]}, ${IPERF[$1]}, ${HOLDP[$1]}
max_sessions = 9968
$3
[db]
path = $WORK/$1.db
[api]
local_socket = $WORK/$1.sock
EOF2
	ip netns exec "$C" taskset -c 0 "$2" --foreground --config "$WORK/$1.conf" >"$WORK/$1.log" 2>&1 &
	started=$!
	pids+=($started)
}
start_agent agent "$AGENT" ""
apid=$started
if [ -n "${BENCH_AGENT_B:-}" ]; then
	# Its own port, mark, database and socket: two agents share a host.
	start_agent agent_b "$BENCH_AGENT_B" "listen_port = 15003
mark = 0x2
agent_id = b"
	bpid=$started
fi
if [ "$PLAIN" = 1 ]; then
	# Port 15004, mark 0x4: its own connections pass its rule.
	ip netns exec "$C" taskset -c 0 "$ROOT/build/bench/tests/plain_relay" 15004 0x4 \
		>"$WORK/plain.log" 2>&1 &
	ppid_=$!
	pids+=($ppid_)
	redirect_to plain 'meta mark 0x4' 15004
fi
# conntrack's TIME_WAIT timeout is a namespace sysctl once NAT has loaded it.
sleep 1
ip netns exec "$C" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1

iperf() { # MODE STREAMS -> Gbit/s
	ip netns exec "$C" taskset -c 1 iperf3 -c $SRV -p "${IPERF[$1]}" -t "$SECS" -P "$2" -J |
		"$PY" -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}

conns() { # MODE -> "rate p50_ms p99_ms"
	ip netns exec "$C" taskset -c 1 ab -q -n "$REQS" -c 32 -e "$WORK/ab.csv" \
		"http://$SRV:${HTTP[$1]}/" >"$WORK/ab.out" 2>&1
	local fails
	fails=$(awk '/^Failed requests/ { print $3 }' "$WORK/ab.out")
	[ "$fails" = 0 ] || echo "warning: $1: $fails failed requests" >&2
	echo "$(awk '/^Requests per second/ { print $4 }' "$WORK/ab.out")" \
		"$(awk -F, '$1 == 50 { print $2 }' "$WORK/ab.csv")" \
		"$(awk -F, '$1 == 99 { print $2 }' "$WORK/ab.csv")"
}

hold_rss() { # MODE PID -> "KiB_per_connection held"
	local before after n
	before=$(awk '/^VmRSS:/ { print $2 }' /proc/"$2"/status)
	coproc HOLDER { ip netns exec "$C" taskset -c 1 "$PY" "$ROOT/tests/scenario/hold.py" client $SRV "${HOLDP[$1]}" $HOLD; }
	read -r _ n <&"${HOLDER[0]}"
	sleep 1
	after=$(awk '/^VmRSS:/ { print $2 }' /proc/"$2"/status)
	eval "exec ${HOLDER[1]}>&-"
	wait "$HOLDER_PID" 2>/dev/null || true
	"$PY" -c "print('%.2f %d' % (($after - $before) / $n, $n))"
}

declare -A V # V[metric,mode] = space-separated samples
for r in $(seq "$ROUNDS"); do
	for m in "${MODES[@]}"; do
		if [ "$CONNS_ONLY" = 0 ]; then
			V[t1,$m]+="$(iperf "$m" 1) "
			V[t8,$m]+="$(iperf "$m" 8) "
		fi
		read -r rate p50 p99 <<<"$(conns "$m")"
		V[rate,$m]+="$rate "
		V[p50,$m]+="$p50 "
		V[p99,$m]+="$p99 "
		sleep 1 # let TIME_WAIT drain
	done
	echo "round $r/$ROUNDS done" >&2
done
if [ "$CONNS_ONLY" = 0 ]; then
	read -r V[rss,haproxy] V[held,haproxy] <<<"$(hold_rss haproxy "$hpid")"
	sleep 2
	read -r V[rss,agent] V[held,agent] <<<"$(hold_rss agent "$apid")"
	if [ -n "${BENCH_AGENT_B:-}" ]; then
		sleep 2
		read -r V[rss,agent_b] V[held,agent_b] <<<"$(hold_rss agent_b "$bpid")"
	fi
	if [ "$PLAIN" = 1 ]; then
		sleep 2
		read -r V[rss,plain] V[held,plain] <<<"$(hold_rss plain "$ppid_")"
	fi
fi

thread_cpu_ms() { # PID THREAD-NAME -> user+system CPU time in ms
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm")" = "$2" ] || continue
		awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) * 1000 / hz }' "$t/stat"
	done
}
cpu_worker=$(thread_cpu_ms "$apid" ra-worker-0)
cpu_writer=$(thread_cpu_ms "$apid" ra-db-writer)
kill -TERM "$apid"
wait "$apid" || echo "warning: the agent exited with status $?" >&2
rows=$(sqlite3 "$WORK/agent.db" "SELECT count(*) FROM connections")
open=$(sqlite3 "$WORK/agent.db" "SELECT count(*) FROM connections WHERE state IN ('open','relaying')")
dropped=$(grep -c "events dropped [1-9]" "$WORK/agent.log" || true)

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratio() { "$PY" -c "print('%.2fx' % ($1 / $2))"; }
echo
echo "redirect-agent benchmark: medians of $ROUNDS interleaved rounds (ratio to direct)"
head=(workload direct haproxy redirect-agent)
[ -n "${BENCH_AGENT_B:-}" ] && head+=("agent B")
[ "$PLAIN" = 1 ] && head+=("plain relay")
row() { printf '%-36s %18s' "$1" "$2"; shift 2; printf ' %20s' "$@"; echo; }
row "${head[@]}"
metrics=(t1:"1-stream throughput, Gbit/s" t8:"8-stream throughput, Gbit/s")
[ "$CONNS_ONLY" = 1 ] && metrics=()
for k in "${metrics[@]}" rate:"short connections per second" p50:"p50 latency, ms (connect+GET)" \
	p99:"p99 latency, ms (connect+GET)"; do
	key=${k%%:*}
	d=$(median <<<"${V[$key,direct]}")
	cells=("${k#*:}" "$d (1.00x)")
	for m in "${MODES[@]:1}"; do
		v=$(median <<<"${V[$key,$m]}")
		cells+=("$v ($(ratio "$v" "$d"))")
	done
	row "${cells[@]}"
done
if [ "$CONNS_ONLY" = 0 ]; then
	cells=("RSS per idle connection, KiB" "-")
	for m in "${MODES[@]:1}"; do cells+=("${V[rss,$m]} (${V[held,$m]} held)"); done
	row "${cells[@]}"
fi
echo
echo "samples: $(for m in "${MODES[@]}"; do printf '%s conn/s [%s] ' "$m" "${V[rate,$m]% }"; done)"
echo "samples: $(for m in "${MODES[@]}"; do printf '%s p99 [%s] ' "$m" "${V[p99,$m]% }"; done)"
# p99 is the noisiest figure: pair each round's proxies, which ran seconds apart.
for m in "${MODES[@]:2}"; do
	"$PY" -c "import sys; a, h = (list(map(float, x.split())) for x in sys.argv[2:4])
print('%s p99 below haproxy\'s in %d of %d rounds' % (sys.argv[1], sum(x < y for x, y in zip(a, h)), len(a)))" \
		"$m" "${V[p99,$m]}" "${V[p99,haproxy]}"
done
echo "redirect-agent recorded $rows connections, $open left open; shutdown log reports drops: $dropped"
# Where the agent's time goes, from its own rows: upstream connect and whole
# session, microseconds.
pct() { # SQL-expression PERCENT
	sqlite3 "$WORK/agent.db" "SELECT $1 FROM connections WHERE state = 'closed' AND $1 IS NOT NULL
		ORDER BY 1 LIMIT 1 OFFSET (SELECT count(*) * $2 / 100 FROM connections
		WHERE state = 'closed' AND $1 IS NOT NULL)"
}
# Per connection only when short connections were all the agent carried.
[ "$CONNS_ONLY" = 1 ] || exit 0
echo "agent CPU per 1,000 connections, ms: event loop" \
	"$("$PY" -c "print('%.1f' % ($cpu_worker * 1000 / max($rows, 1)))")," \
	"database writer $("$PY" -c "print('%.1f' % ($cpu_writer * 1000 / max($rows, 1)))")"
echo "agent rows, us: connect p50 $(pct connect_us 50) p99 $(pct connect_us 99);" \
	"session p50 $(pct 'closed_at_us - opened_at_us' 50) p99 $(pct 'closed_at_us - opened_at_us' 99)"
