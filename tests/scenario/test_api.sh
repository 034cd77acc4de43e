#!/usr/bin/env bash
# The API and redirectctl against the running agent: a Python grpcio console
# calls every method over the local socket; the CLI in human and JSON modes
# with its exit codes; the socket's permissions and the peer-uid check;
# health turns degraded when the nft table is gone.
source "$(dirname "$0")/lib.sh"
: "${CTL:?CTL must point at redirectctl}"

setup_net
start_httpd 80
GROUP="ra$$g"
groupadd "$GROUP"
trap 'groupdel "$GROUP" 2>/dev/null || true; cleanup' EXIT
write_config "$WORK/agent.conf" "[proxy]" "redirect_ports = 80, 81" "[api]" "admin_group = $GROUP"
start_agent "$WORK/agent.conf"
SOCK="$WORK/agent.sock"
chmod 0711 "$WORK" # mktemp made it 0700; the agent's own runtime directory is 0755

for i in $(seq 10); do in_c curl -sS -o /dev/null "http://$SRV4/bytes/$((i * 1000))"; done
for i in 1 2; do in_c curl -sS -o /dev/null "http://$SRV4:81/" 2>/dev/null || true; done
wait_sql "SELECT count(*) FROM connections WHERE state IN ('closed','failed')" 12 >/dev/null

check_eq "socket mode 0660, group $GROUP" "660 root:$GROUP" "$(stat -c '%a %U:%G' "$SOCK")"

# The console, with stubs generated from proto/ now.
"$PY" -m grpc_tools.protoc -I"$SRCDIR/proto" --python_out="$WORK" --grpc_python_out="$WORK" \
	"$SRCDIR"/proto/redirect/v1/*.proto
"$PY" "$SRCDIR/tests/scenario/console.py" "$WORK" "$SOCK" "$SRV4" | tee "$WORK/console.out"
PASSES=$((PASSES + $(grep -c '^ok' "$WORK/console.out")))
FAILS=$((FAILS + $(grep -c '^not ok' "$WORK/console.out" || true)))

# The CLI, for people and for scripts.
out=$("$CTL" --socket "$SOCK" status)
check "status names the agent and its health" grep -q "^agent      default (redirect-agent" <<<"$out"
check "status says serving" grep -q "^health     serving" <<<"$out"
check_eq "status --json is one document" "default serving" \
	"$("$CTL" --socket "$SOCK" --json status | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["agent_id"], d["health"])')"
check "stats counts the connections" grep -q "12 accepted, 0 active, 10 relayed, 2 failed" <<<"$("$CTL" --socket "$SOCK" stats)"
check_eq "stats --json" "12 10" \
	"$("$CTL" --socket "$SOCK" --json stats | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["accepted"], d["relayed"])')"
out=$("$CTL" --socket "$SOCK" conns --limit 3)
check_eq "conns --limit 3: a header and 3 rows" 4 "$(wc -l <<<"$out")"
check "conns shows destination, state and sizes" grep -Eq "^12 .* 10\.77\.0\.2:81 +failed .*upstream connect failed: connection refused" <<<"$out"
check_eq "conns --json --dst-port 80: ten rows, newest first" "10 10" \
	"$("$CTL" --socket "$SOCK" --json conns --dst-port 80 | "$PY" -c 'import json,sys; c=json.load(sys.stdin)["connections"]; print(len(c), c[0]["id"])')"
check_eq "conns pages through more than one page (--limit 1500 over 12 rows)" 12 \
	"$("$CTL" --socket "$SOCK" --json conns --limit 1500 | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["connections"]))')"
check "conn 1 in full" grep -Eq "^bytes_down +[0-9]{4}" <<<"$("$CTL" --socket "$SOCK" conn 1)"
rc=0; "$CTL" --socket "$SOCK" conn 999 2>"$WORK/err" || rc=$?
check_eq "conn of an unknown id exits 1" 1 "$rc"
check "and prints the agent's reason" grep -q "no connection with id 999" "$WORK/err"
rc=0; "$CTL" --socket "$SOCK" conns --dst-cidr 10.1.2.3/8 2>"$WORK/err" || rc=$?
# redirectctl checks the CIDR itself (the agent's own check is the
# ListConnections INVALID_ARGUMENT case above): a usage error, saying why.
check_eq "a bad --dst-cidr is a usage error (2) saying why" "2 yes" "$rc $(grep -q 'host bits' "$WORK/err" && echo yes)"
rc=0; "$CTL" --socket "$SOCK" conns --dst-port 0 2>/dev/null || rc=$?
check_eq "a bad --dst-port is a usage error (2)" 2 "$rc"
rc=0; "$CTL" --socket "$SOCK" frobnicate 2>/dev/null || rc=$?
check_eq "an unknown command is a usage error (2)" 2 "$rc"
echo '{"rules": []}' >"$WORK/policy.json"
# console.py set version 1.
check_eq "policy set: the next version, 2" "policy version 2 set (0 rules)" \
	"$("$CTL" --socket "$SOCK" policy set "$WORK/policy.json")"
rc=0; "$CTL" --socket "$SOCK" policy set "$WORK/policy.json" --expected-version 0 2>"$WORK/err" || rc=$?
check_eq "policy set with a stale --expected-version: exit 1" 1 "$rc"
check "and says why" grep -q "expected_version 0, but the policy is at version 2" "$WORK/err"
rc=0; "$CTL" --socket "$SOCK" policy validate "$WORK/missing.json" 2>"$WORK/err" || rc=$?
check_eq "policy validate of a missing file: usage error (2)" 2 "$rc"
check "every command has --help" bash -c "'$CTL' conns --help | grep -q -- '--since DURATION'"
rc=0; "$CTL" --socket "$WORK/absent.sock" status 2>"$WORK/err" || rc=$?
check_eq "no agent: exit 3" 3 "$rc"
check "and the message names the socket" grep -q "cannot reach the agent at $WORK/absent.sock" "$WORK/err"

# Who may call: the socket mode keeps out other users; the peer-uid check
# holds even if the mode is loosened.
rc=0; setpriv --reuid=nobody --regid=nogroup --clear-groups "$CTL" --socket "$SOCK" status 2>"$WORK/err" || rc=$?
check_eq "a user outside the group cannot reach the socket (exit 3)" 3 "$rc"
check "permission denied, said plainly" grep -qi "permission denied" "$WORK/err"
chmod 0666 "$SOCK"
rc=0; setpriv --reuid=nobody --regid=nogroup --clear-groups "$CTL" --socket "$SOCK" status 2>/dev/null || rc=$?
check_eq "with the mode loosened, the agent still refuses uid nobody (exit 3)" 3 "$rc"
check "and logs the refusal" grep -q "refused a local connection from uid 65534" "$WORK"/agent*.log
rc=0; setpriv --reuid=nobody --regid="$GROUP" --clear-groups "$CTL" --socket "$SOCK" status >/dev/null 2>&1 || rc=$?
check_eq "a member of the admin group may call" 0 "$rc"

# Health: degraded, with the reason, when the rules are gone.
in_c nft delete table inet redirect_agent_default
out=$("$CTL" --socket "$SOCK" status)
check "health degraded when the nft table is missing" grep -q "^health     degraded" <<<"$out"
check "with the reason" grep -q "nft table redirect_agent_default is missing" <<<"$out"

stop_agent
check "the socket file is removed at stop" not test -e "$SOCK"
finish
