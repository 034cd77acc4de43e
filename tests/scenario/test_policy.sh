#!/usr/bin/env bash
# Policy, end to end through redirectctl: block refuses and records (verdict,
# rule, version); bypass stops redirection in the kernel (no row, the nft sets
# shows it); a bad document and a stale expected_version change nothing;
# validate simulates on recorded rows; history; a change under load drops no
# open connection; the policy survives a restart and is in force at once.
source "$(dirname "$0")/lib.sh"

ctl() { "$CTL" --socket "$WORK/agent.sock" "$@"; }
get() { in_c curl -sS --max-time 5 "http://$SRV4:$1${2:-/}" 2>/dev/null; }
rows() { sql "SELECT count(*) FROM connections"; }

setup_net
start_httpd 80
start_httpd 8080
write_config "$WORK/agent.conf" "[proxy]" "redirect_ports = 80, 8080"
start_agent "$WORK/agent.conf"

check "no policy yet: everything allowed" grep -q "^no policy set" <<<"$(ctl policy get)"
check_eq "so port 8080 works" "hello from $(hostname)" "$(get 8080)"

cat >"$WORK/v1.json" <<EOF
{"default_action": "allow",
 "rules": [{"id": "no-8080", "description": "nothing on 8080",
            "match": {"dst_cidrs": ["$SRV4/32"], "dst_ports": [8080]}, "action": "block"}]}
EOF
check_eq "policy set: version 1" "policy version 1 set (1 rules)" "$(ctl policy set "$WORK/v1.json")"
check "port 8080 is now refused" [ -z "$(get 8080)" ]
check_eq "port 80 still relayed" "hello from $(hostname)" "$(get 80)"
check_eq "the blocked rows: verdict, rule, version, reason" \
	"block|no-8080|1|failed|blocked by policy" \
	"$(wait_sql "SELECT DISTINCT verdict, rule_id, policy_version, state, close_reason FROM connections WHERE orig_dst_port = 8080 AND policy_version = 1" "block|no-8080|1|failed|blocked by policy")"
check_eq "the allowed row: default action (no rule), version 1" "allow||1|completed" \
	"$(wait_sql "SELECT verdict, coalesce(rule_id, ''), policy_version, close_reason FROM connections WHERE orig_dst_port = 80 AND policy_version = 1" "allow||1|completed")"
stats=$(ctl --json stats)
check_eq "stats: 1 blocked, hits per rule (no-8080: 1, default: 1)" "1 1 1 1" \
	"$(/usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); h={x["rule_id"]: x["hits"] for x in s["rule_hits"]}; print(s["blocked"], s["policy_version"], h["no-8080"], h[""])' <<<"$stats")"

# A bad document: every problem with its path; nothing changes.
cat >"$WORK/bad.json" <<EOF
{"rules": [{"id": "a", "action": "block", "match": {"dst_cidrs": ["10.0.0.1/8"], "dst_ports": [0]}},
           {"id": "a", "action": "teleport"}]}
EOF
rc=0; out=$(ctl policy validate "$WORK/bad.json") || rc=$?
check_eq "validate of a bad document exits 1" 1 "$rc"
check "it names rules[0].match.dst_cidrs[0]" grep -q "rules\[0\].match.dst_cidrs\[0\]: not a CIDR" <<<"$out"
check "and rules[0].match.dst_ports[0]" grep -q "rules\[0\].match.dst_ports\[0\]: 0-0 is not a port range" <<<"$out"
check "and rules[1].action" grep -q "rules\[1\].action: not one of allow, block, bypass" <<<"$out"
rc=0; ctl policy set "$WORK/bad.json" 2>"$WORK/err" || rc=$?
check_eq "set of a bad document exits 1" 1 "$rc"
check "the old policy stays" grep -q "^version 1," <<<"$(ctl policy get)"
check "and still blocks" [ -z "$(get 8080)" ]

# Compare-and-set: a writer that read version 0 loses.
rc=0; ctl policy set "$WORK/v1.json" --expected-version 0 2>"$WORK/err" || rc=$?
check_eq "a stale expected_version is refused" 1 "$rc"
check "FAILED_PRECONDITION says which version is current" \
	grep -q "expected_version 0, but the policy is at version 1" "$WORK/err"

# Validate with simulation: blocking port 80 would change the recorded port-80 rows.
cat >"$WORK/no80.json" <<EOF
{"rules": [{"id": "no-80", "match": {"dst_ports": [80]}, "action": "block"},
           {"id": "no-8080", "match": {"dst_ports": [8080]}, "action": "block"}]}
EOF
out=$(ctl policy validate "$WORK/no80.json" --simulate 1000)
check "simulation: the port-80 rows would change" \
	grep -Eq "^of the last [0-9]+ connections judged, 2 would get another verdict" <<<"$out"
