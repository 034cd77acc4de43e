#!/usr/bin/env bash
# Fleet telemetry: every connection shipped, exactly once, to NATS
# JetStream (a real nats-server, JetStream on a temporary store) and to a
# rotated ECS file.
#
#  1. One agent, both sinks: each record matches its row, field by field.
#  2. Three agents (own marks, ports, databases, sockets) to one server:
#     300 connections, 300 records, 100 per agent subject, no duplicate.
#  3. The server stopped for 20 s under traffic and restarted on the same
#     store: the relay does not slow down, pending rises and drains, every
#     connection is in the stream exactly once.
#  4. SIGKILL while shipping: after the restart nothing is missing and
#     nothing is duplicated (Nats-Msg-Id de-duplication).
#  5. Unreachable server, wrong password, a server certificate from another
#     CA, a stream that refuses (full): each a clear error and degraded
#     health, the relay unaffected, nothing lost once the cause is gone.
#  6. The file: rotation under load, a restart, every line valid JSON, no
#     duplicate and no gap across the rotated files.
source "$(dirname "$0")/lib.sh"
: "${NATS_ADMIN:?NATS_ADMIN must point at the nats_admin test tool}"

NATS_PORT=14222
NATS_URL="nats://127.0.0.1:$NATS_PORT"
NATS_PID=""

# start_nats [EXTRA CONF LINES...]: nats-server in the client namespace,
# JetStream on $WORK/js (kept across restarts).
start_nats() {
	{
		echo "listen: 127.0.0.1:$NATS_PORT"
		echo "jetstream { store_dir: \"$WORK/js\" }"
		for line in "$@"; do echo "$line"; done
	} >"$WORK/nats.conf"
	ip netns exec "$CNS" nats-server -c "$WORK/nats.conf" >>"$WORK/nats.log" 2>&1 &
	NATS_PID=$!
	PIDS+=("$NATS_PID")
	wait_port "$CNS" "$NATS_PORT"
}
stop_nats() { kill "$NATS_PID"; wait "$NATS_PID" 2>/dev/null || true; }
admin() { in_c "$NATS_ADMIN" "$@"; }
# records [URL]: the stream's messages as "<msg id>\t<json>" lines.
records() { admin "${1:-$NATS_URL}" dump REDIRECT_CONN; }
# wait_count N [URL]: until the stream holds N messages (30 s at most).
wait_count() {
	local got=""
	for _ in $(seq 300); do
		got=$(admin "${2:-$NATS_URL}" count REDIRECT_CONN 2>/dev/null || true)
		[ "$got" == "$1" ] && break
		sleep 0.1
	done
	echo "$got"
}
# wait_drained: until the NATS sink has nothing pending (30 s at most); prints the last figure.
wait_drained() {
	local p=""
	for _ in $(seq 300); do
		p=$(stats_json | json 'd["export_sinks"][0]["pending"]')
		[ "$p" == 0 ] && break
		sleep 0.1
	done
	echo "$p"
}
json() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
stats_json() { "$CTL" --socket "$WORK/agent.sock" --json stats; }
# shipped UUID: the sequences of that agent's records in the stream, sorted, one line.
shipped() { records | cut -f1 | grep "^$1:" | cut -d: -f2 | sort -n | paste -sd' '; }
# finals: the sequences of the final events in the agent's database, one line.
finals() {
	sql "SELECT seq FROM connection_events WHERE state IN ('closed', 'failed', 'interrupted')
		ORDER BY seq" | paste -sd' '
}

setup_net
start_httpd 80
start_nats
admin "$NATS_URL" add-stream REDIRECT_CONN 'redirect.conn.>'

# ---- 1. one agent, both sinks, field by field
write_config "$WORK/agent.conf" "[proxy]" "redirect_ports = 80, 81" "[fleet]" "servers = $NATS_URL" \
	"[export]" "ecs_file = $WORK/conn.json"
start_agent "$WORK/agent.conf"
uuid=$("$CTL" --socket "$WORK/agent.sock" --json status | json 'd["agent_uuid"]')
check "GetInfo gives the agent's UUID" grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' <<<"$uuid"
check "redirectctl status shows it" grep -q "uuid.*$uuid" <<<"$("$CTL" --socket "$WORK/agent.sock" status)"
for i in $(seq 20); do in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/bytes/$((i * 100))"; done
in_c curl -sS --max-time 2 -o /dev/null "http://$SRV4:81/" 2>/dev/null || true # refused: a failed record
check_eq "the stream holds one record per connection" 21 "$(wait_count 21)"
# Every user's connections: not for other users to read, whatever the umask (here $(umask)).
check_eq "the ECS file is made mode 0640" 640 "$(stat -c %a "$WORK/conn.json")"
check_eq "the database and its WAL are 0640" "640 640" \
	"$(stat -c %a "$WORK/agent.db" "$WORK/agent.db-wal" | tr '\n' ' ' | sed 's/ $//')"
