#!/usr/bin/env bash
# Cooperating agents on one host: two, then three agents with their own bits
# each redirect port 80. Every connection passes each agent once, in a chain
# the rows show (by_other, with the incoming marks), and reaches the server.
# A second agent with a bit already taken refuses to start. A broken rule that
# sends connections back is caught (by_self / previously_by_self, relayed once
# with the escape mark, still reaching the server; without the escape chain
# the repeat is refused, no runaway). One agent is stopped, then killed, mid-
# traffic: the others keep relaying and their rows stay consistent.
source "$(dirname "$0")/lib.sh"

# agent_conf NAME MARK PORT: a config for one agent of the chain.
agent_conf() {
	cat >"$WORK/$1.conf" <<EOF
[proxy]
agent_id = $1
mark = $2
listen_port = $3
redirect_ports = 80
connect_timeout_ms = 1500
drain_timeout_ms = 3000
workers = 2
[db]
path = $WORK/$1.db
[api]
local_socket = $WORK/$1.sock
EOF
}

# start_named NAME: start agent NAME and wait until it is up; its pid in
# PID_<NAME>. The log is appended to across restarts, so wait for one more
# "started" line than it had (an earlier run's line once made this return
# before a restarted agent listened: its first connection was refused).
start_named() {
	local log="$WORK/agent-$1.log" before
	before=$(grep -c "redirect-agent .* started:" "$log" 2>/dev/null || true)
	ip netns exec "$CNS" "$AGENT" --foreground --config "$WORK/$1.conf" >>"$log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	printf -v "PID_$1" '%s' "$pid"
	for _ in $(seq 200); do
		[ "$(grep -c "redirect-agent .* started:" "$log")" -gt "${before:-0}" ] && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
		sleep 0.05
	done
	return 1
}

q() { sqlite3 -batch -noheader "$WORK/$1.db" "$2"; }

# wait_sql_in NAME QUERY EXPECTED: poll agent NAME's database (10 s at most).
wait_sql_in() {
	local got=""
	for _ in $(seq 100); do
		got=$(q "$1" "$2" 2>/dev/null || true)
		[ "$got" == "$3" ] && break
		sleep 0.1
	done
	echo "$got"
}

# fetch N: N sequential requests; prints how many got the right body.
fetch() {
	local ok=0
	local body
	for _ in $(seq "$1"); do
		body=$(in_c curl -sS --max-time 5 "http://$SRV4/" 2>&1) || true
		[ "$body" == "hello from $(hostname)" ] && ok=$((ok + 1))
	done
	echo "$ok"
}

# chain_broken_links A B...: counts the by_other rows that break the chain: every by_other row of each agent continues a row of another
# agent: its client port is that row's upstream port, and its incoming mark
# is that row's incoming mark plus that agent's own bit.
chain_broken_links() {
	local sqlq="" first=1 a
	for a in "$@"; do
		[ $first -eq 1 ] && first=0 || sqlq+=" UNION ALL "
		sqlq+="SELECT '$a' AS agent, client_port, upstream_local_port, records_mark,
		       redirect_state, (SELECT mark FROM m WHERE name = '$a') AS own FROM $a.connections"
	done
	local att=""
	for a in "$@"; do att+="ATTACH '$WORK/$a.db' AS $a; "; done
	sqlite3 -batch -noheader ":memory:" "$att
		CREATE TEMP TABLE m (name TEXT, mark INTEGER);
		INSERT INTO m VALUES ('a', 1), ('b', 2), ('c', 4);
		CREATE TEMP VIEW r AS $sqlq;
		SELECT count(*) FROM r AS x WHERE x.redirect_state = 'by_other' AND NOT EXISTS
		  (SELECT 1 FROM r AS y WHERE y.agent != x.agent
		     AND y.upstream_local_port = x.client_port
		     AND (y.records_mark | y.own) = x.records_mark);"
}

setup_net
start_httpd 80
agent_conf a 0x1 15001
agent_conf b 0x2 15002
agent_conf c 0x4 15003
agent_conf dup 0x2 15009
start_named a
start_named b

