#!/usr/bin/env bash
# WatchConnections: a console that disconnects mid-traffic and resumes from
# its last sequence number misses nothing and sees nothing twice; redirectctl
# watch follows events live and resumes; a watcher gets a clean status when
# the agent stops.
source "$(dirname "$0")/lib.sh"
: "${CTL:?CTL must point at redirectctl}"

setup_net
start_httpd 80
write_config "$WORK/agent.conf"
start_agent "$WORK/agent.conf"
SOCK="$WORK/agent.sock"

# With nobody watching, the watch thread sleeps: it does not poll.
watch_tid=""
for t in /proc/"$AGENT_PID"/task/*; do
	[ "$(cat "$t/comm")" = ra-watch ] && watch_tid=${t##*/}
done
check "the agent's threads are named (ra-watch found)" [ -n "$watch_tid" ]
switches() { awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$AGENT_PID/task/$watch_tid/status"; }
before=$(switches)
sleep 1
after=$(switches)
check "an idle watch thread stays asleep ($((after - before)) wake-ups in 1 s)" \
	[ "$((after - before))" -le 2 ]

"$PY" -m grpc_tools.protoc -I"$SRCDIR/proto" --python_out="$WORK" --grpc_python_out="$WORK" \
	"$SRCDIR"/proto/redirect/v1/*.proto

"$PY" "$SRCDIR/tests/scenario/watch_console.py" "$WORK" "$SOCK" 40 8 >"$WORK/seen" 2>"$WORK/console.err" &
console=$!
sleep 0.5
# Bounded traffic: 150 requests, each held 20 ms by the server.
for i in $(seq 150); do in_c curl -sS -o /dev/null "http://$SRV4/hold/0.02"; done
wait "$console"
total=$(sql "SELECT count(*) FROM connection_events")
check "each of the 150 connections left 1 to 3 events (total $total)" \
	[ "$total" -ge 150 -a "$total" -le 450 ]
check_eq "the console received every event exactly once, in order" \
	"$(sql "SELECT seq FROM connection_events ORDER BY seq")" "$(cat "$WORK/seen")"
check "it did disconnect and resume mid-traffic" grep -q "disconnected after 40" "$WORK/console.err"
check_eq "events are committed states: the last of each connection is closed" 150 \
	"$(sql "SELECT count(*) FROM connection_events e WHERE seq = (SELECT max(seq) FROM connection_events WHERE conn_id = e.conn_id) AND state = 'closed'")"

# redirectctl: live, then resumed.
timeout -s INT 3 "$CTL" --socket "$SOCK" --json watch >"$WORK/live" &
ctl=$!
sleep 0.5
in_c curl -sS -o /dev/null "http://$SRV4/"
wait "$ctl" || true
check_eq "watch --json follows a new connection live (its events, one JSON per line)" \
	"$(sql "SELECT seq FROM connection_events WHERE seq > $total ORDER BY seq")" \
	"$("$PY" -c 'import json,sys; [print(json.loads(l)["sequence"]) for l in sys.stdin]' <"$WORK/live")"
resumed=$(timeout -s INT 2 "$CTL" --socket "$SOCK" --json watch --after $((total - 2)) | wc -l || true)
check_eq "watch --after resumes from the log (every event after $((total - 2)))" \
	"$(sql "SELECT count(*) FROM connection_events WHERE seq > $((total - 2))")" "$resumed"
rc=0; "$CTL" --socket "$SOCK" watch --after 999999 2>"$WORK/err" >/dev/null || rc=$?
check_eq "a sequence past the newest is refused (exit 1)" 1 "$rc"
check "saying so" grep -q "is ahead of the newest event" "$WORK/err"

# Stopping the agent ends a watch with a status, not a hang.
"$CTL" --socket "$SOCK" watch >/dev/null 2>"$WORK/stop.err" &
ctl=$!
sleep 0.5
stop_agent
rc=0; wait "$ctl" || rc=$?
check_eq "a watcher ends when the agent stops (exit 1)" 1 "$rc"
check "with the agent's reason" grep -q "agent stopping" "$WORK/stop.err"
finish
