#!/usr/bin/env bash
# The client's owner: rules on uid and executable, and rows that record uid,
# pid and exe. curl run as nobody (setpriv) and as root, and a Python client.
# The process comes from the connect hook (cgroup BPF): one map lookup, even
# for a client holding 19,000 descriptors (a /proc search reads each one).
# The first agent runs with the systemd unit's capabilities, no more.
source "$(dirname "$0")/lib.sh"

ctl() { "$CTL" --socket "$WORK/agent.sock" "$@"; }
last() { wait_sql "SELECT verdict, coalesce(rule_id, ''), coalesce(uid, -1), coalesce(exe, '') FROM connections WHERE id = (SELECT max(id) FROM connections)" "$1"; }
nobody_curl() { in_c setpriv --reuid=65534 --regid=65534 --clear-groups curl -sS --max-time 5 "$@" 2>/dev/null; }

setup_net
start_httpd 80
start_httpd 8080
write_config "$WORK/agent.conf" "[agent]" "log_level = debug" "[proxy]" "redirect_ports = 80, 8080"
# With no more capabilities than the systemd unit gives it.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$SRCDIR/deploy/systemd/redirect-agent.service" |
	tr 'A-Z ' 'a-z,' | sed 's/cap_/+/g')
printf '#!/bin/sh\nexec setpriv --bounding-set=-all,%s %s "$@"\n' "$caps" "$AGENT" >"$WORK/unit-caps.sh"
chmod +x "$WORK/unit-caps.sh"
echo "the unit's capabilities: $caps"
AGENT="$WORK/unit-caps.sh" start_agent "$WORK/agent.conf"
log=$(ls -t "$WORK"/agent*.log | head -1)
check "the connect hook is attached" grep -q "owner: processes are found by a connect hook" "$log"
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
check "each process came from the connect hook" \
	awk '/owner uid/ { n++; if (/by the connect hook/) h++ } END { exit !(n >= 4 && n == h) }' "$log"

# A client holding 19,000 descriptors: known at once, by its executable.
cat >"$WORK/python.json" <<EOF
{"rules": [{"id": "no-python-on-8080", "match": {"exe_paths": ["$py"], "dst_ports": [8080]},
  "action": "block"}]}
EOF
ctl policy set "$WORK/python.json" >/dev/null
in_c setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" - <<EOF >"$WORK/fat.out" 2>&1 || true
import os, socket, time
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(19000)]
t0 = time.monotonic()
try:
    s = socket.create_connection(("$SRV4", 8080), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    got = s.recv(100)
except OSError:
    got = b""
print("pid", os.getpid(), "held", len(fds), "answered" if got else "closed",
      "after %d ms" % ((time.monotonic() - t0) * 1000))
EOF
true
cat "$WORK/fat.out"
check "a python holding 19,000 descriptors is closed" grep -q "held 19000 closed" "$WORK/fat.out"
fat=$(awk '{ print $2 }' "$WORK/fat.out")
check_eq "by the executable rule, with its uid and executable" "block|no-python-on-8080|65534|$py" \
	"$(last "block|no-python-on-8080|65534|$py")"
check "found by the connect hook" grep -q "owner uid 65534, pid $fat (by the connect hook)" "$log"

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
