#!/usr/bin/env bash
# Server names and forwarding, with real peers: an openssl s_server (TLS, SNI
# read from the ClientHello), an HTTP server (Host header), and tinyproxy as
# the enterprise CONNECT proxy. Rules match on names (exact and "*."), block,
# or forward through the proxy; the first bytes are relayed as they came (the
# TLS handshake completes through the agent); a silent client is judged
# without a name after the bounded wait; a proxy that refuses is recorded.
source "$(dirname "$0")/lib.sh"

ctl() { "$CTL" --socket "$WORK/agent.sock" "$@"; }
tls() { in_c curl -sS -k --max-time 5 --resolve "$1:443:$SRV4" "https://$1/" 2>/dev/null; }
http() { in_c curl -sS --max-time 5 -H "Host: $1" "http://$SRV4:${2:-80}/" 2>/dev/null; }
row() { wait_sql "SELECT verdict, coalesce(rule_id, ''), coalesce(server_name, ''), close_reason FROM connections WHERE id = (SELECT max(id) FROM connections)" "$1"; }

setup_net
start_httpd 80
start_httpd 8080
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=example.test -days 1 \
	-keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null
# Started with ip netns exec, not in_s: $! must be the server, not a subshell.
ip netns exec "$SNS" openssl s_server -accept 443 -cert "$WORK/tls.pem" -key "$WORK/tls.key" \
	-www -quiet >"$WORK/s_server.log" 2>&1 &
PIDS+=($!)
wait_port "$SNS" 443
cat >"$WORK/tinyproxy.conf" <<EOF
Port 3128
Listen $SRV4
Timeout 30
LogFile "$WORK/tinyproxy.log"
LogLevel Connect
MaxClients 50
Allow 10.77.0.0/24
ConnectPort 443
ConnectPort 8080
EOF
ip netns exec "$SNS" tinyproxy -d -c "$WORK/tinyproxy.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SNS" 3128

write_config "$WORK/agent.conf" "[proxy]" "redirect_ports = 80, 443, 8080"
start_agent "$WORK/agent.conf"
cat >"$WORK/policy.json" <<EOF
{"default_action": "allow", "rules": [
  {"id": "no-blocked", "match": {"server_names": ["blocked.example.test"]}, "action": "block"},
  {"id": "via-proxy", "match": {"server_names": ["*.proxied.test"]},
   "action": "forward", "forward_to": "$SRV4:3128"},
  {"id": "proxy-says-no", "match": {"server_names": ["denied.example.test"]},
   "action": "forward", "forward_to": "$SRV4:3128"},
  {"id": "no-www-on-80", "match": {"server_names": ["www.example.test"], "dst_ports": [80]},
   "action": "block"},
  {"id": "plain-8080", "match": {"dst_ports": [8080]}, "action": "forward", "forward_to": "$SRV4:3128"}]}
EOF
check_eq "policy set" "policy version 1 set (5 rules)" "$(ctl policy set "$WORK/policy.json")"

# TLS: the name comes from the ClientHello, which then goes on to the server.
check "a TLS name that is allowed: the handshake completes through the agent" \
	grep -q "s_server" <<<"$(tls shop.example.test)"
check_eq "recorded with its SNI" "allow||shop.example.test|completed" "$(row "allow||shop.example.test|completed")"
check "a blocked TLS name gets nothing" [ -z "$(tls blocked.example.test)" ]
check_eq "recorded: block, the rule, the name" "block|no-blocked|blocked.example.test|blocked by policy" \
	"$(row "block|no-blocked|blocked.example.test|blocked by policy")"

# HTTP: the Host header.
check "Host www.example.test on port 80 is blocked" [ -z "$(http www.example.test)" ]
check_eq "recorded with its Host" "block|no-www-on-80|www.example.test|blocked by policy" \
	"$(row "block|no-www-on-80|www.example.test|blocked by policy")"
check_eq "another Host is relayed" "hello from $(hostname)" "$(http other.example.test)"
check_eq "recorded" "allow||other.example.test|completed" "$(row "allow||other.example.test|completed")"

# Forward through the CONNECT proxy (TLS, then plain HTTP in the tunnel).
check "a *.proxied.test name goes through tinyproxy" grep -q "s_server" <<<"$(tls a.proxied.test)"
check_eq "recorded: forward, the rule" "forward|via-proxy|a.proxied.test|completed" \
	"$(row "forward|via-proxy|a.proxied.test|completed")"
check "tinyproxy saw the CONNECT to the original destination" \
	grep -q "CONNECT.*$SRV4:443" "$WORK/tinyproxy.log"
check_eq "port 8080 (plain HTTP) through the proxy's tunnel" "hello from $(hostname)" \
	"$(http any.example.test 8080)"
check_eq "recorded: forward" "forward|plain-8080|any.example.test|completed" \
	"$(row "forward|plain-8080|any.example.test|completed")"
check "tinyproxy saw CONNECT $SRV4:8080" grep -q "CONNECT.*$SRV4:8080" "$WORK/tinyproxy.log"
check_eq "the upstream side of a forwarded row is the proxy connection" 1 \
	"$(sql "SELECT count(*) FROM connections WHERE rule_id = 'plain-8080' AND upstream_local_addr = '10.77.0.1'")"

# A proxy that refuses the tunnel (tinyproxy allows CONNECT to 443 and 8080 only).
check "denied by the proxy: the client gets nothing" [ -z "$(http denied.example.test)" ]
check_eq "recorded as the proxy's refusal" \
	"forward|proxy-says-no|denied.example.test|forward proxy refused the tunnel" \
	"$(row "forward|proxy-says-no|denied.example.test|forward proxy refused the tunnel")"

# A client that says nothing at first: judged without a name after the bounded
# wait (1 s), so the Host rule cannot apply; the bytes it sends later still flow.
out=$(in_c "$PY" - "$SRV4" <<'EOF'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=5)
time.sleep(1.4)
s.sendall(b"GET / HTTP/1.0\r\nHost: www.example.test\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.split(b"\r\n")[0].decode())
EOF
)
check_eq "a silent client is relayed once the wait is over" "HTTP/1.1 200 OK" "$out"
check_eq "judged with no name, by the default action" "allow|||completed" "$(row "allow|||completed")"

check_eq "redirectctl conn shows the server name" "www.example.test" \
	"$(ctl --json conn "$(sql "SELECT id FROM connections WHERE rule_id = 'no-www-on-80'")" |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin)["server_name"])')"
stop_agent
finish
