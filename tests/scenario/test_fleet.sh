#!/usr/bin/env bash
# Fleet control over NATS (a real nats-server with JetStream and the
# example permissions of deploy/nats/, started here):
#
#  1. Three agents in two groups: the inventory lists all three within two
#     heartbeats.
#  2. A group policy that blocks a CIDR: the group's agents block it within
#     2 s and record the fleet author; the other agent does not.
#  3. An invalid document: each agent of the group reports the rejection
#     with its paths, and keeps judging by the previous policy.
#  4. An agent key overrides the group key; deleting it falls back.
#  5. An agent stopped while the policy changed applies the new one before
#     it takes a connection; started with NATS down, it runs the last one.
#  6. fleet call reaches each agent; a reader cannot call Policy.SetPolicy or
#     write the policy bucket; an agent cannot publish as another, nor read
#     another's policy key; a local SetPolicy is refused under a fleet key.
#  7. A killed agent is marked stale, then leaves the inventory.
#  8. A reload moves an agent to another group, with a new heartbeat and a
#     new password: it connects again and follows the new group's policy.
#     Turning the fleet off, or renaming its subjects, needs a restart.
source "$(dirname "$0")/lib.sh"
: "${CTL:?CTL must point at redirectctl}"
: "${NATS_ADMIN:?NATS_ADMIN must point at the nats_admin test tool}"

PORT=14333
URL="nats://127.0.0.1:$PORT"
NATS_PID=""
json() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
admin() { in_c "$NATS_ADMIN" "$@"; }
fleet() { # fleet USER COMMAND...: redirectctl fleet as USER (operator, admin, reader)
	local user=$1
	shift
	in_c "$CTL" fleet --server "$URL" --user "$user" --password "pw-$user" "$@"
}
get() { in_c curl -sS --max-time 3 "http://$SRV4:$1/" 2>/dev/null; }
hello="hello from $(hostname)"

start_nats() {
	sed -e "s|127.0.0.1:4222|127.0.0.1:$PORT|" -e "s|/var/lib/nats|$WORK/js|" \
		"$SRCDIR/deploy/nats/nats-server.conf" >"$WORK/nats.conf"
	ip netns exec "$CNS" nats-server -c "$WORK/nats.conf" >>"$WORK/nats.log" 2>&1 &
	NATS_PID=$!
	PIDS+=("$NATS_PID")
	wait_port "$CNS" "$PORT"
}
stop_nats() { kill "$NATS_PID"; wait "$NATS_PID" 2>/dev/null || true; }

setup_net
for n in 1 2 3; do start_httpd 800$n; done
# agent_conf N [EXTRA LINES...]: agent aN, its own ports, mark, database, socket.
agent_conf() {
	local n=$1
	shift
	write_config "$WORK/a$n.conf" "[proxy]" "agent_id = a$n" "mark = 0x$((1 << n))" \
		"listen_port = 1500$n" "redirect_ports = 800$n" "[db]" "path = $WORK/a$n.db" \
		"[api]" "local_socket = $WORK/a$n.sock" "$@"
}
declare -A UUID PID
for n in 1 2 3; do # the first start makes each agent's UUID
	agent_conf $n
	start_agent "$WORK/a$n.conf"
	UUID[$n]=$("$CTL" --socket "$WORK/a$n.sock" --json status | json 'd["agent_uuid"]')
	stop_agent
done
"$SRCDIR/deploy/nats/users.sh" pw-operator pw-admin pw-reader \
	"${UUID[1]}:pw-a1:branch" "${UUID[2]}:pw-a2:branch" "${UUID[3]}:pw-a3:hq" >"$WORK/users.conf"
start_nats
check "fleet init makes the stream and buckets (operator)" \
	fleet operator init --inventory-ttl 12s
declare -A LOG
start_fleet_agent() { # start_fleet_agent N GROUP
	agent_conf "$1" "[fleet]" "servers = nats://agent-${UUID[$1]}:pw-a$1@127.0.0.1:$PORT" \
		"groups = $2" "heartbeat_s = 2"
	LOG[$1]="$WORK/agent${#PIDS[@]}.log" # start_agent's log file
	start_agent "$WORK/a$1.conf"
	PID[$1]=$AGENT_PID
}
start_fleet_agent 1 branch
start_fleet_agent 2 branch
start_fleet_agent 3 hq

# ---- 1. inventory
listed=""
for _ in $(seq 40); do
	listed=$(fleet reader agents --json | json 'len([a for a in d["agents"] if not a["stale"]])')
	[ "$listed" = 3 ] && break
	sleep 0.1
