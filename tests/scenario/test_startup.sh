#!/usr/bin/env bash
# The command line and start-up errors: clear messages, documented exit codes,
# and a second agent on a taken port refuses to start without harming the first.
source "$(dirname "$0")/lib.sh"

check "--version prints the version" bash -c "'$AGENT' --version | grep -Eq '^redirect-agent [0-9]+\.[0-9]+\.[0-9]+'"
check "--help describes --config" bash -c "'$AGENT' --help | grep -q -- '--config FILE'"
rc=0; "$AGENT" --bogus >/dev/null 2>&1 || rc=$?
check_eq "an unknown option exits 2" 2 "$rc"

printf '[proxy]\nlisten_port = 15001\nmark = nope\n' >"$WORK/bad.conf"
rc=0; out=$("$AGENT" --foreground --config "$WORK/bad.conf" 2>&1) || rc=$?
check_eq "a config error exits 78" 78 "$rc"
check_eq "the error names file, line and key" \
	"redirect-agent: configuration error: $WORK/bad.conf:3: [proxy] mark: 'nope' is not a number" "$out"
rc=0; "$AGENT" --config "$WORK/missing.conf" 2>/dev/null || rc=$?
check_eq "a missing config file exits 78" 78 "$rc"
write_config "$WORK/agent.conf"
check "--check-config accepts a good file" "$AGENT" --check-config --config "$WORK/agent.conf"

setup_net
start_httpd 80
start_agent "$WORK/agent.conf"
first=$AGENT_PID
write_config "$WORK/second.conf" "[proxy]" "agent_id = second"
sed -i "s|$WORK/agent.db|$WORK/second.db|" "$WORK/second.conf"
rc=0; out=$(in_c "$AGENT" --foreground --config "$WORK/second.conf" 2>&1) || rc=$?
check_eq "a second agent on the same port exits 1" 1 "$rc"
check "it says the port is in use" grep -q "port 15001 on 127.0.0.1 is already in use" <<<"$out"
check "it left no table of its own" not has_table second
check "the first agent is still running" kill -0 "$first"
check_eq "and still relaying" "hello from $(hostname)" "$(in_c curl -sS --max-time 5 "http://$SRV4/")"

# SIGTERM during start-up: a clean stop all the same (exit 0, no rules left).
stop_agent
ip netns exec "$CNS" "$AGENT" --foreground --config "$WORK/agent.conf" >"$WORK/early.log" 2>&1 &
early=$!
sleep 0.05
kill -TERM "$early"
rc=0; wait "$early" || rc=$?
check_eq "SIGTERM during start-up: exit 0" 0 "$rc"
check "SIGTERM during start-up: no table left" not has_table
start_agent "$WORK/agent.conf"

# Daemon mode: the command returns once the agent is ready, or with its failure.
stop_agent
in_c "$AGENT" --config "$WORK/agent.conf"
check "daemonized agent installed its table" has_table
dpid=$(in_c ss -Hltnp "sport = :15001" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
check "daemonized agent is listening (pid $dpid)" [ -n "$dpid" ]
kill -TERM "$dpid"
for _ in $(seq 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
check "daemonized agent stopped on SIGTERM" not kill -0 "$dpid"
check "and removed its table" not has_table
# (A database that cannot be opened is no reason to fail: test_hostile.sh.)
write_config "$WORK/nosock.conf" "[api]" "local_socket = /proc/no-such-dir/agent.sock"
rc=0; in_c "$AGENT" --config "$WORK/nosock.conf" 2>/dev/null || rc=$?
check_eq "a daemonized start that fails (the API socket) exits 1" 1 "$rc"
# The child reports the failure, then exits (under ASan, after its leak check).
for _ in $(seq 50); do pgrep -f "$WORK/nosock.conf" >/dev/null || break; sleep 0.1; done
check "and leaves no agent behind" not pgrep -f "$WORK/nosock.conf"

# The documented purge (deploy/purge.sql, README "Data and privacy"): with
# the agent stopped, the record goes, from the file and its WAL; identity,
# policy and numbering stay.
start_agent "$WORK/agent.conf"
echo '{"rules": [{"id": "r", "action": "allow", "match": {"dst_ports": [80]}}]}' >"$WORK/p.json"
"$CTL" --socket "$WORK/agent.sock" policy set "$WORK/p.json" >/dev/null
for _ in 1 2 3; do in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"; done
uuid=$("$CTL" --socket "$WORK/agent.sock" --json status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["agent_uuid"])')
stop_agent
last_id=$(sqlite3 "$WORK/agent.db" "SELECT max(id) FROM connections")
check "rows to purge ($last_id), naming $SRV4" grep -qa "$SRV4" "$WORK/agent.db" "$WORK/agent.db-wal"
check "deploy/purge.sql runs" bash -c 'sqlite3 "$1" <"$2" >/dev/null' _ "$WORK/agent.db" "$SRCDIR/deploy/purge.sql"
check_eq "no connection, event or refusal is left" "0|0|0" \
	"$(sqlite3 "$WORK/agent.db" "SELECT (SELECT count(*) FROM connections), (SELECT count(*) FROM connection_events), (SELECT count(*) FROM refused_connections)")"
check "nor any trace of the destination in the file or its WAL" \
	not grep -qa "$SRV4" "$WORK/agent.db" $(ls "$WORK"/agent.db-wal 2>/dev/null)
start_agent "$WORK/agent.conf"
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
check_eq "the same agent afterwards (UUID)" "$uuid" \
	"$("$CTL" --socket "$WORK/agent.sock" --json status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["agent_uuid"])')"
check "its policy kept" grep -q '"id": *"r"' <<<"$("$CTL" --socket "$WORK/agent.sock" policy get)"
new_id=$(wait_sql "SELECT count(*) FROM connections" 1 >/dev/null; sqlite3 "$WORK/agent.db" "SELECT min(id) FROM connections")
check "connection ids go on after the purged ones ($new_id > $last_id)" [ "$new_id" -gt "$last_id" ]
stop_agent
finish