records >"$WORK/recs"
check_eq "message ids are <uuid>:<sequence>, all distinct" 21 \
	"$(cut -f1 "$WORK/recs" | grep -c "^$uuid:[0-9]*$" | tr -d ' ')"
check_eq "no id twice" 21 "$(cut -f1 "$WORK/recs" | sort -u | wc -l)"
sql "SELECT id, orig_dst_addr, orig_dst_port, bytes_up, bytes_down, state, verdict,
	coalesce(close_reason, ''), client_port FROM connections ORDER BY id" | tr '|' ' ' >"$WORK/rows"
cut -f2 "$WORK/recs" | "$PY" -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    r = d["redirect_agent"]
    print(r["connection_id"], d["destination"]["ip"], d["destination"]["port"],
          d["source"]["bytes"], d["destination"]["bytes"], r["state"], d["event"]["action"],
          d["event"].get("reason", ""), d["source"]["port"])' | sort -n >"$WORK/fromrecs"
check "every record matches its row (id, destination, bytes, state, verdict, reason, port)" \
	diff "$WORK/rows" "$WORK/fromrecs"
first=$(head -1 "$WORK/recs" | cut -f2)
check_eq "ECS fields: kind, category, type, direction, transport, agent" \
	"event network connection,end,allowed egress tcp redirect-agent $uuid default" \
	"$(json '" ".join([d["event"]["kind"], ",".join(d["event"]["category"]), ",".join(d["event"]["type"]), d["network"]["direction"], d["network"]["transport"], d["agent"]["type"], d["agent"]["id"], d["agent"]["name"]])' <<<"$first")"
check_eq "the failed connection: action allow, outcome failure, an error message" \
	"allow failure connection refused" \
	"$(grep '"state":"failed"' "$WORK/recs" | cut -f2 | json '" ".join([d["event"]["action"], d["event"]["outcome"], d["error"]["message"]])')"
check "unknown values are left out (no pid or server name was looked up)" \
	not grep -Eq '"process"|"tls"|"url"' "$WORK/recs"
check "the uid is (the fair share between users looks it up): root" \
	grep -q '"user":{"id":"0"}' "$WORK/recs"
for _ in $(seq 100); do [ "$(wc -l <"$WORK/conn.json")" -ge 21 ] && break; sleep 0.1; done
check_eq "the file has the same records, one JSON object per line" \
	"$(cut -f2 "$WORK/recs" | sort)" "$(sort "$WORK/conn.json")"
check_eq "stats: both sinks connected, everything acknowledged" "connected 0 connected 0" \
	"$(stats_json | json '" ".join("%s %d" % (s["state"], s["pending"]) for s in d["export_sinks"])')"
stop_agent
check_eq "stopping ships the rest: 21 records, none twice" 21 "$(records | cut -f1 | sort -u | wc -l)"

# ---- 2. three agents, one server: each redirects its own port
sum() { tr ' ' '\n' | awk '{ s += $1 } END { print s + 0 }'; }
start_httpd 8001
start_httpd 8002
start_httpd 8003
for n in 1 2 3; do
	write_config "$WORK/a$n.conf" "[proxy]" "agent_id = a$n" "mark = 0x$((1 << n))" \
		"listen_port = 1500$n" "redirect_ports = 800$n" "[db]" "path = $WORK/a$n.db" \
		"[api]" "local_socket = $WORK/a$n.sock" "[fleet]" "servers = $NATS_URL"
	start_agent "$WORK/a$n.conf"
	AGENTS[$n]=$AGENT_PID
done
before=$(admin "$NATS_URL" count REDIRECT_CONN)
total=0
for n in 1 2 3; do
	total=$((total + $(in_c "$PY" "$SRCDIR/tests/scenario/rate.py" "$SRV4" "800$n" 60 8 100 | sum)))
done
check_eq "300 connections, 100 through each agent" 300 "$total"
check_eq "the stream holds exactly 300 more records" $((before + 300)) "$(wait_count $((before + 300)))"
records >"$WORK/recs3"
for n in 1 2 3; do
	u=$("$CTL" --socket "$WORK/a$n.sock" --json status | json 'd["agent_uuid"]')
	check_eq "agent a$n: 100 records on its own subject, 100 distinct ids" "100 100" \
		"$(grep -c "^$u:.*\"agent\":{\"id\":\"$u\"" "$WORK/recs3") $(grep "^$u:" "$WORK/recs3" | cut -f1 | sort -u | wc -l)"
	check_eq "agent a$n: each record matches a row of its own" \
		"$(sqlite3 "$WORK/a$n.db" "SELECT group_concat(id || ':' || bytes_down, ' ') FROM (SELECT id, bytes_down FROM connections ORDER BY id)")" \
		"$(grep "^$u:" "$WORK/recs3" | cut -f2 | "$PY" -c '
