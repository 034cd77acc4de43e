#!/usr/bin/env bash
# The systemd integration: the unit passes systemd-analyze verify and its
# hardening scores; the agent speaks the notify protocol (READY with a
# status, WATCHDOG pings while its loops turn, STOPPING) to a stand-in
# notify socket; cmake --install lays out the files; the shipped config is
# every key, commented, and parses.
source "$(dirname "$0")/lib.sh"

UNIT="$SRCDIR/deploy/systemd/redirect-agent.service"
# verify checks that ExecStart exists: point a copy at the built agent.
sed "s|/usr/sbin/redirect-agent|$AGENT|" "$UNIT" >"$WORK/redirect-agent.service"
out=$(systemd-analyze verify "$WORK/redirect-agent.service" 2>&1) || true
check_eq "systemd-analyze verify: no complaints" "" "$(grep -v 'Documentation=' <<<"$out" || true)"
score=$(systemd-analyze security --offline=true "$WORK/redirect-agent.service" 2>/dev/null |
	grep -oE 'Overall exposure level for [^:]+: [0-9.]+' | awk '{ print $NF }')
echo "exposure score: $score"
check "hardening: exposure score $score is at most 3.0 (OK or better)" \
	awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 3.0) }'

# What the agent calls beyond @system-service: bpf (the owner's connect hook).
# (test_owner.sh runs the agent with the unit's capabilities.)
check "the unit's system call filter allows bpf" \
	grep -qE '^SystemCallFilter=@system-service( .*)? bpf( |$)' "$UNIT"
check "the shipped config parses" "$AGENT" --check-config --config "$SRCDIR/deploy/agent.conf"
# Every key of agent/config.c's key table, each once, with its default.
check_eq "the shipped config is the agent's own template (--print-config)" \
	"$("$AGENT" --print-config)" "$(cat "$SRCDIR/deploy/agent.conf")"

# The notify protocol, with a stand-in for systemd's socket.
setup_net
write_config "$WORK/agent.conf"
ip netns exec "$CNS" "$PY" "$SRCDIR/tests/scenario/notify_listener.py" "$WORK/notify.sock" >"$WORK/notify.out" &
listener=$!
PIDS+=($listener)
for _ in $(seq 50); do grep -q listening "$WORK/notify.out" 2>/dev/null && break; sleep 0.1; done
NOTIFY_SOCKET="$WORK/notify.sock" WATCHDOG_USEC=400000 start_agent "$WORK/agent.conf"
sleep 1.2
stop_agent
wait "$listener" || true
check "READY=1 after start" grep -qx "READY=1" "$WORK/notify.out"
check "with a status line" grep -q "^STATUS=relaying on port 15001, API on " "$WORK/notify.out"
pings=$(grep -cx "WATCHDOG=1" "$WORK/notify.out" || true)
check "watchdog pinged about every 200 ms ($pings pings in ~1.2 s)" [ "$pings" -ge 4 ]
check "STOPPING=1 on SIGTERM" grep -qx "STOPPING=1" "$WORK/notify.out"

# cmake --install lays out what a package ships.
DEST="$WORK/root"
DESTDIR="$DEST" cmake --install "$(dirname "$AGENT")/.." --prefix /usr >/dev/null
for f in usr/sbin/redirect-agent usr/bin/redirectctl etc/redirect-agent/agent.conf \
	usr/lib/systemd/system/redirect-agent.service usr/share/redirect-agent/proto/redirect/v1/telemetry.proto \
	usr/share/doc/redirect-agent/README.md; do
	check "installed: /$f" test -e "$DEST/$f"
done
finish
