#!/usr/bin/env bash
# The remote console listener: TLS with client certificates only. Roles come
# from the certificate identity (SAN, else CN); certificates are made here.
source "$(dirname "$0")/lib.sh"
: "${CTL:?CTL must point at redirectctl}"

C="$WORK/certs"
mkdir -p "$C"
ca() { # ca NAME: a self-signed CA
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$1" -keyout "$C/$1.key" -out "$C/$1.pem" 2>/dev/null
}
leaf() { # leaf CA NAME SAN [CN]: a certificate (file NAME, CN NAME or CN) signed by CA;
	# SAN "" for none
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=${4:-$2}" \
		-keyout "$C/$2.key" -out "$C/$2.csr" 2>/dev/null
	if [ -n "$3" ]; then printf 'subjectAltName=%s\n' "$3"; else echo 'basicConstraints=CA:FALSE'; fi >"$C/$2.ext"
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
leaf ca twofaced "DNS:stranger" console-admin # a SAN of its own, an admin's CN
leaf ca cnonly "" console-admin               # no SAN: the CN is the identity

# No insecure remote listener can be configured.
printf '[api]\nremote_listen = 127.0.0.1:50051\n' >"$WORK/insecure.conf"
rc=0; out=$("$AGENT" --check-config --config "$WORK/insecure.conf" 2>&1) || rc=$?
check_eq "remote_listen without TLS files is a configuration error (78)" 78 "$rc"
check "which says so" grep -q "needs tls_cert, tls_key and tls_client_ca" <<<"$out"

# --check-config reads the TLS files, as the agent will: they exist, parse,
# and the key is the certificate's.
tls_conf() { # tls_conf CERT KEY CA: a config naming them, checked; its output in $out
	printf '[api]\nremote_listen = 127.0.0.1:50051\ntls_cert = %s\ntls_key = %s\ntls_client_ca = %s\n' \
		"$1" "$2" "$3" >"$WORK/files.conf"
	rc=0; out=$("$AGENT" --check-config --config "$WORK/files.conf" 2>&1) || rc=$?
}
tls_conf "$C/server.pem" "$C/server.key" "$C/ca.pem"
check_eq "--check-config with good TLS files: 0" 0 "$rc"
tls_conf "$C/absent.pem" "$C/server.key" "$C/ca.pem"
check_eq "a certificate file that does not exist: 78" 78 "$rc"
check "named, with the reason" grep -q "tls_cert = $C/absent.pem: no such file" <<<"$out"
echo "not a certificate" >"$WORK/junk.pem"
tls_conf "$C/server.pem" "$C/server.key" "$WORK/junk.pem"
check_eq "a client CA that is not PEM: 78" 78 "$rc"
check "named" grep -q "tls_client_ca = $WORK/junk.pem: no PEM certificate" <<<"$out"
tls_conf "$C/server.pem" "$C/admin.key" "$C/ca.pem"
check_eq "a key that is not the certificate's: 78" 78 "$rc"
check "says which" grep -q "tls_key = $C/admin.key is not the key of \[api\] tls_cert" <<<"$out"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=old \
	-keyout "$C/old.key" -out "$C/old.csr" 2>/dev/null
openssl x509 -req -in "$C/old.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial -days 0 \
	-out "$C/old.pem" 2>/dev/null # valid until now: expired a second later
sleep 1.1
tls_conf "$C/old.pem" "$C/old.key" "$C/ca.pem"
check_eq "an expired certificate: 78" 78 "$rc"
check "with its date" grep -q "tls_cert = $C/old.pem: the certificate expired on 20" <<<"$out"
printf '[fleet]\nservers = nats://127.0.0.1:4222\ntls_cert = %s\ntls_key = %s\n' \
	"$C/admin.pem" "$C/server.key" >"$WORK/files.conf"
rc=0; out=$("$AGENT" --check-config --config "$WORK/files.conf" 2>&1) || rc=$?
check_eq "the fleet's client certificate and key are checked too: 78" 78 "$rc"
check "named" grep -q "\[fleet\] tls_key = $C/server.key is not the key of" <<<"$out"

setup_net
write_config "$WORK/agent.conf" "[api]" "remote_listen = 127.0.0.1:50051" \
	"tls_cert = $C/server.pem" "tls_key = $C/server.key" "tls_client_ca = $C/ca.pem" \
	"admins = console-admin" "readers = console-reader, someone-else"
start_agent "$WORK/agent.conf"
wait_port "$CNS" 50051

"$PY" -m grpc_tools.protoc -I"$SRCDIR/proto" --python_out="$WORK" --grpc_python_out="$WORK" \
	"$SRCDIR"/proto/redirect/v1/*.proto
in_c "$PY" "$SRCDIR/tests/scenario/tls_console.py" "$WORK" "$C" 127.0.0.1:50051 | tee "$WORK/tls.out"
PASSES=$((PASSES + $(grep -c '^ok' "$WORK/tls.out")))
FAILS=$((FAILS + $(grep -c '^not ok' "$WORK/tls.out" || true)))
check "refusals are logged with the identity" grep -q "refused /redirect.v1.Policy/SetPolicy: console-reader is a reader" "$WORK"/agent*.log

tls() { in_c "$CTL" --target 127.0.0.1:50051 --ca "$C/ca.pem" --cert "$C/$1.pem" --key "$C/$1.key" "${@:2}"; }
check "redirectctl over TLS as reader: status" bash -c "$(declare -f in_c tls); CNS=$CNS C=$C CTL=$CTL; tls reader status | grep -q '^health     serving'"
rc=0; tls reader policy get 2>"$WORK/err" || rc=$?
check_eq "redirectctl as reader: policy get exits 1" 1 "$rc"
check "with the agent's reason" grep -q "needs the admin role" "$WORK/err"
rc=0; tls twofaced status 2>"$WORK/err" || rc=$?
check_eq "SAN 'stranger', CN 'console-admin': the SAN is the identity, no role (exit 1)" 1 "$rc"
check "named by its SAN" grep -q "stranger has no role on this agent" "$WORK/err"
rc=0; tls cnonly policy get >/dev/null 2>"$WORK/err" || rc=$?
check_eq "a certificate with no SAN: the CN is its identity (admin: policy get exits 0)" 0 "$rc"
rc=0; tls impostor status 2>"$WORK/err" || rc=$?
check_eq "redirectctl with another CA's certificate: exit 3" 3 "$rc"
rc=0; "$CTL" --target 127.0.0.1:50051 --ca "$C/ca.pem" status 2>/dev/null || rc=$?
check_eq "redirectctl --target without --cert/--key is a usage error" 2 "$rc"
stop_agent
finish
