#!/usr/bin/env bash
# 500 connections open at the same time through the agent: every one is
# answered and every one has its closed row.
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
stop_agent
check_eq "integrity_check" ok "$(sql "PRAGMA integrity_check")"
finish
