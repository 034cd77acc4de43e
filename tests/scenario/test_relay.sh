#!/usr/bin/env bash
# curl through the redirect over IPv4 and IPv6: the bytes arrive intact, each
# connection has one row with the right original destination, byte counts and
# state; SIGTERM removes the agent's nft table.
source "$(dirname "$0")/lib.sh"

setup_net
start_httpd 80
write_config "$WORK/agent.conf"
start_agent "$WORK/agent.conf"

check "the agent's nft table is installed" has_table

body=$(in_c curl -sS --max-time 5 "http://$SRV4/")
check_eq "IPv4 request relayed" "hello from $(hostname)" "$body"
size=$(in_c curl -sS --max-time 10 "http://$SRV4/bytes/1000000" | wc -c)
check_eq "IPv4 1 MB download intact" 1000000 "$size"
body=$(in_c curl -sS --max-time 5 "http://[$SRV6]/")
check_eq "IPv6 request relayed" "hello from $(hostname)" "$body"
head -c 300000 /dev/urandom >"$WORK/upload"
sum=$(in_c curl -sS --max-time 10 --data-binary @"$WORK/upload" "http://$SRV4/echo" | sha256sum)
check_eq "IPv4 300 kB upload echoed intact" "$(sha256sum <"$WORK/upload")" "$sum"

rows=$(wait_sql "SELECT count(*) FROM connections WHERE state = 'closed'" 4)
check_eq "four closed rows" 4 "$rows"
check_eq "original destinations recorded" \
	"$SRV4|80|4
$SRV4|80|4
$SRV6|80|6
$SRV4|80|4" \
	"$(sql "SELECT orig_dst_addr, orig_dst_port, family FROM connections ORDER BY id")"
check_eq "client address is the client namespace's" "10.77.0.1" \
	"$(sql "SELECT client_addr FROM connections WHERE id = 1")"
check_eq "upstream local address recorded" "10.77.0.1" \
	"$(sql "SELECT upstream_local_addr FROM connections WHERE id = 1")"
down=$(sql "SELECT bytes_down FROM connections WHERE id = 2")
check "download bytes_down > 1000000 (body + headers): $down" [ "$down" -gt 1000000 ]
up=$(sql "SELECT bytes_up FROM connections WHERE id = 4")
check "upload bytes_up > 300000: $up" [ "$up" -gt 300000 ]
check_eq "every row: allow, completed, no error, connect time set" "4" \
	"$(sql "SELECT count(*) FROM connections WHERE verdict = 'allow'
	        AND close_reason = 'completed' AND error IS NULL AND connect_us > 0
	        AND redirect_state = 'none' AND closed_at_us >= opened_at_us")"

# A connection to a port that is not redirected goes direct: no row.
ip netns exec "$SNS" "$PY" -m http.server --bind "$SRV4" 8080 >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SNS" 8080
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4:8080/"
sleep 0.3
check_eq "port 8080 is not redirected" 4 "$(sql "SELECT count(*) FROM connections")"

stop_agent
check "no nft table left after SIGTERM" not has_table
check_eq "traffic goes direct after stop" "hello from $(hostname)" \
	"$(in_c curl -sS --max-time 5 "http://$SRV4/")"
check_eq "integrity_check" ok "$(sql "PRAGMA integrity_check")"
finish
