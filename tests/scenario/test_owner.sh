#!/usr/bin/env bash
# The client's owner: rules on uid and executable, and rows that record uid,
# pid and exe. curl run as nobody (setpriv) and as root, and a Python client.
# The process comes from the connect hook (cgroup BPF), confirmed by the
# process still holding the socket: a client holding 10,000 descriptors is
# found so; a child that calls connect() and execs another program is not
# blamed for its parent's connection. The first agent runs with the systemd
# unit's capabilities, no more; a helper process holds the two that read
# other users' /proc, and the agent drops them.
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
# Reading other users' /proc takes CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: a
# helper holds those two and nothing else, and the agent has neither.
capeff() { awk '/^CapEff:/ { print $2 }' "/proc/$1/status"; }
helper=$(pgrep -P "$AGENT_PID" -x ra-owner || true)
check "a helper looks programs up" grep -q "owner: programs are looked up by the ra-owner helper (pid $helper)" "$log"
check_eq "the helper holds CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH only" 0000000000080004 "$(capeff "$helper")"
held=0
for t in /proc/"$AGENT_PID"/task/*; do
	held=$(( held | (0x$(awk '/^CapEff:/ { print $2 }' "$t/status") & 0x80004) ))
done
check_eq "no thread of the agent has either" 0 "$held"
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

# A client holding 10,000 descriptors: known by the hook, by its executable.
cat >"$WORK/python.json" <<EOF
{"rules": [{"id": "no-python-on-8080", "match": {"exe_paths": ["$py"], "dst_ports": [8080]},
  "action": "block"}]}
EOF
ctl policy set "$WORK/python.json" >/dev/null
in_c setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" - <<EOF >"$WORK/fat.out" 2>&1 || true
import os, socket, time
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(10000)]
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
check "a python holding 10,000 descriptors is closed" grep -q "held 10000 closed" "$WORK/fat.out"
fat=$(awk '{ print $2 }' "$WORK/fat.out")
check_eq "by the executable rule, with its uid and executable" "block|no-python-on-8080|65534|$py" \
	"$(last "block|no-python-on-8080|65534|$py")"
check "found by the connect hook" grep -q "owner uid 65534, pid $fat (by the connect hook)" "$log"

# The hook says who called connect(); that process must still hold the
# socket. Here a child calls connect() (TCP_FASTOPEN_CONNECT: no packet yet)
# on its parent's socket and execs sleep, closing its copy; the parent then
# sends. The connection is python's, not sleep's: blocked by the rule.
# (tcp_fastopen 5: a client may defer its SYN without a cookie, so the
# connection reaches the agent only after the exec, every time.)
in_c sysctl -qw net.ipv4.tcp_fastopen=5
in_c setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" - <<EOF >"$WORK/fork.out" 2>&1 || true
import os, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
s.setsockopt(socket.IPPROTO_TCP, 30, 1)  # TCP_FASTOPEN_CONNECT
child = os.fork()
if child == 0:
    try:
        s.connect(("$SRV4", 8080))
    except OSError:
        pass
    os.execv("/usr/bin/sleep", ["sleep", "2"])
time.sleep(0.5)  # the child has exec'd: only the parent holds the socket
try:
    s.settimeout(5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    got = s.recv(100)
except OSError:
    got = b""
print("answered" if got else "closed")
EOF
cat "$WORK/fork.out"
check "a connect() by a child that then execs is not the child's: closed" grep -qx closed "$WORK/fork.out"
check_eq "recorded as python's" "block|no-python-on-8080|65534|$py" \
	"$(last "block|no-python-on-8080|65534|$py")"

# Without a rule that needs it, only the uid is looked up (auto): the fair
# share between users needs it (max_sessions_per_uid); not the process ...
echo '{"rules": []}' >"$WORK/empty.json"
ctl policy set "$WORK/empty.json" >/dev/null
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
check_eq "auto, no owner rule: the uid, not the process" "allow||0|" "$(last "allow||0|")"
stop_agent
check "the helper left with the agent, waited for" [ ! -e "/proc/$helper" ]
# ... unless owner_lookup = always.
write_config "$WORK/always.conf" "[proxy]" "redirect_ports = 80, 8080" "owner_lookup = always"
start_agent "$WORK/always.conf"
nobody_curl -o /dev/null "http://$SRV4/"
check_eq "always: every row has the owner" "allow||65534|/usr/bin/curl" \
	"$(last "allow||65534|/usr/bin/curl")"
# The helper killed: the next lookup finds it gone, health says so, and the
# rows have the uid but no program.
kill -KILL "$(pgrep -P "$AGENT_PID" -x ra-owner)"
nobody_curl -o /dev/null "http://$SRV4/"
check_eq "without the helper: the uid, no program" "allow||65534|" "$(last "allow||65534|")"
check "health is degraded, saying why" grep -q "ra-owner helper is gone" <<<"$(ctl status)"
stop_agent
# never, and no fair share: nothing is looked up.
write_config "$WORK/never.conf" "[proxy]" "redirect_ports = 80, 8080" "owner_lookup = never" \
	"max_sessions_per_uid = 0"
start_agent "$WORK/never.conf"
in_c curl -sS --max-time 5 -o /dev/null "http://$SRV4/"
check_eq "never (and no per-uid limit): no owner at all" "allow||-1|" "$(last "allow||-1|")"
stop_agent
finish
