#!/usr/bin/env bash
# The client's owner: rules on uid and executable, and rows that record uid,
# pid and exe. curl run as nobody (setpriv) and as root, and a Python client.
source "$(dirname "$0")/lib.sh"

ctl() { "$CTL" --socket "$WORK/agent.sock" "$@"; }
last() { wait_sql "SELECT verdict, coalesce(rule_id, ''), coalesce(uid, -1), coalesce(exe, '') FROM connections WHERE id = (SELECT max(id) FROM connections)" "$1"; }
nobody_curl() { in_c setpriv --reuid=65534 --regid=65534 --clear-groups curl -sS --max-time 5 "$@" 2>/dev/null; }

setup_net
start_httpd 80
start_httpd 8080
write_config "$WORK/agent.conf" "[proxy]" "redirect_ports = 80, 8080"
start_agent "$WORK/agent.conf"
cat >"$WORK/policy.json" <<EOF
{"rules": [
  {"id": "nobody-stays-home", "match": {"uids": [65534]}, "action": "block"},
  {"id": "no-curl-on-8080", "match": {"exe_paths": ["/usr/bin/curl"], "dst_ports": [8080]},
   "action": "block"}]}
EOF
check_eq "policy set" "policy version 1 set (2 rules)" "$(ctl policy set "$WORK/policy.json")"

check "curl as nobody is blocked" [ -z "$(nobody_curl "http://$SRV4/")" ]
check_eq "recorded: the uid rule, uid 65534, curl" "block|nobody-stays-home|65534|/usr/bin/curl" \
	"$(last "block|nobody-stays-home|65534|/usr/bin/curl")"
check "with the curl process's pid" [ "$(sql "SELECT pid > 1 FROM connections WHERE uid = 65534")" = 1 ]
check_eq "curl as root is relayed" "hello from $(hostname)" "$(in_c curl -sS --max-time 5 "http://$SRV4/")"
check_eq "recorded: uid 0" "allow||0|/usr/bin/curl" "$(last "allow||0|/usr/bin/curl")"
check "curl on 8080 is blocked by its executable" \
	[ -z "$(in_c curl -sS --max-time 5 "http://$SRV4:8080/" 2>/dev/null)" ]
check_eq "recorded: the exe rule" "block|no-curl-on-8080|0|/usr/bin/curl" \
	"$(last "block|no-curl-on-8080|0|/usr/bin/curl")"
body=$(in_c "$PY" -c "import urllib.request; print(urllib.request.urlopen('http://$SRV4:8080/', timeout=5).read().decode().strip())")
check_eq "python on 8080 is relayed" "hello from $(hostname)" "$body"
py=$(readlink -f /usr/bin/python3)
check_eq "recorded with python's executable" "allow||0|$py" "$(last "allow||0|$py")"

# Without a rule that needs it, only the uid is looked up (auto): the fair
# share between users needs it (max_sessions_per_uid); not the process ...
echo '{"rules": []}' >"$WORK/empty.json"
ctl policy set "$WORK/empty.json" >/dev/null
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
check_eq "auto, no owner rule: the uid, not the process" "allow||0|" "$(last "allow||0|")"
stop_agent
# ... unless owner_lookup = always.
write_config "$WORK/always.conf" "[proxy]" "redirect_ports = 80, 8080" "owner_lookup = always"
start_agent "$WORK/always.conf"
nobody_curl -o /dev/null "http://$SRV4/"
check_eq "always: every row has the owner" "allow||65534|/usr/bin/curl" \
	"$(last "allow||65534|/usr/bin/curl")"
stop_agent
# never, and no fair share: nothing is looked up.
write_config "$WORK/never.conf" "[proxy]" "redirect_ports = 80, 8080" "owner_lookup = never" \
	"max_sessions_per_uid = 0"
start_agent "$WORK/never.conf"
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
check_eq "never (and no per-uid limit): no owner at all" "allow||-1|" "$(last "allow||-1|")"
stop_agent
finish
