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
	[ -n "${WAGENT_PID:-}" ] && kill "$WAGENT_PID" 2>/dev/null
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
	"owner_win.c.obj redirect.c.obj redirect_wfp.c.obj redirect_win.c.obj wfp_filters.c.obj " \
	"$(lib_objs agent/os/libra_os.a)"
check_eq "proxy: loops, sessions, socket events, buffers, sniffer" \
	"bufpool.c.obj evio_uv.c.obj resolve.c.obj session.c.obj sniff.c.obj uidcount.c.obj worker.c.obj " \
	"$(lib_objs agent/proxy/libra_proxy.a)"
check_eq "policy, db and the API" \
	"holder.c.obj index.c.obj parse.c.obj | outbox.c.obj policies.c.obj query.c.obj retention.c.obj schema.c.obj store.c.obj | auth.c.obj handlers.c.obj local_cert.c.obj local_win.c.obj policy_rpc.c.obj server.c.obj watch.c.obj " \
	"$(lib_objs agent/policy/libra_policy.a)| $(lib_objs db/libra_db.a)| $(lib_objs agent/rpc/libra_rpc.a)"
check_eq "fleet: the export (file sink; this build has no NATS client)" \
	"ecs.c.obj export.c.obj fleet_off.c.obj shipper.c.obj sink_file.c.obj " \
	"$(lib_objs agent/fleet/libra_fleet.a)"
AGENT_EXE=$B/agent/redirect-agent.exe
CTL_EXE=$B/cli/redirectctl.exe
CALLOUT_OBJ=$B/agent/wfp-callout/CMakeFiles/ra_wfp_callout_check.dir/callout.c.obj
check "the callout driver compiles (compile check only: never built with the WDK, never run)" \
	test -s "$CALLOUT_OBJ"
check_eq "with the kernel calls it makes, left for fwpkclnt.sys and ntoskrnl.exe" \
	"ExAllocatePoolWithTag ExFreePoolWithTag FwpsAcquireClassifyHandle0 FwpsAcquireWritableLayerDataPointer0 FwpsApplyModifiedLayerData0 FwpsCalloutRegister1 FwpsCalloutUnregisterById0 FwpsQueryConnectionRedirectState0 FwpsRedirectHandleCreate0 FwpsRedirectHandleDestroy0 FwpsReleaseClassifyHandle0 IoCreateDevice IoDeleteDevice memcpy memset" \
	"$(x86_64-w64-mingw32-nm -u "$CALLOUT_OBJ" | awk '{ sub(/^__imp_/, "", $2); print $2 }' | sort | tr '\n' ' ' | sed 's/ $//')"
for exe in "$AGENT_EXE" "$CTL_EXE" "$B/tests/test_wfp.exe"; do
	check "$(basename "$exe") is a Windows x86-64 program" \
		grep -q "file format pei-x86-64" <<<"$(x86_64-w64-mingw32-objdump -f "$exe" 2>&1)"
done
# Static: nothing beside the .exe but Windows' own DLLs (no libstdc++,
# libwinpthread, libgcc, OpenSSL or gRPC DLL to ship).
SYSTEM_DLLS="advapi32.dll bcrypt.dll crypt32.dll dbghelp.dll fwpuclnt.dll iphlpapi.dll kernel32.dll msvcrt.dll user32.dll userenv.dll ws2_32.dll"
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
for t in wfp service portable config wfp_filters; do
	rc=0
	wine "$B/tests/test_$t.exe" >"$WORK/test_$t.out" 2>&1 || rc=$?
	grep -E "records on|context on|set records|install under wine|checks passed|failed" "$WORK/test_$t.out" || true
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