# --- a bit already taken ---
rc=0
ip netns exec "$CNS" "$AGENT" --foreground --config "$WORK/dup.conf" >"$WORK/agent-dup.log" 2>&1 || rc=$?
check_eq "an agent with a bit already in use exits 78" 78 "$rc"
check "it names the agent holding the bit" grep -q "mark 0x2 clashes with agent 'b'" "$WORK/agent-dup.log"
check "it left no table behind" not has_table dup
check "the others' tables are intact" has_table a
check "... both" has_table b

# --- two agents ---
check_eq "10 requests through two agents" 10 "$(fetch 10)"
check_eq "agent a recorded 10" 10 "$(wait_sql_in a "SELECT count(*) FROM connections WHERE state = 'closed'" 10)"
check_eq "agent b recorded 10" 10 "$(wait_sql_in b "SELECT count(*) FROM connections WHERE state = 'closed'" 10)"
check_eq "each connection met exactly one agent first (state none, mark 0)" 10 \
	$(($(q a "SELECT count(*) FROM connections WHERE redirect_state = 'none' AND records_mark = 0") +
		$(q b "SELECT count(*) FROM connections WHERE redirect_state = 'none' AND records_mark = 0")))
check_eq "and the other second (by_other, the first one's bit)" 10 \
	$(($(q a "SELECT count(*) FROM connections WHERE redirect_state = 'by_other' AND records_mark = 2") +
		$(q b "SELECT count(*) FROM connections WHERE redirect_state = 'by_other' AND records_mark = 1")))
check_eq "every by_other row continues a row of the other agent" 0 "$(chain_broken_links a b)"
check_eq "records blob: v1, incoming mark, own bit, destination 10.77.0.2:80" 0 \
	"$(q b "SELECT count(*) FROM connections WHERE hex(redirect_records) !=
	   '01' || printf('%08X', records_mark) || '00000002' || '04' || '0A4D0002' ||
	   '000000000000000000000000' || '0050'")"
check_eq "context blob: destination, client, agent id" 0 \
	"$(q a "SELECT count(*) FROM connections WHERE hex(redirect_context) !=
	   '01' || '040A4D0002000000000000000000000000' || '0050' ||
	   '040A4D0001000000000000000000000000' || printf('%04X', client_port) ||
	   '01' || hex('a')")"
check_eq "no agent saw its own connection come back" 0 \
	$(($(q a "SELECT count(*) FROM connections WHERE redirect_state LIKE '%self'") +
		$(q b "SELECT count(*) FROM connections WHERE redirect_state LIKE '%self'")))

# The CLI and the API show the chain and the blobs.
# Which agent the kernel puts first is its business (same hook priority).
if [ "$(q b "SELECT count(*) FROM connections WHERE redirect_state = 'by_other'")" -gt 0 ]; then
	second=b first_bit=1 second_bit=2
else
	second=a first_bit=2 second_bit=1
fi
id=$(q $second "SELECT id FROM connections WHERE redirect_state = 'by_other' LIMIT 1")
out=$("$CTL" --socket "$WORK/$second.sock" conn "$id")
check "redirectctl conn shows redirect_state" grep -q "^redirect_state *by_other" <<<"$out"
check "... the mark chain" grep -q "^mark_chain *0x$first_bit -> $second(0x$second_bit)" <<<"$out"
check "... the records in hex" \
	grep -qi "^redirect_records *010000000${first_bit}0000000${second_bit}04" <<<"$out"
out=$("$CTL" --socket "$WORK/$second.sock" conns --limit 3)
check "redirectctl conns has a REDIRECT column with the incoming mark" \
	grep -q "by_other(0x$first_bit)" <<<"$out"

# --- a broken rule sends what b passed back to a ---
in_c nft -f - <<EOF
table inet broken {
	chain output {
		type nat hook output priority -50; policy accept;
		tcp dport 80 meta mark & 0x2 == 0x2 redirect to :15001
	}
}
EOF
before_a=$(q a "SELECT count(*) FROM connections")
check_eq "with the broken rule, 6 requests still reach the server" 6 "$(fetch 6)"
loops=$(wait_sql_in a "SELECT count(*) FROM connections WHERE redirect_state IN ('by_self', 'previously_by_self') AND state = 'closed' AND close_reason = 'completed'" 6)
check_eq "agent a caught each loop once and relayed it" 6 "$loops"
check_eq "and no more: 2 rows per request at a (first pass, loop)" $((before_a + 12)) \
	"$(q a "SELECT count(*) FROM connections")"