done
check_eq "the inventory lists three agents within two heartbeats (reader)" 3 "$listed"
inv=$(fleet reader agents --json)
check_eq "with names, groups and local policies" "a1:branch:local a2:branch:local a3:hq:local" \
	"$(json '" ".join("%s:%s:%s" % (a["name"], ",".join(a["groups"]), a["policy"]["source"]) for a in sorted(d["agents"], key=lambda a: a["name"]))' <<<"$inv")"
check "the table marks nothing stale" not grep -q STALE <<<"$(fleet reader agents)"

# ---- 2. a group policy
cat >"$WORK/block.json" <<EOF
{"default_action": "allow", "rules": [{"id": "no-srv", "action": "block", "match": {"dst_cidrs": ["$SRV4/32"]}}]}
EOF
t0=$(date +%s%N)
rev=$(fleet admin policy set branch "$WORK/block.json" | awk '{ print $3 }')
check "the admin sets group.branch (revision $rev)" [ -n "$rev" ]
for _ in $(seq 40); do
	[ -z "$(get 8001)" ] && [ -z "$(get 8002)" ] && break
	sleep 0.05
done
echo "group policy in force at both agents after $((($(date +%s%N) - t0) / 1000000)) ms"
check "a1 blocks within 2 s" [ -z "$(get 8001)" ]
check "a2 blocks" [ -z "$(get 8002)" ]
check_eq "a3 (group hq) does not" "$hello" "$(get 8003)"
check_eq "a1 recorded the fleet author" "fleet:group.branch@$rev" \
	"$(sqlite3 "$WORK/a1.db" "SELECT author FROM policies ORDER BY version DESC LIMIT 1")"
check_eq "and the blocked row, with the rule" "block|no-srv" \
	"$(sqlite3 "$WORK/a1.db" "SELECT verdict || '|' || rule_id FROM connections ORDER BY id DESC LIMIT 1")"

# ---- 3. an invalid document
printf '{"rules": [{"id": "x", "action": "teleport", "match": {"dst_cidrs": ["10.0.0.1/8"]}}]}' >"$WORK/bad.json"
rc=0; fleet admin policy set branch "$WORK/bad.json" 2>"$WORK/err" || rc=$?
check_eq "redirectctl refuses to send an invalid document (exit 1)" 1 "$rc"
check "naming the paths" grep -q "rules\[0\].action" "$WORK/err"
badrev=$(NATS_INBOX=_INBOX.admin admin "nats://admin:pw-admin@127.0.0.1:$PORT" kv-put REDIRECT_POLICY group.branch "$WORK/bad.json")
rejected=""
for _ in $(seq 60); do
	rejected=$(fleet reader agents --json | json '" ".join(sorted("%s:%s@%s" % (a["name"], a["policy_rejected"]["key"], a["policy_rejected"]["revision"]) for a in d["agents"] if "policy_rejected" in a))')
	[ "$rejected" = "a1:group.branch@$badrev a2:group.branch@$badrev" ] && break
	sleep 0.1
done
check_eq "sent anyway: both agents report the rejection" "a1:group.branch@$badrev a2:group.branch@$badrev" "$rejected"
check "with the problems' paths" grep -q "rules\[0\].match.dst_cidrs\[0\]" <<<"$(fleet reader agents --json)"
check "and still judge by the previous policy" [ -z "$(get 8001)" ]

# ---- 4. an agent key overrides the group key; deleting it falls back
echo '{"default_action": "allow"}' >"$WORK/allow.json"
fleet admin policy set "agent.${UUID[1]}" "$WORK/allow.json" >/dev/null
for _ in $(seq 40); do [ -n "$(get 8001)" ] && break; sleep 0.05; done
check_eq "agent.<a1> overrides group.branch: a1 allows" "$hello" "$(get 8001)"
check "a2 still blocks (by the last valid group document)" [ -z "$(get 8002)" ]
fleet admin policy set branch "$WORK/block.json" >/dev/null # a valid group document again
fleet admin policy delete "agent.${UUID[1]}" >/dev/null
for _ in $(seq 40); do [ -z "$(get 8001)" ] && break; sleep 0.05; done
check "deleting the agent key: a1 falls back to the group, and blocks" [ -z "$(get 8001)" ]

# ---- 5. an agent stopped while the policy changed; NATS down at start
AGENT_PID=${PID[2]}
stop_agent
rev=$(fleet admin policy set branch "$WORK/allow.json" | awk '{ print $3 }')
start_fleet_agent 2 branch
check_eq "a2, started after the change, allows its first connection" "$hello" "$(get 8002)"
check "it applied group.branch@$rev before it started taking connections" \
	awk -v r="group.branch@$rev in force" '/policy of .* in force/ && index($0, r) { p = 1 } /started:/ && p { ok = 1 } END { exit !ok }' \
	"${LOG[2]}"
