#!/usr/bin/env bash
# TPROXY mode on a gateway: client ns -> gateway ns (the agent) -> server ns.
# Forwarded connections to port 80 are intercepted over IPv4 and IPv6 and
# relayed with their original destination; the gateway's own connections and
# replies are not captured (the policy routing is scoped); the rules and
# routes the agent installs are gone after it stops.
source "$(dirname "$0")/lib.sh"

in_g() { ip netns exec "$GNS" "$@"; }

ip netns add "$CNS"
ip netns add "$GNS"
ip netns add "$SNS"
ip link add "${ID}c" netns "$CNS" type veth peer name "${ID}gc" netns "$GNS"
ip link add "${ID}s" netns "$SNS" type veth peer name "${ID}gs" netns "$GNS"
for ns in "$CNS" "$GNS" "$SNS"; do ip netns exec "$ns" ip link set lo up; done
in_c ip addr add 10.78.1.1/24 dev "${ID}c"
in_c ip addr add fd78:1::1/64 dev "${ID}c" nodad
in_g ip addr add 10.78.1.254/24 dev "${ID}gc"
in_g ip addr add fd78:1::fe/64 dev "${ID}gc" nodad
in_g ip addr add 10.78.2.254/24 dev "${ID}gs"
in_g ip addr add fd78:2::fe/64 dev "${ID}gs" nodad
in_s ip addr add 10.78.2.2/24 dev "${ID}s"
in_s ip addr add fd78:2::2/64 dev "${ID}s" nodad
in_c ip link set "${ID}c" up
in_g ip link set "${ID}gc" up
in_g ip link set "${ID}gs" up
in_s ip link set "${ID}s" up
in_c ip route add default via 10.78.1.254
in_c ip -6 route add default via fd78:1::fe
in_s ip route add default via 10.78.2.254
in_s ip -6 route add default via fd78:2::fe
in_g sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

start_httpd 80
write_config "$WORK/agent.conf" "[proxy]" "mode = tproxy" "redirect_ports = 80"
# start_agent runs in $CNS: this one belongs on the gateway.
ip netns exec "$GNS" "$AGENT" --foreground --config "$WORK/agent.conf" >>"$WORK/agent0.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
for _ in $(seq 200); do
	grep -q "redirect-agent .* started:" "$WORK/agent0.log" && break
	sleep 0.05
done
check "the agent started in TPROXY mode" grep -q "started:" "$WORK/agent0.log"
check "its prerouting chain is installed" in_g nft list chain inet redirect_agent_default prerouting >/dev/null
rules=$(in_g ip rule show)
check "policy rule: marked packets to table 15001" \
	grep -q "^9001:.*fwmark 0x40000000/0x40000000 lookup 15001" <<<"$rules"
check "scoped rule: what the gateway sends itself stays on main" \
	grep -q "^9000:.*fwmark 0x40000000/0x40000000 iif lo lookup main" <<<"$rules"
check "IPv6 rules too" grep -q "lookup 15001" <<<"$(in_g ip -6 rule show)"
check "table 15001 delivers locally" grep -q "^local default dev lo" <<<"$(in_g ip route show table 15001)"

check_eq "IPv4 request through the gateway" "hello from $(hostname)" \
	"$(in_c curl -sS --max-time 5 http://10.78.2.2/)"
size=$(in_c curl -sS --max-time 10 http://10.78.2.2/bytes/2000000 | wc -c)
check_eq "IPv4 2 MB download intact" 2000000 "$size"
check_eq "IPv6 request through the gateway" "hello from $(hostname)" \
	"$(in_c curl -sS --max-time 5 "http://[fd78:2::2]/")"

rows=$(wait_sql "SELECT count(*) FROM connections WHERE state = 'closed'" 3)
check_eq "three rows" 3 "$rows"
check_eq "original destination and client, as the client sent them" \
	"10.78.1.1|10.78.2.2|80|completed
10.78.1.1|10.78.2.2|80|completed
fd78:1::1|fd78:2::2|80|completed" \
	"$(sql "SELECT client_addr, orig_dst_addr, orig_dst_port, close_reason FROM connections ORDER BY id")"
check_eq "the agent reached the server from the gateway's own address" "10.78.2.254" \
	"$(sql "SELECT upstream_local_addr FROM connections WHERE id = 1")"
check_eq "the TPROXY mark is plumbing, not a proxy passed: state none, mark 0" "none|0" \
	"$(sql "SELECT redirect_state, records_mark FROM connections WHERE id = 1")"

# The gateway's own connection to the server is not intercepted.
check_eq "the gateway's own request goes direct" "hello from $(hostname)" \
	"$(in_g curl -sS --max-time 5 http://10.78.2.2/)"
# A port not listed is forwarded untouched.
ip netns exec "$SNS" "$PY" -m http.server --bind 10.78.2.2 8080 >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SNS" 8080
in_c curl -sS --max-time 5 -o /dev/null http://10.78.2.2:8080/
check_eq "port 8080 is forwarded, not intercepted" 0 "$(in_c curl -sS --max-time 5 -o /dev/null -w '%{http_code}' http://10.78.2.2:8080/ | grep -vc 200)"
# A connection made to the listener itself is refused and recorded.
in_c curl -sS --max-time 3 -o /dev/null http://10.78.1.254:15001/ 2>/dev/null || true
check_eq "a direct connection to the listener is refused and counted" 1 \
	"$(wait_sql "SELECT sum(count) FROM refused_connections WHERE reason LIKE 'not redirected%'" 1)"
sleep 0.3
check_eq "no other row" 3 "$(sql "SELECT count(*) FROM connections")"

kill -TERM "$AGENT_PID"
rc=0
wait "$AGENT_PID" || rc=$?
check "agent exits 0 on SIGTERM" [ "$rc" -eq 0 ]
check "no table left" not in_g nft list table inet redirect_agent_default 2>/dev/null
check "no policy rules left" not grep -q "fwmark 0x40000000" <<<"$(in_g ip rule show; in_g ip -6 rule show)"
check "no routes left in table 15001" [ -z "$(in_g ip route show table 15001 2>/dev/null)" ]
check_eq "after stop, traffic is forwarded as before" "hello from $(hostname)" \
	"$(in_c curl -sS --max-time 5 http://10.78.2.2/)"
finish