stats=$("$CTL" --socket "$WORK/a.sock" --json stats)
counted=$(/usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["by_self"] + s["previously_by_self"])' <<<"$stats")
check_eq "the loops are counted" 6 "$counted"

# Without the escape chains, the loop's second pass is refused: no runaway.
in_c nft delete chain inet redirect_agent_a escape
in_c nft delete chain inet redirect_agent_b escape
before_a=$(q a "SELECT count(*) FROM connections")
fetch 3 >/dev/null
refused=$(wait_sql_in a "SELECT count(*) FROM connections WHERE close_reason LIKE 'loop: came back again%'" 3)
check_eq "without the escape, each repeated loop is refused once" 3 "$refused"
sleep 0.5
check_eq "3 rows per request at a, then the loop stops" $((before_a + 9)) \
	"$(q a "SELECT count(*) FROM connections")"
in_c nft delete table inet broken
# Restore the escape chains: restart both (each replaces its own table).
kill -TERM "$PID_a" "$PID_b"
wait "$PID_a" "$PID_b" || true

# --- three agents ---
start_named a
start_named b
start_named c
for x in a b c; do q "$x" "DELETE FROM connections; DELETE FROM connection_events;"; done
check_eq "10 requests through three agents" 10 "$(fetch 10)"
for x in a b c; do
	check_eq "agent $x recorded 10" 10 \
		"$(wait_sql_in "$x" "SELECT count(*) FROM connections WHERE state = 'closed'" 10)"
done
check_eq "marks seen per connection: 0, one bit, two bits (30 rows)" "10 10 10" \
	"$(sqlite3 -batch -noheader ":memory:" "ATTACH '$WORK/a.db' AS a; ATTACH '$WORK/b.db' AS b;
	   ATTACH '$WORK/c.db' AS c;
	   CREATE TEMP VIEW r AS SELECT records_mark FROM a.connections UNION ALL
	     SELECT records_mark FROM b.connections UNION ALL SELECT records_mark FROM c.connections;
	   SELECT (SELECT count(*) FROM r WHERE records_mark = 0) || ' ' ||
	          (SELECT count(*) FROM r WHERE records_mark IN (1, 2, 4)) || ' ' ||
	          (SELECT count(*) FROM r WHERE records_mark IN (3, 5, 6));")"
check_eq "every by_other row continues a row of another agent" 0 "$(chain_broken_links a b c)"

# --- stop one mid-traffic: the chain closes up ---
in_c bash -c "for i in \$(seq 40); do curl -sS --max-time 5 http://$SRV4/ >/dev/null && echo ok || echo fail; sleep 0.05; done" >"$WORK/run1" 2>/dev/null &
runner=$!
sleep 0.6
kill -TERM "$PID_b"
wait "$PID_b" || true
wait "$runner" || true
check_eq "b stopped cleanly mid-traffic: all 40 requests succeeded" 40 "$(grep -c '^ok' "$WORK/run1")"
check "b removed its table" not has_table b

# --- kill one mid-traffic ---
start_named b
in_c bash -c "for i in \$(seq 40); do curl -sS --max-time 5 http://$SRV4/hold/0.2 >/dev/null && echo ok || echo fail; done" >"$WORK/run2" 2>/dev/null &
runner=$!
sleep 1
kill -KILL "$PID_b"
wait "$PID_b" 2>/dev/null || true
wait "$runner" || true
check "a survived" kill -0 "$PID_a"
check "c survived" kill -0 "$PID_c"
sleep 0.5
for x in a c; do
	check_eq "agent $x: no row left open or relaying" 0 \
		"$(q "$x" "SELECT count(*) FROM connections WHERE state IN ('open', 'relaying')")"
	check_eq "agent $x: every closed row has a reason, failed rows an error or reason" 0 \
		"$(q "$x" "SELECT count(*) FROM connections WHERE close_reason IS NULL OR closed_at_us IS NULL")"
	check_eq "agent $x: integrity_check" ok "$(q "$x" "PRAGMA integrity_check")"
done
# b's table outlived it; its restart replaces it and the chain works again.
check "the killed agent's table is still there" has_table b
start_named b
check_eq "after b restarts, 5 requests pass all three, the first one included" 5 "$(fetch 5)"
finish
