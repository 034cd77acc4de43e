#!/usr/bin/env bash
# Connections that cannot be relayed are recorded with a reason, and the agent
# keeps serving: upstream refused (RST), upstream silent (connect timeout), a
# direct connection to the listener (refused, never relayed to itself), a
# session idle for too long. A row is committed while its connection is open.
source "$(dirname "$0")/lib.sh"

setup_net
start_httpd 80
# Port 82 is silent: the server namespace drops its SYNs.
in_s nft -f - <<'NFT'
table inet silent {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 82 drop
	}
}
NFT
write_config "$WORK/agent.conf" "[proxy]" "redirect_ports = 80, 81, 82" "idle_timeout_s = 1"
start_agent "$WORK/agent.conf"

# 1. the row exists while the connection is still open
start=$(date +%s%N)
ip netns exec "$CNS" curl -sS --max-time 5 -o "$WORK/held" "http://$SRV4/hold/0.8" &
CURL=$!
state=""
for _ in $(seq 100); do
	state=$(sql "SELECT state FROM connections WHERE orig_dst_port = 80" 2>/dev/null || true)
	[ -n "$state" ] && break
	sleep 0.02
done
ms=$((($(date +%s%N) - start) / 1000000))
check "row visible while the connection is open (state '$state' after ${ms} ms)" \
	bash -c "[ '$state' = open ] || [ '$state' = relaying ]"
check "the held connection is still open at that point" kill -0 "$CURL"
wait "$CURL"
check_eq "held response arrived" "held" "$(cat "$WORK/held")"

# 2. upstream refused: the client sees a failure quickly, the row says why
rc=0
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4:81/" 2>/dev/null || rc=$?
check "client of a refused upstream fails (curl exit $rc)" [ "$rc" -ne 0 ]
check_eq "refused upstream: failed row with reason and error" \
	"failed|upstream connect failed|connection refused" \
	"$(wait_sql "SELECT state, close_reason, error FROM connections WHERE orig_dst_port = 81" \
		"failed|upstream connect failed|connection refused")"

# 3. upstream silent: connect_timeout_ms = 1500
rc=0
in_c curl -sS --max-time 6 -o /dev/null "http://$SRV4:82/" 2>/dev/null || rc=$?
check "client of a silent upstream fails (curl exit $rc)" [ "$rc" -ne 0 ]
check_eq "silent upstream: failed row after the connect timeout" \
	"failed|upstream connect timeout|connection timed out" \
	"$(wait_sql "SELECT state, close_reason, error FROM connections WHERE orig_dst_port = 82" \
		"failed|upstream connect timeout|connection timed out")"

# 4. a direct connection to the listener is refused and counted (per uid and second)
in_c curl -sS --max-time 3 -o /dev/null "http://127.0.0.1:15001/" 2>/dev/null || true
check_eq "direct connection refused and counted, with its user (root)" \
	"0|not redirected: direct connection to the agent's listener|1" \
	"$(wait_sql "SELECT uid, reason, count FROM refused_connections" \
		"0|not redirected: direct connection to the agent's listener|1")"
check_eq "not a row of its own" 0 "$(sql "SELECT count(*) FROM connections WHERE verdict = 'refuse'")"

# 5. idle timeout: the server holds 3 s, the agent gives up after 1 s of silence
rc=0
in_c curl -sS --max-time 6 -o /dev/null "http://$SRV4/hold/3" 2>/dev/null || rc=$?
check "client of an idle session is cut off (curl exit $rc)" [ "$rc" -ne 0 ]
check_eq "idle session: closed row with reason" "closed|idle timeout" \
	"$(wait_sql "SELECT state, close_reason FROM connections WHERE id = (SELECT max(id) FROM connections)" \
		"closed|idle timeout")"

# The agent is still serving after all that.
check_eq "still relaying" "hello from $(hostname)" "$(in_c curl -sS --max-time 5 "http://$SRV4/")"
stop_agent
check_eq "no row left open" 0 "$(sql "SELECT count(*) FROM connections WHERE state IN ('open','relaying')")"
finish
