#!/usr/bin/env bash
# Reload without a restart (SIGHUP, systemd's ExecReload, redirectctl
# reload): SIGHUP never stops the agent; the log level, the redirected
# ports, the timeouts, the retention limits, the fair share and the API's
# roles change live; a change that needs a restart, or a broken file, is
# refused and the running configuration kept; the remote listener's
# certificates rotate without dropping a connection. (The fleet settings:
# test_fleet.sh.)
source "$(dirname "$0")/lib.sh"
: "${CTL:?CTL must point at redirectctl}"

ctl() { "$CTL" --socket "$WORK/agent.sock" "$@"; }
get() { in_c curl -sS --max-time 3 "http://$SRV4:$1/" 2>/dev/null; }
rows() { sql "SELECT count(*) FROM connections WHERE orig_dst_port = $1"; }
hello="hello from $(hostname)"
C="$WORK/certs"
mkdir -p "$C"
cert() { # cert NAME CN SAN: signed by the test CA
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
		-keyout "$C/$1.key" -out "$C/$1.csr" 2>/dev/null
	printf 'subjectAltName=%s\n' "$3" >"$C/$1.ext"
	openssl x509 -req -in "$C/$1.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
		-days 2 -extfile "$C/$1.ext" -out "$C/$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ca \
	-keyout "$C/ca.key" -out "$C/ca.pem" 2>/dev/null
cert server-old server-old "IP:127.0.0.1"
cert server-new server-new "IP:127.0.0.1"
cert admin admin "DNS:console-admin"
cp "$C/server-old.pem" "$C/server.pem"
cp "$C/server-old.key" "$C/server.key"

setup_net
start_httpd 80
start_httpd 8080
conf() { # conf [EXTRA LINES...]: one event loop, so one loop's share is the whole limit
	write_config "$WORK/agent.conf" "[proxy]" "workers = 1" "[api]" "remote_listen = 127.0.0.1:50051" \
		"tls_cert = $C/server.pem" "tls_key = $C/server.key" "tls_client_ca = $C/ca.pem" \
		"admins = console-admin" "$@"
}
conf "[proxy]" "redirect_ports = 80"
start_agent "$WORK/agent.conf"
wait_port "$CNS" 50051
log=$(ls -t "$WORK"/agent*.log | head -1)

# SIGHUP: never a stop.
kill -HUP "$AGENT_PID"
for _ in $(seq 50); do grep -q "SIGHUP:" "$log" && break; sleep 0.1; done
check "SIGHUP does not stop the agent" kill -0 "$AGENT_PID"
check "it reads the configuration again" grep -q "SIGHUP: configuration read again: nothing changed" "$log"

# Live: the log level and the redirected ports.
get 8080 >/dev/null
check_eq "port 8080 is not redirected yet" 0 "$(rows 8080)"
conf "[agent]" "log_level = debug" "[proxy]" "redirect_ports = 80, 8080"
kill -HUP "$AGENT_PID"
for _ in $(seq 50); do grep -q "changed.*redirect_ports" "$log" && break; sleep 0.1; done
check "the log level and the ports change live" grep -q "changed \[agent\] log_level, \[proxy\] redirect_ports" "$log"
check_eq "port 8080 is now redirected and relayed" "$hello" "$(get 8080)"
check_eq "and recorded" 1 "$(wait_sql "SELECT count(*) FROM connections WHERE orig_dst_port = 8080" 1)"
check "debug lines are logged now" grep -q "debug: session" "$log"

# Live: the limits. A connection left idle is closed after the new idle_timeout_s.
conf "[agent]" "log_level = debug" "[proxy]" "redirect_ports = 80, 8080" "idle_timeout_s = 1" \
	"[db]" "retention_days = 7" "max_rows = 5000" "policy_history_keep = 10"
kill -HUP "$AGENT_PID"
for _ in $(seq 50); do grep -q "changed.*idle_timeout_s" "$log" && break; sleep 0.1; done
check "the timeouts and retention change live" grep -q \
	"changed \[proxy\] idle_timeout_s, \[db\] retention_days, \[db\] max_rows, \[db\] policy_history_keep" "$log"
in_c "$PY" -c "import socket, time; s = socket.create_connection(('$SRV4', 80)); time.sleep(2.5)"
check_eq "an idle connection is closed after 1 s, not 600" "idle timeout" \
	"$(wait_sql "SELECT close_reason FROM connections ORDER BY id DESC LIMIT 1" "idle timeout")"

# Live: the fair share. With max_sessions_per_uid = 3 a user keeps 3 idle
# sessions; set to 0 (no limit) again, 8.
fair() { # fair LIMIT: reload with it, then how many of 8 sessions uid 65534 keeps
	conf "[proxy]" "redirect_ports = 80, 8080" "max_sessions_per_uid = $1"
	ctl reload >/dev/null
	hold_sessions 65534 8 0 >"$WORK/held"
	wait $!
	cat "$WORK/held"
}
check_eq "max_sessions_per_uid = 3 by a reload: nobody keeps 3 of 8" 3 "$(fair 3)"
check_eq "and 0 (no limit) by the next: 8 of 8" 8 "$(fair 0)"
check_eq "3 again: 3 of 8" 3 "$(fair 3)"

# A change that needs a restart: refused, nothing changes.
conf "[agent]" "log_level = debug" "[proxy]" "redirect_ports = 80" "listen_port = 15009"
rc=0; out=$(ctl reload 2>&1) || rc=$?
check_eq "redirectctl reload with a new listen_port exits 1" 1 "$rc"
check "naming the key" grep -q "needs a restart: \[proxy\] listen_port" <<<"$out"
check_eq "the running configuration is kept: port 8080 still redirected" 2 \
	"$(get 8080 >/dev/null; wait_sql "SELECT count(*) FROM connections WHERE orig_dst_port = 8080" 2)"
# A broken file: refused, still running.
printf '[proxy]\nredirect_ports = 80\nbogus line\n' >"$WORK/agent.conf"
kill -HUP "$AGENT_PID"
for _ in $(seq 50); do grep -q "configuration error" "$log" && break; sleep 0.1; done
check "a broken file is refused, saying why" grep -q "SIGHUP: configuration error" "$log"
check "and the agent runs on" kill -0 "$AGENT_PID"

# Certificates rotate without dropping a connection: a watch stream opened
# with the old certificate keeps receiving events after the reload, and a new
# connection gets the new certificate.
conf "[agent]" "log_level = debug" "[proxy]" "redirect_ports = 80, 8080"
"$PY" -m grpc_tools.protoc -I"$SRCDIR/proto" --python_out="$WORK" --grpc_python_out="$WORK" \
	"$SRCDIR"/proto/redirect/v1/*.proto
in_c "$PY" - "$WORK" "$C" >"$WORK/watch.out" 2>&1 <<'PYEOF' &
import sys, time
sys.path.insert(0, sys.argv[1])
import grpc
from redirect.v1 import telemetry_pb2, telemetry_pb2_grpc
c = sys.argv[2]
rd = lambda n: open(c + "/" + n, "rb").read()
creds = grpc.ssl_channel_credentials(rd("ca.pem"), rd("admin.key"), rd("admin.pem"))
ch = grpc.secure_channel("127.0.0.1:50051", creds)
t = telemetry_pb2_grpc.TelemetryStub(ch)
n = 0
try:
    for ev in t.WatchConnections(telemetry_pb2.WatchConnectionsRequest(), timeout=30):
        n += 1
        print("event", n, flush=True)
except grpc.RpcError as e:
    print("ended", e.code().name, flush=True)
PYEOF
watcher=$!
PIDS+=("$watcher")
# The watcher may take a while to import grpc and subscribe on a loaded
# machine: connect again until it has seen an event (at most 10 s).
for _ in $(seq 20); do
	get 80 >/dev/null
	grep -q "^event" "$WORK/watch.out" && break
	sleep 0.5
done
check "the stream (old certificate) receives events" grep -q "^event" "$WORK/watch.out"
before=$(grep -c "^event" "$WORK/watch.out" || true)
# Half a rotation (the new certificate, the old key) is refused before
# anything changes: new connections still get the old certificate.
cp "$C/server-new.pem" "$C/server.pem"
rc=0; out=$(ctl reload 2>&1) || rc=$?
check_eq "a reload whose key is not its certificate's exits 1" 1 "$rc"
check "saying so" grep -q "tls_key = $C/server.key is not the key of \[api\] tls_cert" <<<"$out"
subject=$(in_c openssl s_client -connect 127.0.0.1:50051 -CAfile "$C/ca.pem" -cert "$C/admin.pem" \
	-key "$C/admin.key" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null || true)
check_eq "and the old certificate is still served" "subject=CN = server-old" "$subject"
cp "$C/server-new.key" "$C/server.key"
check "redirectctl reload reads the certificates again" grep -q "certificates are read again" <<<"$(ctl reload)"
get 80 >/dev/null
for _ in $(seq 30); do [ "$(grep -c "^event" "$WORK/watch.out")" -gt "$before" ] && break; sleep 0.1; done
check "the same stream goes on after the reload" [ "$(grep -c "^event" "$WORK/watch.out")" -gt "$before" ]
check "it was not dropped" not grep -q "^ended UNAVAILABLE" "$WORK/watch.out"
subject=$(in_c openssl s_client -connect 127.0.0.1:50051 -CAfile "$C/ca.pem" -cert "$C/admin.pem" \
	-key "$C/admin.key" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null || true)
check "a new connection gets the new certificate ($subject)" grep -q "server-new" <<<"$subject"
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true

# Live: the roles. console-admin, made a reader by a reload, may read but no
# longer set the policy; made an admin again, it may.
remote() { in_c "$CTL" --target 127.0.0.1:50051 --ca "$C/ca.pem" --cert "$C/admin.pem" --key "$C/admin.key" "$@"; }
echo '{"rules": []}' >"$WORK/policy.json"
check "console-admin may set the policy" remote policy set "$WORK/policy.json"
conf "[agent]" "log_level = debug" "[proxy]" "redirect_ports = 80, 8080" "[api]" "admins = someone-else" \
	"readers = console-admin"
check "a reload makes it a reader" grep -q "changed \[api\] admins, \[api\] readers" <<<"$(ctl reload)"
check "which may read" remote status
rc=0; remote policy set "$WORK/policy.json" 2>"$WORK/err" || rc=$?
check_eq "but not set the policy (exit 1)" 1 "$rc"
check "as the agent says" grep -q "console-admin is a reader: .* needs the admin role" "$WORK/err"
conf "[agent]" "log_level = debug" "[proxy]" "redirect_ports = 80, 8080"
ctl reload >/dev/null
check "an admin again by the next reload" remote policy set "$WORK/policy.json"
stop_agent
finish
