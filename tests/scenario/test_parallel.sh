#!/usr/bin/env bash
# 500 connections open at the same time through the agent: every one is
# answered and every one has its closed row. Then 1,500 idle ones held while
# the agent stops.
source "$(dirname "$0")/lib.sh"
N=500

setup_net
start_httpd 80
write_config "$WORK/agent.conf"
start_agent "$WORK/agent.conf"

# All N connections are open before any request is sent; the server then
# holds each for 1 s, so all N are relayed at the same time.
ok=$(in_c "$PY" "$SRCDIR/tests/scenario/pclient.py" "$SRV4" 80 $N /hold/1)
check_eq "$N responses with status 200" "$N" "$ok"
check_eq "$N closed rows" "$N" \
	"$(wait_sql "SELECT count(*) FROM connections WHERE state = 'closed' AND close_reason = 'completed'" "$N")"
peak=$(sql "SELECT max(n) FROM (SELECT (SELECT count(*) FROM connections c2
	WHERE c2.opened_at_us <= c1.opened_at_us AND c2.closed_at_us > c1.opened_at_us) AS n
	FROM connections c1)")
check_eq "all $N connections were open at once" "$N" "$peak"
check_eq "every row has both byte counts" 0 \
	"$(sql "SELECT count(*) FROM connections WHERE bytes_up = 0 OR bytes_down = 0")"

# 1,500 idle connections held open (3,000+ descriptors in the agent), then
# SIGTERM: the drain deadline closes them, the agent exits cleanly and
# removes its table. (libnftables select()s on its netlink socket: a socket
# opened now, above FD_SETSIZE, would abort the agent.)
ip netns exec "$SNS" "$PY" "$SRCDIR/tests/scenario/hold.py" server 9000 &
PIDS+=($!)
wait_port "$SNS" 9000
stop_agent
write_config "$WORK/agent2.conf" "[proxy]" "redirect_ports = 9000" "drain_timeout_ms = 500"
start_agent "$WORK/agent2.conf"
coproc HOLDER { ip netns exec "$CNS" "$PY" "$SRCDIR/tests/scenario/hold.py" client "$SRV4" 9000 1500; }
read -r _ held <&"${HOLDER[0]}"
check_eq "1500 idle connections held through the agent" 1500 "$held"
check_eq "1500 rows relaying" 1500 \
	"$(wait_sql "SELECT count(*) FROM connections WHERE state = 'relaying'" 1500)"
stop_agent
check "no nft table left" not has_table
check_eq "held sessions closed by the drain deadline" 1500 \
	"$(sql "SELECT count(*) FROM connections WHERE close_reason = 'agent shutdown'")"
eval "exec ${HOLDER[1]}>&-"
check_eq "integrity_check" ok "$(sql "PRAGMA integrity_check")"
finish