fleet admin policy set branch "$WORK/block.json" >/dev/null
for _ in $(seq 40); do [ -z "$(get 8002)" ] && break; sleep 0.05; done
AGENT_PID=${PID[2]}
stop_agent
stop_nats
agent_conf 2 "[fleet]" "servers = nats://agent-${UUID[2]}:pw-a2@127.0.0.1:$PORT" "groups = branch" \
	"heartbeat_s = 2" "policy_wait_s = 1"
start_agent "$WORK/a2.conf"
PID[2]=$AGENT_PID
check "NATS down at start: a2 runs the last fleet policy (blocks)" [ -z "$(get 8002)" ]
start_nats

# ---- 6. calls, and who may do what
# (the agents come back to the restarted server after their backoff: up to 5 s)
for n in 1 2 3; do
	for _ in $(seq 100); do fleet reader call "${UUID[$n]}" status >/dev/null 2>&1 && break; sleep 0.1; done
done
for n in 1 2 3; do
	check "fleet call reaches a$n (reader: status)" \
		bash -c "$(declare -f in_c fleet); CNS=$CNS CTL=$CTL URL=$URL; fleet reader call ${UUID[$n]} status | grep -q 'a$n'"
done
check "fleet call conns (reader)" bash -c "$(declare -f in_c fleet); CNS=$CNS CTL=$CTL URL=$URL; fleet reader call ${UUID[1]} conns --limit 1 | grep -q block"
rc=0; fleet reader call "${UUID[3]}" policy set "$WORK/allow.json" --expected-version 0 2>"$WORK/err" || rc=$?
check_eq "a reader cannot call Policy.SetPolicy (exit 1)" 1 "$rc"
check "the server says it is not permitted" grep -q "not permitted" "$WORK/err"
rc=0; fleet reader policy set branch "$WORK/allow.json" 2>"$WORK/err" || rc=$?
check_eq "a reader cannot write the policy bucket (exit 1)" 1 "$rc"
check "nor read another's, as an agent" not env NATS_INBOX="_INBOX.agent-${UUID[1]}" \
	"$NATS_ADMIN" "nats://agent-${UUID[1]}:pw-a1@127.0.0.1:$PORT" kv-get REDIRECT_POLICY "agent.${UUID[2]}"
check "an agent cannot publish as another" not in_c env NATS_INBOX="_INBOX.agent-${UUID[1]}" \
	"$NATS_ADMIN" "nats://agent-${UUID[1]}:pw-a1@127.0.0.1:$PORT" pub "redirect.conn.${UUID[2]}" forged
check "but as itself" in_c env NATS_INBOX="_INBOX.agent-${UUID[1]}" \
	"$NATS_ADMIN" "nats://agent-${UUID[1]}:pw-a1@127.0.0.1:$PORT" pub "redirect.conn.${UUID[1]}" "{}"
check "an agent cannot listen to another's calls" not in_c env NATS_INBOX="_INBOX.agent-${UUID[1]}" \
	"$NATS_ADMIN" "nats://agent-${UUID[1]}:pw-a1@127.0.0.1:$PORT" sub "redirect.rpc.${UUID[2]}.>"
rc=0; "$CTL" --socket "$WORK/a1.sock" policy set "$WORK/allow.json" 2>"$WORK/err" || rc=$?
check_eq "a local SetPolicy under a fleet key is refused (exit 1)" 1 "$rc"
check "naming the key" grep -q "comes from the fleet (group.branch@" "$WORK/err"
rc=0; fleet reader call "${UUID[3]}" reload 2>/dev/null || rc=$?
check_eq "a reader cannot call Agent.Reload (exit 1)" 1 "$rc"
check "an admin may" bash -c "$(declare -f in_c fleet); CNS=$CNS CTL=$CTL URL=$URL; fleet admin call ${UUID[3]} reload | grep -q 'configuration read again'"
check "an admin may call Policy methods" bash -c "$(declare -f in_c fleet); CNS=$CNS CTL=$CTL URL=$URL; fleet admin call ${UUID[3]} policy get | grep -q '^no policy set\|^version'"

# ---- 7. a killed agent: stale, then gone
kill -KILL "${PID[3]}"
wait "${PID[3]}" 2>/dev/null || true
stale=""
for _ in $(seq 100); do
	stale=$(fleet reader agents --json | json '" ".join(a["name"] for a in d["agents"] if a["stale"])')
	[ "$stale" = a3 ] && break
	sleep 0.1
done
check_eq "a3, killed, is marked stale after three heartbeats" a3 "$stale"
left=""
for _ in $(seq 200); do
	left=$(fleet reader agents --json | json '" ".join(sorted(a["name"] for a in d["agents"]))')
	[ "$left" = "a1 a2" ] && break
	sleep 0.1