# --- The agent itself under wine, in the foreground. -----------------------
# Its remote console listener (mutual TLS, roles from the certificate) and
# its local admin endpoint (loopback TCP with mutual TLS, credentials made at
# first start), each checked by a Python grpcio console and by redirectctl.exe.
# Every path in its config is a Windows one (C:\...).
PY=/usr/bin/python3
C="$WORK/certs"
mkdir -p "$C"
ca() { # ca NAME: a self-signed CA
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$1" -keyout "$C/$1.key" -out "$C/$1.pem" 2>/dev/null
}
leaf() { # leaf CA NAME SAN: a certificate signed by CA
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
		-keyout "$C/$2.key" -out "$C/$2.csr" 2>/dev/null
	printf 'subjectAltName=%s\n' "$3" >"$C/$2.ext"
	openssl x509 -req -in "$C/$2.csr" -CA "$C/$1.pem" -CAkey "$C/$1.key" -CAcreateserial \
		-days 2 -extfile "$C/$2.ext" -out "$C/$2.pem" 2>/dev/null
}
ca ca
ca otherca
leaf ca server "IP:127.0.0.1,DNS:localhost"
leaf ca reader "DNS:console-reader"
leaf ca admin "DNS:console-admin"
leaf ca stranger "DNS:stranger"
leaf otherca impostor "DNS:console-admin"
T="$WINEPREFIX/drive_c/ra-test" # C:\ra-test
mkdir -p "$T/certs"
cp "$C"/{ca,server}.{pem,key} "$T/certs/"
DATA="$WINEPREFIX/drive_c/ProgramData/redirect-agent"
PORT=25001 # the relay; the others' tests use their own namespaces, this one the host's
RPORT=25051
cat >"$T/agent.conf" <<CONF
[proxy]
listen_port = $PORT
[api]
remote_listen = 127.0.0.1:$RPORT
tls_cert = C:\ra-test\certs\server.pem
tls_key = C:\ra-test\certs\server.key
tls_client_ca = C:/ra-test/certs/ca.pem
admins = console-admin
readers = console-reader, someone-else
CONF

# start_wagent CONF LOG: the agent under wine; WAGENT_PID. Ready at its "started" line.
start_wagent() {
	wine "$AGENT_EXE" --foreground --config "$1" >"$2" 2>&1 &
	WAGENT_PID=$!
	for _ in $(seq 300); do
		grep -q "redirect-agent .* started:" "$2" 2>/dev/null && return 0
		kill -0 "$WAGENT_PID" 2>/dev/null || { cat "$2" >&2; return 1; }
		sleep 0.1
	done
	echo "the agent did not start within 30 s" >&2
	cat "$2" >&2
	return 1
}
# stop_wagent: Ctrl+C (wine turns SIGINT into a console control event); its exit status.
stop_wagent() {
	local rc=0
	kill -INT "$WAGENT_PID"
	wait "$WAGENT_PID" || rc=$?
	WAGENT_PID=""
	return $rc
}
WAGENT_PID=""
# ctl ARGS...: redirectctl.exe under wine, its output in $WORK/ctl.out; its exit status.
ctl() { wine "$CTL_EXE" "$@" >"$WORK/ctl.out" 2>&1; }

check "the agent starts under wine (C:\\ paths in its config)" \
	start_wagent 'C:\ra-test\agent.conf' "$WORK/wagent.log"
check "it made the local CA and admin certificate in its data folder" \
	grep -qF "made the local endpoint's CA and admin certificate in C:\\ProgramData\\redirect-agent" \
	"$WORK/wagent.log"
check_eq "the endpoint file names the loopback port it listens on" \
	"$(sed -n 's/.*rpc: local endpoint \(127.0.0.1:[0-9]*\) .*/\1/p' "$WORK/wagent.log")" \
	"$(tr -d '\r\n' <"$DATA/agent.sock" 2>/dev/null)"