import json, sys
rows = sorted((json.loads(l)["redirect_agent"]["connection_id"], json.loads(l)["destination"]["bytes"]) for l in sys.stdin)
print(" ".join("%d:%d" % r for r in rows))')"
done
for n in 1 2 3; do AGENT_PID=${AGENTS[$n]}; stop_agent; done

# ---- 3. the server away for 20 s under traffic
rm -f "$WORK"/agent.db*
write_config "$WORK/agent.conf" "[fleet]" "servers = $NATS_URL" "[export]" "degraded_after_s = 5"
start_agent "$WORK/agent.conf"
in_c "$PY" "$SRCDIR/tests/scenario/rate.py" "$SRV4" 80 32 4 >"$WORK/rate" &
load=$!
PIDS+=($load)
sleep 6
stop_nats
sleep 8
pending=$(stats_json | json 'd["export_sinks"][0]["pending"]')
check "while the server is away, pending rises ($pending events)" [ "$pending" -gt 100 ]
check "and health is degraded, saying why" grep -q "export nats cannot ship" \
	<<<"$("$CTL" --socket "$WORK/agent.sock" status)"
sleep 12
start_nats
wait "$load" || true
# Medians of whole seconds: the server went at 6 s and came back at 26 s.
median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
read -r -a per_s <"$WORK/rate"
rate_before=$(echo "${per_s[@]:1:5}" | median)
rate_during=$(echo "${per_s[@]:8:17}" | median)
rate_after=$(echo "${per_s[@]:27:4}" | median)
echo "connections/s (medians): before the outage $rate_before, during it $rate_during, after it $rate_after"
# Measured against the relay's own rate outside the outage, before and after.
check "the relay did not slow down while the server was away" \
	[ $((rate_during * 100)) -ge $(((rate_before + rate_after) * 90 / 2)) ]
uuid=$("$CTL" --socket "$WORK/agent.sock" --json status | json 'd["agent_uuid"]')
check_eq "pending drained" 0 "$(wait_drained)"
check_eq "afterwards every connection is in the stream" "$(sql "SELECT count(*) FROM connections")" \
	"$(shipped "$uuid" | wc -w | tr -d ' ')"
check_eq "exactly once: each final event of the database once in the stream" "$(finals)" "$(shipped "$uuid")"
check "health serving again" grep -q "^health     serving" <<<"$("$CTL" --socket "$WORK/agent.sock" status)"

# ---- 4. SIGKILL while shipping
stop_nats # the backlog builds up, then the agent dies with it in flight
in_c "$PY" "$SRCDIR/tests/scenario/rate.py" "$SRV4" 80 3 4 >/dev/null
start_nats
sleep 0.3 # shipping has begun
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
start_agent "$WORK/agent.conf"
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
wait_sql "SELECT count(*) FROM connections WHERE state = 'open'" 0 >/dev/null
wait_drained >/dev/null
check_eq "after the restart every final event is in the stream, none twice (Nats-Msg-Id)" \
	"$(finals)" "$(shipped "$uuid")"
stop_agent

# ---- 5. failures: each said plainly, the relay unaffected, nothing lost
fail_case() { # fail_case WHAT EXPECTED-ERROR-PATTERN CONFIG-LINES...
	local what=$1 pattern=$2
	shift 2
	rm -f "$WORK"/agent.db*
	write_config "$WORK/agent.conf" "[export]" "degraded_after_s = 1" "[fleet]" "$@"
	start_agent "$WORK/agent.conf"
	check_eq "$what: the relay works" "hello from $(hostname)" "$(in_c curl -sS --max-time 5 "http://$SRV4/")"
	check_eq "$what: and records" 1 "$(wait_sql "SELECT count(*) FROM connections WHERE state = 'closed'" 1)"
	sleep 2.5
	local st
	st=$("$CTL" --socket "$WORK/agent.sock" status)
	check "$what: health degraded, saying why" grep -Eq "export nats cannot ship.*$pattern" <<<"$st" ||
		echo "$st"
	check "$what: the log says why" grep -Eq "$pattern" "$WORK"/agent*.log
}
# fixed CONFIG-LINES...: the same database, the cause removed: the backlog ships.
fixed() {
	stop_agent
	write_config "$WORK/agent.conf" "[fleet]" "$@"
	start_agent "$WORK/agent.conf"
	local uuid
	uuid=$("$CTL" --socket "$WORK/agent.sock" --json status | json 'd["agent_uuid"]')
	wait_drained >/dev/null
	check_eq "cause removed: nothing lost, every final event shipped" "$(finals)" "$(shipped "$uuid")"
}
fail_case "unreachable server" "cannot connect.*(refused|No server)" "servers = nats://127.0.0.1:14299"
fixed "servers = $NATS_URL"
stop_agent

