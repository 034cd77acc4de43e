#!/usr/bin/env bash
# Set up, build, and show redirect-agent working on its embedded defaults
# (no --config: database /var/lib/redirect-agent/agent.db, listen port 15001,
# mark 0x1, ports 80 and 443). Run as root on Debian 12.
#
# A throwaway pair of network namespaces stands in for a laptop and a web
# server. The agent runs in the "laptop" namespace; curl there makes plain
# HTTP requests, the kernel redirects them to the agent, the agent relays
# them to the server and records each one. The rows are then listed from the
# database. The namespaces are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
AGENT=$PWD/build/agent/redirect-agent
DB=${STATE_DIRECTORY:-/var/lib/redirect-agent}/agent.db
C=ra-demo-laptop
S=ra-demo-server
LOG=$(mktemp /tmp/ra-demo.XXXX.log)
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	ip netns del "$C" 2>/dev/null || true
	ip netns del "$S" 2>/dev/null || true
	rm -f "$LOG"
}
trap cleanup EXIT
cleanup

ip netns add "$C"
ip netns add "$S"
ip link add ra-demo-a netns "$C" type veth peer name ra-demo-b netns "$S"
ip -n "$C" link set lo up
ip -n "$S" link set lo up
ip -n "$C" addr add 10.99.0.1/24 dev ra-demo-a
ip -n "$S" addr add 10.99.0.2/24 dev ra-demo-b
ip -n "$C" addr add fd99::1/64 dev ra-demo-a nodad
ip -n "$S" addr add fd99::2/64 dev ra-demo-b nodad
ip -n "$C" link set ra-demo-a up
ip -n "$S" link set ra-demo-b up
# Until duplicate address detection ends, the first IPv6 SYN is lost (a 1 s retry).
for _ in $(seq 50); do
	[ -z "$(ip -n "$C" -6 addr show tentative)$(ip -n "$S" -6 addr show tentative)" ] && break
	sleep 0.1
done

mkdir -p /tmp/ra-demo-www && echo "hello from the demo server" >/tmp/ra-demo-www/index.html
ip netns exec "$S" /usr/bin/python3 -m http.server --bind :: --directory /tmp/ra-demo-www 80 \
	>/dev/null 2>&1 &
pids+=($!)
before=0
[ -f "$DB" ] && before=$(sqlite3 "$DB" "SELECT coalesce(max(id), 0) FROM connections")

echo "== starting the agent on its embedded defaults"
ip netns exec "$C" "$AGENT" --foreground >"$LOG" 2>&1 &
agent=$!
pids+=("$agent")
for _ in $(seq 50); do
	ip netns exec "$C" nft list table inet redirect_agent_default >/dev/null 2>&1 && break
	sleep 0.1
done
sed 's/^/   agent: /' "$LOG"
echo "== the agent's nft table (redirects new TCP connections to ports 80 and 443)"
ip netns exec "$C" nft list chain inet redirect_agent_default output | sed 's/^/   /'

echo "== three requests from the laptop namespace, as any program would make them"
for url in http://10.99.0.2/ "http://[fd99::2]/" http://10.99.0.2/index.html; do
	printf '   curl %-28s -> %s\n' "$url" "$(ip netns exec "$C" curl -sS --max-time 5 "$url")"
done

CTL=$PWD/build/cli/redirectctl
SOCK=${RUNTIME_DIRECTORY:-/run/redirect-agent}/agent.sock
sleep 0.1 # the writer commits within tens of milliseconds
echo "== the admin CLI over the agent's local socket ($SOCK)"
"$CTL" --socket "$SOCK" status | sed 's/^/   /'
"$CTL" --socket "$SOCK" conns --limit 3 | sed 's/^/   /'

echo "== stopping the agent (SIGTERM: removes its table, drains, commits)"
kill -TERM "$agent"
wait "$agent"
tail -2 "$LOG" | sed 's/^/   agent: /'

echo "== the connections as recorded in $DB"
sqlite3 -box "$DB" "SELECT id, client_addr AS client, orig_dst_addr AS destination,
	orig_dst_port AS port, state, verdict, bytes_up AS up, bytes_down AS down,
	connect_us AS connect_us, close_reason FROM connections WHERE id > $before ORDER BY id"
