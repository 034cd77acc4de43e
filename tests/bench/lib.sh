# Shared set-up for the benchmarks (sourced; not a benchmark itself).
#
#   bench_build          Release build in build/bench; sets AGENT (or BENCH_AGENT, to
#                        compare another build) and CTL
#   bench_net NAME       client namespace NAME-c and server namespace NAME-s joined by
#                        veth, 10.89.0.1 <-> $SRV; sets C, S, WORK; removes it all at exit
#   bench_nginx PORT...  nginx on CPU 1 in the server namespace, "ok" on every port
#
# Each script then adds its own servers, proxies and workloads. Started
# processes go in pids (killed at exit).

SRV=10.89.0.2
PY=/usr/bin/python3
pids=()
WORK=""

bench_build() {
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/bench -j"$(nproc)" >/dev/null
	AGENT=${BENCH_AGENT:-$PWD/build/bench/agent/redirect-agent}
	CTL=$PWD/build/bench/cli/redirectctl
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for ns in "$S" "$C"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
	sleep 0.2
	ip netns del "$C" 2>/dev/null || true
	ip netns del "$S" 2>/dev/null || true
	[ -n "$WORK" ] && rm -rf "$WORK"
	return 0
}

bench_net() {
	C=$1-c S=$1-s
	trap bench_cleanup EXIT
	bench_cleanup
	WORK=$(mktemp -d "/tmp/$1.XXXX")
	ip netns add "$C"
	ip netns add "$S"
	ip link add "$1-a" netns "$C" type veth peer name "$1-b" netns "$S"
	for ns in "$C" "$S"; do ip -n "$ns" link set lo up; done
	ip -n "$C" addr add 10.89.0.1/24 dev "$1-a"
	ip -n "$S" addr add $SRV/24 dev "$1-b"
	ip -n "$C" link set "$1-a" up
	ip -n "$S" link set "$1-b" up
	# Without these, TIME_WAIT caps every peer, direct too, at a few hundred
	# connections per second.
	for ns in "$C" "$S"; do
		ip netns exec "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
			net.ipv4.ip_local_port_range="1024 65535" net.core.somaxconn=8192 \
			net.ipv4.tcp_max_syn_backlog=8192
	done
}

bench_nginx() {
	local listen="" p
	for p in "$@"; do listen+="listen $p backlog=8192; "; done
	cat >"$WORK/nginx.conf" <<EOF2
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 16384; }
http {
	access_log off;
	server { $listen location / { return 200 "ok\n"; } }
}
EOF2
	ip netns exec "$S" taskset -c 1 nginx -c "$WORK/nginx.conf" -g "daemon off;" &
	pids+=($!)
}
