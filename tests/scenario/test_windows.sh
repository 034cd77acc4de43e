#!/usr/bin/env bash
# The agent for Windows, cross-compiled with mingw-w64 from the same CMake
# source lists as Linux and linked statically against the dependency set
# deploy/windows/build-deps.sh makes: both executables link, and import only
# Windows' own DLLs. Then, under wine: the WFP records logic (buffer growth,
# error mapping, and the real winsock calls wine answers), the portable
# parsers and socket helpers, and the service wrapper, first its status
# logic, then as a real service under wine's Service Control Manager:
# created, started (RUNNING), stopped (STOPPED, exit 0), its log file
# written, deleted.
set -euo pipefail
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
WORK=$(mktemp -d /tmp/rawin.XXXX)
export WINEPREFIX="$WORK/prefix" WINEDEBUG=-all
FAILS=0
PASSES=0
keeper=""
cleanup() {
	[ -n "$keeper" ] && kill "$keeper" 2>/dev/null || true
	wineserver -k 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
not() { ! "$@"; }
check() {
	local what=$1; shift
	if "$@"; then echo "ok - $what"; PASSES=$((PASSES + 1)); else echo "not ok - $what"; FAILS=$((FAILS + 1)); fi
}
check_eq() {
	if [ "$2" == "$3" ]; then echo "ok - $1"; PASSES=$((PASSES + 1)); else echo "not ok - $1: expected '$2', got '$3'"; FAILS=$((FAILS + 1)); fi
}

# The whole tree for Windows, linked against the static dependency set
# (deploy/windows/build-deps.sh), from the same CMake source lists as Linux.
source "$SRCDIR/tests/scenario/winlib.sh"
B=${WINBUILD:-$WORK/build}
check "the Windows tree cross-compiles and links with -Werror" win_build "$B"
[ "$FAILS" -eq 0 ] || { echo "0 passed, 1 failed"; exit 1; }
# Each layer's library, from the same lists as Linux with the Windows files appended.
lib_objs() { x86_64-w64-mingw32-ar t "$B/$1" | sort | tr '\n' ' '; }
check_eq "common: logging, addresses, the record's words, errors, parsers, paths, host" \
	"addr.c.obj conn.c.obj err.c.obj host_win.c.obj log.c.obj parse.c.obj paths_win.c.obj records.c.obj " \
	"$(lib_objs agent/common/libra_common.a)"
check_eq "os: the WFP redirect backend and the owner lookup" \
	"owner_win.c.obj redirect.c.obj redirect_wfp.c.obj redirect_win.c.obj " \
	"$(lib_objs agent/os/libra_os.a)"
check_eq "proxy: loops, sessions, socket events, buffers, sniffer" \
	"bufpool.c.obj evio_uv.c.obj resolve.c.obj session.c.obj sniff.c.obj uidcount.c.obj worker.c.obj " \
	"$(lib_objs agent/proxy/libra_proxy.a)"
check_eq "policy, db and the API" \
	"holder.c.obj index.c.obj parse.c.obj | outbox.c.obj policies.c.obj query.c.obj retention.c.obj schema.c.obj store.c.obj | auth.c.obj handlers.c.obj local_win.c.obj policy_rpc.c.obj server.c.obj watch.c.obj " \
	"$(lib_objs agent/policy/libra_policy.a)| $(lib_objs db/libra_db.a)| $(lib_objs agent/rpc/libra_rpc.a)"
check_eq "fleet: the export (file sink; this build has no NATS client)" \
	"ecs.c.obj export.c.obj fleet_off.c.obj shipper.c.obj sink_file.c.obj " \
	"$(lib_objs agent/fleet/libra_fleet.a)"
AGENT_EXE=$B/agent/redirect-agent.exe
CTL_EXE=$B/cli/redirectctl.exe
for exe in "$AGENT_EXE" "$CTL_EXE" "$B/tests/test_wfp.exe"; do
	check "$(basename "$exe") is a Windows x86-64 program" \
		grep -q "file format pei-x86-64" <<<"$(x86_64-w64-mingw32-objdump -f "$exe" 2>&1)"
done
# Static: nothing beside the .exe but Windows' own DLLs (no libstdc++,
# libwinpthread, libgcc, OpenSSL or gRPC DLL to ship).
SYSTEM_DLLS="advapi32.dll bcrypt.dll crypt32.dll dbghelp.dll iphlpapi.dll kernel32.dll msvcrt.dll user32.dll userenv.dll ws2_32.dll"
for exe in "$AGENT_EXE" "$CTL_EXE"; do
	check "$(basename "$exe") imports only Windows' own DLLs" \
		[ -z "$(comm -23 <(win_imports "$exe" | tr ' ' '\n') <(tr ' ' '\n' <<<"$SYSTEM_DLLS"))" ]
done
echo "# sizes: redirect-agent.exe $(stat -c %s "$AGENT_EXE") bytes, redirectctl.exe $(stat -c %s "$CTL_EXE") bytes"

win_boot
# wine ends its system processes (the SCM among them) when no program of its
# own runs: keep one running for the service steps.
wine cmd /c "ping -n 120 127.0.0.1 >nul" >/dev/null 2>&1 &
keeper=$!

# Not through ctest or $(...): wine starts helper processes (winedevice.exe)
# on first use of winsock, and they inherit the output pipe, so a reader
# waiting for its end would wait for them. A file has no end to wait for.
for t in wfp service portable; do
	rc=0
	wine "$B/tests/test_$t.exe" >"$WORK/test_$t.out" 2>&1 || rc=$?
	grep -E "records on|context on|set records|checks passed|failed" "$WORK/test_$t.out" || true
	check "test_$t.exe passes under wine" [ "$rc" -eq 0 ]
done

exe=$(winepath -w "$B/tests/test_service.exe")
sc_state() { wine sc query ratest 2>/dev/null | tr -d '\r' | awk '/STATE/ {print $4}' || true; }
wait_state() {
	local st=""
	for _ in $(seq 50); do st=$(sc_state); [ "$st" == "$1" ] && return 0; sleep 0.2; done
	echo "service state: '$st'" >&2
	return 1
}
wine sc create ratest binPath= "$exe --service ratest" >/dev/null 2>&1 || true
# wine's sc has no "qc": query is how to ask whether the service exists.
present() { wine sc query ratest >/dev/null 2>&1; }
check "sc create" present
started=no
for _ in $(seq 10); do
	wine sc start ratest >/dev/null 2>&1 && { started=yes; break; }
	sleep 1
done
check_eq "sc start" yes "$started"
check "the service reports RUNNING after start" wait_state RUNNING
wine sc stop ratest >/dev/null 2>&1 || true
check "STOP takes it to STOPPED" wait_state STOPPED
code=$(wine sc query ratest 2>/dev/null | tr -d '\r' | awk '/WIN32_EXIT_CODE/ {print $3}' || true)
check_eq "exit code 0 after a clean stop" 0 "$code"
log=$(find "$WINEPREFIX/drive_c" -path "*redirect-agent/agent.log" | head -1)
check "the log file is under %ProgramData%\\redirect-agent" [ -n "$log" ]
check_eq "the run logged start, stop request and a clean end" \
	"fake agent: started
fake agent: stop requested
fake agent: stopped cleanly" "$(tr -d '\r' <"$log" 2>/dev/null)"
wine sc delete ratest >/dev/null 2>&1 || true
check "sc delete removes it" not present

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
