#!/usr/bin/env bash
# Stream semantics through the agent: a half-close passes through (the client
# shuts down its sending side and still gets the answer the server sends only
# after that FIN), and backpressure holds (a slow reader of a 64 MB download
# gets every byte while the agent's memory stays bounded).
source "$(dirname "$0")/lib.sh"

setup_net
start_httpd 80
ip netns exec "$SNS" "$PY" "$SRCDIR/tests/scenario/eofserver.py" 7000 &
PIDS+=($!)
wait_port "$SNS" 7000
write_config "$WORK/agent.conf" "[proxy]" "redirect_ports = 80, 7000" "workers = 1"
start_agent "$WORK/agent.conf"

# Half-close: send 1 MB, shut down the write side, read the reply.
head -c 1000000 /dev/urandom >"$WORK/payload"
reply=$(in_c "$PY" - "$SRV4" "$WORK/payload" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], 7000), timeout=10)
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
print(out.decode().strip())
PY
)
check_eq "half-close: server saw the client's FIN and answered" \
	"1000000 $(sha256sum <"$WORK/payload" | cut -d' ' -f1)" "$reply"
check_eq "half-close: row closed completed with both byte counts" "closed|completed|1000000" \
	"$(wait_sql "SELECT state, close_reason, bytes_up FROM connections WHERE orig_dst_port = 7000" "closed|completed|1000000")"

# Backpressure: read 64 MB at about 16 MB/s; the agent must not buffer it.
rss_before=$(awk '/^VmRSS:/ { print $2 }' /proc/"$AGENT_PID"/status)
ip netns exec "$CNS" "$PY" - "$SRV4" >"$WORK/slow" <<'PY' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=30)
s.sendall(b"GET /bytes/67108864 HTTP/1.1\r\nHost: x\r\n\r\n")
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
n = 0
while True:
    d = s.recv(16384)
    if not d:
        break
    n += len(d)
    time.sleep(0.001)
print(n)
PY
reader=$!
peak=0
while kill -0 "$reader" 2>/dev/null; do
	rss=$(awk '/^VmRSS:/ { print $2 }' /proc/"$AGENT_PID"/status)
	[ "$rss" -gt "$peak" ] && peak=$rss
	sleep 0.1
done
wait "$reader"
got=$(cat "$WORK/slow")
check "slow reader got the whole 64 MB body and headers ($got bytes)" [ "$got" -gt 67108864 ]
grow=$((peak - rss_before))
check "agent RSS grew by at most 4 MB while relaying 64 MB to a slow reader (grew ${grow} KiB)" \
	[ "$grow" -le 4096 ]
check_eq "download row: closed, every byte counted" "closed|$got" \
	"$(wait_sql "SELECT state, bytes_down FROM connections WHERE orig_dst_port = 80" "closed|$got")"
stop_agent
finish