"$PY" -m grpc_tools.protoc -I"$SRCDIR/proto" --python_out="$WORK" --grpc_python_out="$WORK" \
	"$SRCDIR"/proto/redirect/v1/*.proto
console() { # console SCRIPT ARGS...: a Python console; its ok / not ok lines counted
	"$PY" "$SRCDIR/tests/scenario/$1" "${@:2}" >"$WORK/console.out" 2>&1 || true
	cat "$WORK/console.out"
	PASSES=$((PASSES + $(grep -c '^ok' "$WORK/console.out" || true)))
	FAILS=$((FAILS + $(grep -c '^not ok' "$WORK/console.out" || true)))
	check "$1 ran to its end" grep -q '^ok' "$WORK/console.out"
	check "$1 had no error of its own" not grep -q Traceback "$WORK/console.out"
}
echo "# the remote console over mutual TLS (tls_console.py), against the agent under wine"
console tls_console.py "$WORK" "$C" "127.0.0.1:$RPORT"
echo "# the local endpoint (local_console.py)"
console local_console.py "$WORK" "$DATA" "$C" "127.0.0.1:$RPORT"

check "redirectctl.exe status, by default on the local endpoint" ctl status
# wine has no filter engine: the agent runs without its WFP filters, and says so.
check "answers: health degraded, nothing is redirected" \
	grep -Eq '^health     degraded' "$WORK/ctl.out"
check "because" grep -q 'connections are not redirected' "$WORK/ctl.out"
check "the log says why: no filter engine" grep -q \
	"WFP: open the filter engine: not supported on this system .*: connections are not redirected" \
	"$WORK/wagent.log"
check "redirectctl.exe conns" ctl conns
check "redirectctl.exe policy get (admin only): the local admin's version" ctl policy get
# Reload (Windows has no SIGHUP: Agent.Reload only).
cp "$T/agent.conf" "$T/agent.conf.orig"
printf '[agent]\nlog_level = debug\n' >>"$T/agent.conf"
check "redirectctl.exe reload applies a new log level" ctl reload
check "saying so" grep -q "configuration read again: changed \[agent\] log_level" "$WORK/ctl.out"
sed -i "s/^listen_port = $PORT/listen_port = $((PORT + 1))/" "$T/agent.conf"
rc=0; ctl reload || rc=$?
check_eq "a new listen_port needs a restart: exit 1" 1 "$rc"
check "naming the key" grep -q "needs a restart: \[proxy\] listen_port" "$WORK/ctl.out"
mv "$T/agent.conf.orig" "$T/agent.conf"
check "redirectctl.exe over TLS as a remote reader" ctl --target "127.0.0.1:$RPORT" \
	--ca 'C:\ra-test\certs\ca.pem' --cert "$(winepath -w "$C/reader.pem")" \
	--key "$(winepath -w "$C/reader.key")" status

# A second agent (its own relay port and database) cannot take the endpoint over.
cat >"$T/second.conf" <<CONF
[proxy]
listen_port = $((PORT + 1))
[db]
path = C:\ra-test\second.db
CONF
rc=0
wine "$AGENT_EXE" --foreground --config 'C:\ra-test\second.conf' >"$WORK/second.log" 2>&1 || rc=$?
check "a second agent on the same local endpoint exits 1" [ "$rc" -eq 1 ]
check "saying another agent serves there" \
	grep -q "another agent is serving on this endpoint" "$WORK/second.log"
check "redirectctl.exe still reaches the first" ctl status

check "Ctrl+C: the agent exits 0" stop_wagent
check "and removes its endpoint file" not test -e "$DATA/agent.sock"
rc=0; ctl status || rc=$?
check "redirectctl.exe with no agent: exit 3 (unreachable)" [ "$rc" -eq 3 ]
check "saying why" grep -q "does not exist (is it running?)" "$WORK/ctl.out"

# Damaged credentials are made again, not served; a folder not its own is refused.
echo "garbage" >"$DATA/local-admin.pem"
check "the agent starts again with a damaged admin certificate" \
	start_wagent 'C:\ra-test\agent.conf' "$WORK/wagent2.log"
check "having made a new set" grep -q "made the local endpoint's CA" "$WORK/wagent2.log"
check "which redirectctl.exe uses" ctl status
check "Ctrl+C: exit 0" stop_wagent
mkdir -p "$WINEPREFIX/drive_c/Shared"
printf '[proxy]\nlisten_port = %s\n[api]\nlocal_socket = C:\\Shared\\agent.sock\n' "$PORT" >"$T/shared.conf"
rc=0
wine "$AGENT_EXE" --foreground --config 'C:\ra-test\shared.conf' >"$WORK/shared.log" 2>&1 || rc=$?
check "an endpoint in an existing folder not the agent's: refused at start" [ "$rc" -eq 1 ]
check "naming the folder" grep -q 'needs a folder of its own (C:\\Shared exists' "$WORK/shared.log"

# --- The relay under wine: redirect-agent-test.exe. -------------------------
# The shipped agent's code with a test-only redirect backend in place of WFP
# (tests/windows/redirect_test.c): the original destination comes from the
# client's source port, so the real loop, sessions, relay, timeouts,
# half-close and recording run. wine_relay.py is the clients and the
# upstream servers; the rows are checked in the agent's SQLite database
# afterwards, and in the ECS file it exported them to (no NATS in this build).
TEST_EXE=$B/tests/redirect-agent-test.exe
relay_conf() { # relay_conf FILE [LINE]: the test build's config; LINE joins [proxy]
	cat >"$1" <<CONF
[proxy]
listen_port = $PORT
connect_timeout_ms = 1500
${2:-}
[db]
path = C:\ra-test\relay.db
[export]
ecs_file = C:\ra-test\ecs.json
CONF
}
relay_conf "$T/relay.conf"
relay_conf "$T/idle.conf" "idle_timeout_s = 1"
AGENT_EXE=$TEST_EXE
export RA_TEST_REDIRECT
RA_TEST_REDIRECT=$("$PY" "$SRCDIR/tests/scenario/wine_relay.py" table "$PORT")
check "the test build starts under wine" start_wagent 'C:\ra-test\relay.conf' "$WORK/relay.log"
check "and says it is one" grep -q "TEST BUILD: original destinations from RA_TEST_REDIRECT" \
	"$WORK/relay.log"
echo "# the relay (wine_relay.py)"
rc=0
"$PY" "$SRCDIR/tests/scenario/wine_relay.py" run "$PORT" >"$WORK/relay.out" 2>&1 || rc=$?
cat "$WORK/relay.out"
PASSES=$((PASSES + $(grep -c '^ok' "$WORK/relay.out" || true)))
FAILS=$((FAILS + $(grep -c '^not ok' "$WORK/relay.out" || true)))
check "wine_relay.py exits 0 (its own errors too)" [ "$rc" -eq 0 ]
check "redirectctl.exe conns lists the relayed connections" ctl conns
check "redirectctl.exe conns --dst-port: the half-closed one" ctl conns --dst-port "$((PORT + 101))"
check "shown closed" grep -Eq "127\.0\.0\.1:$((PORT + 101)) +closed" "$WORK/ctl.out"
check "Ctrl+C: the test build exits 0" stop_wagent
# The idle timeout on a run of its own: 1 s would cut the 200 above short.
check "the test build starts again, idle_timeout_s = 1" \
	start_wagent 'C:\ra-test\idle.conf' "$WORK/idle.log"
rc=0
"$PY" "$SRCDIR/tests/scenario/wine_relay.py" idle "$PORT" >"$WORK/idle.out" 2>&1 || rc=$?
cat "$WORK/idle.out"
PASSES=$((PASSES + $(grep -c '^ok' "$WORK/idle.out" || true)))
FAILS=$((FAILS + $(grep -c '^not ok' "$WORK/idle.out" || true)))
check "wine_relay.py idle exits 0" [ "$rc" -eq 0 ]
check "Ctrl+C: exit 0" stop_wagent
unset RA_TEST_REDIRECT

db() { sqlite3 -batch -noheader "$T/relay.db" "$@"; }
check_eq "every relayed echo: closed, completed, no error, redirect state none" 202 \
	"$(db "SELECT count(*) FROM connections WHERE orig_dst_port = $((PORT + 100))
	       AND state = 'closed' AND close_reason = 'completed' AND error IS NULL
	       AND redirect_state = 'none' AND connect_us > 0 AND closed_at_us >= opened_at_us")"
check_eq "the 300 KiB exchange: bytes counted both ways" 1 \
	"$(db "SELECT count(*) FROM connections WHERE bytes_up = 307200 AND bytes_down = 307200")"
check_eq "the IPv6 one: family 6, client ::1, original destination ::1" "6|::1|::1" \
	"$(db "SELECT family, client_addr, orig_dst_addr FROM connections WHERE family = 6")"
check_eq "half-close: completed, 100 KiB up, the 72-byte answer down" "closed|completed|102400|72" \
	"$(db "SELECT state, close_reason, bytes_up, bytes_down FROM connections
	       WHERE orig_dst_port = $((PORT + 101))")"
check_eq "refused upstream: failed, with reason and error" \
	"failed|upstream connect failed|connection refused" \
	"$(db "SELECT state, close_reason, error FROM connections WHERE orig_dst_port = $((PORT + 102))")"
check_eq "silent upstream: failed after the connect timeout" \
	"failed|upstream connect timeout|connection timed out" \
	"$(db "SELECT state, close_reason, error FROM connections WHERE orig_dst_port = $((PORT + 103))")"
check_eq "idle session: closed with its reason" 1 \
	"$(db "SELECT count(*) FROM connections WHERE close_reason = 'idle timeout'")"
check_eq "the loop: refused, a row of its own" 1 \
	"$(db "SELECT count(*) FROM connections WHERE orig_dst_port = $PORT AND close_reason LIKE 'loop:%'")"
check_eq "the direct connection: counted, not a row" \
	"not redirected: direct connection to the agent's listener|1" \
	"$(db "SELECT reason, count FROM refused_connections")"
check_eq "no row left open" 0 "$(db "SELECT count(*) FROM connections WHERE state IN ('open','relaying')")"
check_eq "integrity_check" ok "$(db "PRAGMA integrity_check")"
rows=$(db "SELECT count(*) FROM connections")
check "$rows rows in all" [ "$rows" -ge 207 ]
ecs="$T/ecs.json"
check_eq "the ECS file, over both runs: one line per connection ($rows)" "$rows" "$(wc -l <"$ecs" 2>/dev/null || echo 0)"
check "every line is a JSON document" "$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    json.loads(line)' "$ecs"
check_eq "with the rows' destination ports" \
	"$(db "SELECT orig_dst_port FROM connections ORDER BY orig_dst_port" | paste -sd' ')" \
	"$("$PY" -c '
import json, sys
print(" ".join(str(p) for p in sorted(json.loads(l)["destination"]["port"] for l in open(sys.argv[1]))))' "$ecs")"

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