check "with examples" grep -q "to $SRV4:80: allow -> block (rule no-80)" <<<"$out"

# Bypass: the kernel stops redirecting port 8080 (and it is relayed by nobody).
cat >"$WORK/v2.json" <<EOF
{"rules": [{"id": "direct-8080", "match": {"dst_cidrs": ["$SRV4/32"], "dst_ports": [8080]},
            "action": "bypass"}]}
EOF
check_eq "policy set: version 2" "policy version 2 set (1 rules)" \
	"$(ctl policy set "$WORK/v2.json" --expected-version 1)"
check "the rule's nft address set holds it" \
	grep -q "elements = { $SRV4 }" <<<"$(in_c nft list set inet redirect_agent_default bp0_v4)"
check "and its port set" \
	grep -q "elements = { 8080 }" <<<"$(in_c nft list set inet redirect_agent_default bp0_ports)"
check "matched together in the bypass chain" grep -q "ip daddr @bp0_v4 tcp dport @bp0_ports accept" \
	<<<"$(in_c nft list chain inet redirect_agent_default bypass)"
before=$(rows)
check_eq "port 8080 reaches the server" "hello from $(hostname)" "$(get 8080)"
sleep 0.3
check_eq "without passing the agent: no new row" "$before" "$(rows)"
check_eq "port 80 is still redirected and recorded" "hello from $(hostname)" "$(get 80)"
check_eq "one more row (port 80, version 2)" 1 \
	"$(wait_sql "SELECT count(*) FROM connections WHERE policy_version = 2" 1)"

# A change under load: 20 open connections keep their verdict and finish.
for i in $(seq 20); do
	in_c curl -sS --max-time 10 "http://$SRV4/hold/1.5" >"$WORK/held$i" 2>&1 &
	PIDS+=($!)
done
wait_sql "SELECT count(*) FROM connections WHERE state = 'relaying'" 20 >/dev/null
check_eq "policy set under load: version 3 blocks port 80" "policy version 3 set (2 rules)" \
	"$(ctl policy set "$WORK/no80.json")"
check "a new port-80 connection is refused at once" [ -z "$(get 80)" ]
for i in $(seq 20); do wait "${PIDS[-$i]}" 2>/dev/null || true; done
check_eq "all 20 open connections finished normally" 20 "$(cat "$WORK"/held* | grep -c '^held$')"
check "the bypass chain is empty again" \
	not grep -q "accept" <<<"$(in_c nft list chain inet redirect_agent_default bypass)"
check "and its sets gone" not in_c nft list set inet redirect_agent_default bp0_v4

out=$(ctl policy history)
check_eq "history: three versions, newest first, by the local admin" "3 2 1" \
	"$(awk 'NR > 1 {printf "%s%s", (NR > 2 ? " " : ""), $1}' <<<"$out")"
check "authored by the local socket" grep -q "local socket$" <<<"$out"

# Rollback is setting an older document again: a new version.
ctl --json policy history >"$WORK/hist.json"
/usr/bin/python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); json.dump([v for v in h["versions"] if v["version"] == 1][0]["document"], open(sys.argv[2], "w"))' \
	"$WORK/hist.json" "$WORK/rollback.json"
check_eq "rollback to version 1's document is version 4" "policy version 4 set (1 rules)" \
	"$(ctl policy set "$WORK/rollback.json")"
check_eq "with the same sha256 as version 1" \
	"$(sql "SELECT sha256 FROM policies WHERE version = 1")" "$(sql "SELECT sha256 FROM policies WHERE version = 4")"

# The policy survives a restart and is in force before anything is relayed.
stop_agent
start_agent "$WORK/agent.conf"
check "after a restart, version 4 is in force" grep -q "^version 4," <<<"$(ctl policy get)"
check "its first port-8080 connection is blocked" [ -z "$(get 8080)" ]
check_eq "recorded under version 4" "block|no-8080" \
	"$(wait_sql "SELECT verdict, rule_id FROM connections WHERE policy_version = 4" "block|no-8080")"
stop_agent

# A stored version this agent cannot load (as after a downgrade) is skipped:
# the newest it can load is in force, and that is what a console sets against.
sql "INSERT INTO policies VALUES (5, '{\"rules\": [{\"id\": \"x\", \"action\": \"teleport\"}]}',
     0, 'a newer agent', '')"
start_agent "$WORK/agent.conf"
check "version 5 is skipped with a warning" grep -q "stored policy version 5 is not valid" "$WORK"/agent*.log
check "version 4 is in force" grep -q "^version 4," <<<"$(ctl policy get)"
check_eq "setting against version 4 works, as version 6" "policy version 6 set (1 rules)" \
	"$(ctl policy set "$WORK/v2.json" --expected-version 4)"
stop_agent
finish
