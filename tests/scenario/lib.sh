# Shared set-up for the scenario tests: sourced, not run.
#
# Two network namespaces joined by a veth pair:
#   client ns ($CNS): 10.77.0.1/24, fd77::1/64 -- runs the agent and the clients
#   server ns ($SNS): 10.77.0.2/24, fd77::2/64 -- runs real servers
# Everything a test starts is stopped, and both namespaces removed, on exit.
set -euo pipefail

: "${AGENT:?AGENT must point at the redirect-agent binary}"
: "${SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PY=/usr/bin/python3
ID="ra$$"
CNS="${ID}c"
SNS="${ID}s"
GNS="${ID}g" # a gateway, for the tests that route through one
WORK=$(mktemp -d "/tmp/${ID}.XXXX")
SRV4=10.77.0.2
SRV6=fd77::2
PIDS=()
FAILS=0
PASSES=0

cleanup() {
	local rc=$?
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	ip netns del "$CNS" 2>/dev/null || true
	ip netns del "$SNS" 2>/dev/null || true
	ip netns del "$GNS" 2>/dev/null || true
	if [ "$rc" -ne 0 ] || [ "$FAILS" -ne 0 ]; then
		echo "--- agent log ---"
		cat "$WORK"/agent*.log 2>/dev/null | tail -50 || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

in_c() { ip netns exec "$CNS" "$@"; }
in_s() { ip netns exec "$SNS" "$@"; }

setup_net() {
	ip netns add "$CNS"
	ip netns add "$SNS"
	ip link add "${ID}a" netns "$CNS" type veth peer name "${ID}b" netns "$SNS"
	in_c ip link set lo up
	in_s ip link set lo up
	in_c ip addr add 10.77.0.1/24 dev "${ID}a"
	in_s ip addr add 10.77.0.2/24 dev "${ID}b"
	in_c ip addr add fd77::1/64 dev "${ID}a" nodad
	in_s ip addr add fd77::2/64 dev "${ID}b" nodad
	in_c ip link set "${ID}a" up
	in_s ip link set "${ID}b" up
	# Until duplicate address detection ends, the first IPv6 SYN is lost.
	for _ in $(seq 50); do
		[ -z "$(in_c ip -6 addr show tentative)$(in_s ip -6 addr show tentative)" ] && return 0
		sleep 0.1
	done
}

# start_httpd PORT: a real HTTP server in the server namespace.
start_httpd() {
	# Never background a shell function: $! would be a subshell, not the server.
	ip netns exec "$SNS" "$PY" "$SRCDIR/tests/scenario/httpd.py" "$1" >"$WORK/httpd$1.log" 2>&1 &
	PIDS+=($!)
	wait_port "$SNS" "$1"
}

# wait_port NS PORT: until something listens on PORT in NS (10 s at most).
wait_port() {
	for _ in $(seq 100); do
		if ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on port $2 in $1" >&2
	return 1
}

# write_config FILE [extra INI lines...]: a config for the test's own database.
# The extra lines ("[section]" and "key = value") override the test defaults:
# the agent refuses a key given twice, so each key is written once.
write_config() {
	local f=$1; shift
	"$PY" - "$f" "$WORK" "$@" <<'PYEOF'
import sys
path, work, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
conf = {"proxy": {"listen_port": "15001", "connect_timeout_ms": "1500",
                  "drain_timeout_ms": "2000", "workers": "2"},
        "db": {"path": work + "/agent.db"},
        "api": {"local_socket": work + "/agent.sock"}}
section = None
for line in extra:
    line = line.strip()
    if line.startswith("["):
        section = line[1:line.index("]")]
        conf.setdefault(section, {})
    elif "=" in line:
        key, value = line.split("=", 1)
        conf.setdefault(section, {})[key.strip()] = value.strip()
with open(path, "w") as f:
    for sec, keys in conf.items():
        f.write("[%s]\n" % sec)
        for k, v in keys.items():
            f.write("%s = %s\n" % (k, v))
PYEOF
}

# hold_sessions USER N SECONDS: N idle connections to the server, as USER (setpriv
# uid), held SECONDS; prints how many the agent kept after 1 s. In the
# background: $! is its pid.
hold_sessions() {
	in_c setpriv --reuid="$1" --regid="$1" --clear-groups "$PY" - "$SRV4" "$2" "$3" <<'PYEOF' &
import socket, sys, time
srv, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((srv, 80))
        socks.append(s)
    except OSError:
        pass
time.sleep(1)
def alive(s):
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
print(sum(alive(s) for s in socks), flush=True)
time.sleep(secs)
PYEOF
}

# start_agent CONFIG: run the agent in the client namespace; AGENT_PID is set.
# Ready means its own "started" line (a table left by a crash proves nothing).
# `ip netns exec` gives it a fresh /sys without the cgroup v2 mount; the
# agent's connect hook needs one (as under systemd), so it is mounted there
# again, in that command's own mount namespace (the host's is untouched).
start_agent() {
	local n=${#PIDS[@]}
	ip netns exec "$CNS" sh -c 'grep -q " cgroup2 " /proc/self/mounts ||
		mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null; exec "$@"' sh \
		"$AGENT" --foreground --config "$1" >>"$WORK/agent$n.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
	for _ in $(seq 200); do
		if grep -q "redirect-agent .* started:" "$WORK/agent$n.log"; then return 0; fi
		if ! kill -0 "$AGENT_PID" 2>/dev/null; then
			echo "agent exited at start" >&2
			cat "$WORK/agent$n.log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "agent did not start within 10 s" >&2
	return 1
}

# stop_agent: SIGTERM and wait for a clean exit (status 0).
stop_agent() {
	kill -TERM "$AGENT_PID"
	local rc=0
	wait "$AGENT_PID" || rc=$?
	check "agent exits 0 on SIGTERM" [ "$rc" -eq 0 ]
}

# has_table [AGENT_ID]: the agent's nft table exists in the client namespace.
has_table() { in_c nft list table inet "redirect_agent_${1:-default}" >/dev/null 2>&1; }

sql() { sqlite3 -batch -noheader "$WORK/agent.db" "$@"; }

# check DESCRIPTION COMMAND...: one assertion, counted.
check() {
	local what=$1; shift
	if "$@"; then
		echo "ok - $what"
		PASSES=$((PASSES + 1))
	else
		echo "not ok - $what"
		FAILS=$((FAILS + 1))
	fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
	if [ "$2" == "$3" ]; then
		echo "ok - $1"
		PASSES=$((PASSES + 1))
	elif [ $((${#2} + ${#3})) -gt 400 ]; then # long lists: say only what differs
		echo "not ok - $1: missing '$(comm -23 <(tr ' ' '\n' <<<"$2" | sort) <(tr ' ' '\n' <<<"$3" | sort) | paste -sd' ')'," \
			"unexpected '$(comm -13 <(tr ' ' '\n' <<<"$2" | sort) <(tr ' ' '\n' <<<"$3" | sort) | paste -sd' ')'"
		FAILS=$((FAILS + 1))
	else
		echo "not ok - $1: expected '$2', got '$3'"
		FAILS=$((FAILS + 1))
	fi
}

# wait_sql QUERY EXPECTED: poll the database until QUERY prints EXPECTED (10 s at most).
wait_sql() {
	local got=""
	for _ in $(seq 100); do
		got=$(sql "$1" 2>/dev/null || true)
		[ "$got" == "$2" ] && break
		sleep 0.1
	done
	echo "$got"
}

not() { ! "$@"; }

finish() {
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}