stop_nats
start_nats "authorization { user: agent, password: right }"
fail_case "wrong password" "Authorization Violation" "servers = nats://agent:wrong@127.0.0.1:$NATS_PORT"
check "the password is never logged" not grep -q "wrong@" "$WORK"/agent*.log
NATS_URL="nats://agent:right@127.0.0.1:$NATS_PORT"
fixed "servers = $NATS_URL"
stop_agent

# A server certificate from another CA.
mkdir -p "$WORK/pki" && cd "$WORK/pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ca >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=other >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\n' >ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext >/dev/null 2>&1
cd - >/dev/null
stop_nats
start_nats "tls { cert_file: \"$WORK/pki/srv.pem\", key_file: \"$WORK/pki/srv.key\" }"
fail_case "a server certificate from another CA" "SSL.*(certificate|issuer)" \
	"servers = tls://127.0.0.1:$NATS_PORT" "tls_ca = $WORK/pki/other.pem"
stop_agent
write_config "$WORK/agent.conf" "[fleet]" "servers = tls://127.0.0.1:$NATS_PORT" "tls_ca = $WORK/pki/ca.pem"
start_agent "$WORK/agent.conf"
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
check_eq "with the right CA, TLS: everything shipped" 0 "$(wait_drained)"
stop_agent

# A stream that refuses: full (discard new). Nothing is lost: once there
# is room again, the backlog goes in.
stop_nats
start_nats
NATS_URL="nats://127.0.0.1:$NATS_PORT"
admin "$NATS_URL" update-stream REDIRECT_CONN 'redirect.conn.>' "$(admin "$NATS_URL" count REDIRECT_CONN)"
fail_case "a full stream" "maximum messages|refused" "servers = $NATS_URL"
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
full=$(admin "$NATS_URL" count REDIRECT_CONN)
admin "$NATS_URL" update-stream REDIRECT_CONN 'redirect.conn.>' 0
n=$(sql "SELECT count(*) FROM connections")
check_eq "room again: the refused records go in" $((full + n)) "$(wait_count $((full + n)))"
stop_agent

# ---- 6. the file: rotation, a restart, no duplicate, no gap
rm -f "$WORK"/agent.db* "$WORK/conn.json"*
write_config "$WORK/agent.conf" "[export]" "ecs_file = $WORK/conn.json" "ecs_file_max_mb = 1" \
	"ecs_file_keep = 50"
start_agent "$WORK/agent.conf"
in_c "$PY" "$SRCDIR/tests/scenario/rate.py" "$SRV4" 80 60 8 1500 >/dev/null
stop_agent
start_agent "$WORK/agent.conf"
in_c "$PY" "$SRCDIR/tests/scenario/rate.py" "$SRV4" 80 60 8 1500 >/dev/null
stop_agent
files=$(ls "$WORK"/conn.json* | wc -l)
check "rotated: $files files of at most 1 MiB" [ "$files" -gt 2 ]
check "no file over the limit" not find "$WORK" -name 'conn.json*' -size +1025k -print -quit | grep -q .
cat $(ls -r "$WORK"/conn.json.* | sort -t. -k3 -n -r) "$WORK/conn.json" >"$WORK/all.json"
check "every line is valid JSON with the same fields (those of unknown values left out)" "$PY" -c '
import json, sys
base = None
optional = {"user", "process", "tls", "url", "error"}
for line in open(sys.argv[1]):
    k = set(json.loads(line))
    base = base or k - optional
    assert base <= k <= base | optional, (k, base)' "$WORK/all.json"
seqs=$("$PY" -c '
import json, sys
print(" ".join(str(json.loads(l)["event"]["sequence"]) for l in open(sys.argv[1])))' "$WORK/all.json")
check_eq "as many lines as connections" "$(sql "SELECT count(*) FROM connections")" "$(wc -l <"$WORK/all.json")"
check "in sequence order, none twice" "$PY" -c '
import sys
s = [int(x) for x in sys.argv[1].split()]
assert s == sorted(s) and len(s) == len(set(s))' "$seqs"
check_eq "and no gap: every final event of the database is there" \
	"$(sql "SELECT group_concat(seq, ' ') FROM (SELECT seq FROM connection_events WHERE state IN ('closed','failed','interrupted') ORDER BY seq)")" "$seqs"
finish