done
check_eq "then leaves the inventory at the bucket's age limit" "a1 a2" "$left"
in_c nft delete table inet redirect_agent_a3 2>/dev/null || true

# ---- 8. a reload changes the fleet settings: groups, heartbeat, credentials
# The operator lets a2 read group.hq and gives it a new password (users.sh,
# then a server reload); the server then drops a2's connection.
"$SRCDIR/deploy/nats/users.sh" pw-operator pw-admin pw-reader \
	"${UUID[1]}:pw-a1:branch" "${UUID[2]}:pw-a2b:branch,hq" "${UUID[3]}:pw-a3:hq" >"$WORK/users.conf"
kill -HUP "$NATS_PID"
hqrev=$(fleet admin policy set hq "$WORK/allow.json" | awk '{ print $3 }')
check "a2 blocks, by group.branch" [ -z "$(get 8002)" ]
reload2() { "$CTL" --socket "$WORK/a2.sock" reload; }
cp "$WORK/a2.conf" "$WORK/a2.conf.was"
agent_conf 2 "[fleet]" "servers = nats://agent-${UUID[2]}:pw-a2b@127.0.0.1:$PORT" "groups = hq" \
	"heartbeat_s = 3" "policy_wait_s = 1" "creds = $WORK/missing.creds"
rc=0; out=$(reload2 2>&1) || rc=$?
check_eq "a reload naming a creds file that is missing exits 1" 1 "$rc"
check "naming the file, keeping the running configuration" \
	grep -q "missing.creds.*running configuration is kept" <<<"$out"
agent_conf 2 "[fleet]" "servers = nats://agent-${UUID[2]}:pw-a2b@127.0.0.1:$PORT" "groups = hq" \
	"heartbeat_s = 3" "policy_wait_s = 1" "subject_prefix = other"
rc=0; out=$(reload2 2>&1) || rc=$?
check_eq "a reload changing [fleet] subject_prefix exits 1" 1 "$rc"
check "it needs a restart, said so" grep -q "needs a restart: \[fleet\] subject_prefix" <<<"$out"
agent_conf 2 "[fleet]" "servers = nats://agent-${UUID[2]}:pw-a2b@127.0.0.1:$PORT" "groups = hq" \
	"heartbeat_s = 3" "policy_wait_s = 1"
out=$(reload2)
check "a reload with the new password and group connects again" \
	grep -q "the fleet connection is made again" <<<"$out"
for _ in $(seq 100); do [ -n "$(get 8002)" ] && break; sleep 0.1; done
check_eq "a2 now follows group.hq (allows)" "$hello" "$(get 8002)"
check_eq "and records the fleet author" "fleet:group.hq@$hqrev" \
	"$(sqlite3 "$WORK/a2.db" "SELECT author FROM policies ORDER BY version DESC LIMIT 1")"
entry=""
for _ in $(seq 60); do
	entry=$(fleet reader agents --json | json '" ".join("%s:%s:%s:%s" % (a["groups"], a["heartbeat_s"], a["policy"].get("key"), a["health"]["status"]) for a in d["agents"] if a["name"] == "a2")')
	[ "$entry" = "['hq']:3:group.hq:serving" ] && break
	sleep 0.1
done
check_eq "its inventory entry says group hq, heartbeat 3 s, serving" "['hq']:3:group.hq:serving" "$entry"
check "a1 still blocks (group.branch)" [ -z "$(get 8001)" ]
# A console's reload over NATS that replaces the very connection it came on
# still gets its reply (the old connection is drained, not cut).
agent_conf 2 "[fleet]" "servers = nats://agent-${UUID[2]}:pw-a2b@127.0.0.1:$PORT, nats://agent-${UUID[2]}:pw-a2b@localhost:$PORT" \
	"groups = hq" "heartbeat_s = 2" "policy_wait_s = 1"
out=$(fleet admin call "${UUID[2]}" reload 2>&1 || true)
check "a console's reload that changes the servers gets its reply over NATS" \
	grep -q "the fleet connection is made again" <<<"$out"
for _ in $(seq 100); do fleet reader call "${UUID[2]}" status >/dev/null 2>&1 && break; sleep 0.1; done
check "and reaches a2 again on its new connection" \
	bash -c "$(declare -f in_c fleet); CNS=$CNS CTL=$CTL URL=$URL; fleet reader call ${UUID[2]} status | grep -q a2"
agent_conf 2
rc=0; out=$(reload2 2>&1) || rc=$?
check_eq "turning the fleet off by a reload exits 1" 1 "$rc"
check "it needs a restart" grep -q "needs a restart: \[fleet\] servers" <<<"$out"
check_eq "and a2 still follows group.hq" "$hello" "$(get 8002)"

for n in 1 2; do AGENT_PID=${PID[$n]}; stop_agent; done
finish
