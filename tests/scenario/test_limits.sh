#!/usr/bin/env bash
# Limits: at max_sessions the agent pauses accepting and resumes as sessions
# end (every client is served, late); when descriptors run out (EMFILE) the
# agent survives, counts the failures and serves again once descriptors return.
source "$(dirname "$0")/lib.sh"

setup_net
start_httpd 80
write_config "$WORK/agent.conf" "[proxy]" "max_sessions = 4" "workers = 1"
start_agent "$WORK/agent.conf"

# 12 clients at once, each held 0.5 s by the server, 4 at a time through the agent.
start=$(date +%s%N)
ok=$(in_c "$PY" "$SRCDIR/tests/scenario/pclient.py" "$SRV4" 80 12 /hold/0.5)
ms=$((($(date +%s%N) - start) / 1000000))
check_eq "all 12 clients served" 12 "$ok"
check "served in waves of 4 (took $ms ms, >= 1500)" [ "$ms" -ge 1500 ]
check_eq "12 closed rows" 12 "$(wait_sql "SELECT count(*) FROM connections WHERE state = 'closed'" 12)"
peak=$(sql "SELECT max(n) FROM (SELECT (SELECT count(*) FROM connections c2
	WHERE c2.opened_at_us <= c1.opened_at_us AND c2.closed_at_us > c1.opened_at_us) AS n
	FROM connections c1)")
check "never more than 4 sessions at once (peak $peak)" [ "$peak" -le 4 ]
check "the pause was logged" grep -q "max_sessions reached: accepting paused until a session ends" "$WORK"/agent*.log
stop_agent

# EMFILE: lower the running agent's descriptor soft limit to what it holds.
write_config "$WORK/agent2.conf" "[proxy]" "workers = 1"
start_agent "$WORK/agent2.conf"
# The limit bounds descriptor numbers and accept takes the lowest free one,
# so "no spare descriptor" means: soft limit = lowest unused number.
lowest_free() {
	local n=0
	while [ -e /proc/"$AGENT_PID"/fd/$n ]; do n=$((n + 1)); done
	echo $n
}
hard=$(prlimit --pid "$AGENT_PID" --nofile --noheadings --output HARD)

# A: one spare descriptor. Accept succeeds, the upstream socket cannot be made:
# those sessions fail, each with a row that says why.
prlimit --pid "$AGENT_PID" --nofile=$(($(lowest_free) + 1)):
ok=$(in_c "$PY" "$SRCDIR/tests/scenario/pclient.py" "$SRV4" 80 20 /hold/0.1 2>/dev/null || echo 0)
check "clients failed while descriptors ran out ($ok of 20 served)" [ "$ok" -lt 20 ]
check_eq "each failed session has a row saying why" "$((20 - ok))" \
	"$(wait_sql "SELECT count(*) FROM connections WHERE state = 'failed' AND error = 'too many open files'" "$((20 - ok))")"
check "the agent survived" kill -0 "$AGENT_PID"

# B: no spare descriptor. Accept fails with EMFILE: the agent pauses
# accepting, the clients wait in the kernel backlog, and once descriptors
# are back every one of them is served.
prlimit --pid "$AGENT_PID" --nofile="$(lowest_free)":
ip netns exec "$CNS" "$PY" "$SRCDIR/tests/scenario/pclient.py" "$SRV4" 80 20 /hold/0.1 >"$WORK/waiting" 2>"$WORK/waiting.err" &
client=$!
sleep 1
check "EMFILE on accept was logged" grep -q "accept failed, pausing: too many open files" "$WORK"/agent*.log
check "the clients are still waiting" kill -0 "$client"
prlimit --pid "$AGENT_PID" --nofile="$hard":
wait "$client" || cat "$WORK/waiting.err"
check_eq "with descriptors back, all 20 waiting clients served" 20 "$(cat "$WORK/waiting")"
stop_agent
check_eq "no row left open" 0 "$(sql "SELECT count(*) FROM connections WHERE state IN ('open','relaying')")"
finish
