#!/usr/bin/env bash
# kill -9 with connections open: the restarted agent replaces its stale nft
# table, marks the orphaned rows interrupted, keeps ids unique and the
# database passes integrity_check.
source "$(dirname "$0")/lib.sh"

setup_net
start_httpd 80
write_config "$WORK/agent.conf"
start_agent "$WORK/agent.conf"

in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
for i in 1 2 3; do
	ip netns exec "$CNS" curl -sS --max-time 20 -o /dev/null "http://$SRV4/hold/10" 2>/dev/null &
	PIDS+=($!)
done
check_eq "three connections relaying" 3 \
	"$(wait_sql "SELECT count(*) FROM connections WHERE state = 'relaying'" 3)"

kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
check "a crash leaves the nft table behind" has_table

start_agent "$WORK/agent.conf"
check_eq "one table after restart (stale one replaced)" 1 \
	"$(in_c nft list tables | grep -c 'redirect_agent_default')"
check_eq "orphaned rows marked interrupted" 3 \
	"$(sql "SELECT count(*) FROM connections WHERE state = 'interrupted'")"
check_eq "nothing left open or relaying" 0 \
	"$(sql "SELECT count(*) FROM connections WHERE state IN ('open', 'relaying')")"
check "restart logged the recovery" grep -q "marked 3 connections left open by a previous run as interrupted" "$WORK"/agent*.log
check_eq "integrity_check" ok "$(sql "PRAGMA integrity_check")"

check_eq "relaying again" "hello from $(hostname)" "$(in_c curl -sS --max-time 5 "http://$SRV4/")"
check_eq "new row got a fresh id" "5|closed" \
	"$(wait_sql "SELECT max(id), state FROM connections WHERE id = (SELECT max(id) FROM connections)" "5|closed")"
stop_agent
finish
