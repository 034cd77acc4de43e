#!/usr/bin/env bash
# The Windows installer, built with wixl from the real executables (linked
# against the static dependency set, as test_windows.sh does), checked with
# msiinfo, then installed under wine's msiexec in a fresh prefix, inside a
# network namespace of its own (the installed service listens on the
# default port 15001):
#  1. a bad install-time property fails the install and rolls it back;
#  2. a silent install with the properties: files in place, the service
#     RUNNING, the config written from the properties, redirectctl.exe
#     answering on the local endpoint and over TLS on the remote listener;
#  3. a major upgrade keeps the config, the database and the policy;
#  4. msiexec /x removes the service and the files, and keeps the data.
source "$(dirname "$0")/lib.sh"
source "$SRCDIR/tests/scenario/winlib.sh"

B=${WINBUILD:-$WORK/build}
check "the Windows tree cross-compiles and links" win_build "$B"
[ "$FAILS" -eq 0 ] || finish

STAGE="$WORK/stage"
mkdir -p "$STAGE"
cp "$B/agent/redirect-agent.exe" "$B/cli/redirectctl.exe" "$STAGE/"
for v in 0.1.0 0.2.0; do
	(cd "$STAGE" && wixl -a x64 -D Version=$v -o "$WORK/redirect-agent-$v.msi" \
		"$SRCDIR/deploy/windows/redirect-agent.wxs" 2>"$WORK/wixl.err")
	check "wixl built the $v MSI from the real executables" test -s "$WORK/redirect-agent-$v.msi"
done
MSI=$WORK/redirect-agent-0.1.0.msi
echo "# MSI size: $(stat -c %s "$MSI") bytes"

# --- Its tables. ---------------------------------------------------------------
tbl() { msiinfo export "$MSI" "$1" | tail -n +4 | tr -d '\r'; } # exports are CRLF
check_eq "files: both executables, their real sizes" \
	"redirect-agent.exe $(stat -c %s "$STAGE/redirect-agent.exe")
redirectctl.exe $(stat -c %s "$STAGE/redirectctl.exe")" \
	"$(tbl File | awk -F'\t' '{ print $3, $4 }' | sort)"
svc=$(tbl ServiceInstall)
check_eq "service: own process (16), automatic start (2), normal errors (1), LocalSystem" \
	"redirect-agent 16 2 1 LocalSystem" "$(awk -F'\t' '{ print $2, $4, $5, $6, $9 }' <<<"$svc")"
check "service: runs with the config under ProgramData" \
	grep -qF -- '--service --config "[CommonAppDataFolder]redirect-agent\agent.conf"' <<<"$svc"
check_eq "service control: start on install, stop on install and uninstall, remove on uninstall (163)" \
	"redirect-agent 163" "$(tbl ServiceControl | awk -F'\t' '{ print $2, $3 }')"
check_eq "every component is 64-bit (256)" "256 256 256" \
	"$(tbl Component | awk -F'\t' '{ print $4 }' | sort | tr '\n' ' ' | sed 's/ $//')"
check "major upgrade: the upgrade code detects older and newer versions" \
	test "$(tbl Upgrade | grep -c '8D6F1A4B-3C2E-4B7A-9E51-2F0C6D8A7B13')" -eq 2
ca=$(tbl CustomAction | awk -F'\t' '$1 == "WriteConfig"')
check_eq "the config action: deferred, not impersonated, an installed exe (3090)" 3090 \
	"$(awk -F'\t' '{ print $2 }' <<<"$ca")"
for p in REMOTE_LISTEN TLS_CERT TLS_KEY TLS_CLIENT_CA ADMINS READERS MARK AGENT_ID; do
	check "the config action passes [$p]" grep -qF "[$p]" <<<"$ca"
done
seq=$(tbl InstallExecuteSequence)
files=$(awk -F'\t' '$1 == "InstallFiles" { print $3 }' <<<"$seq")
write=$(awk -F'\t' '$1 == "WriteConfig" { print $3 }' <<<"$seq")
start=$(awk -F'\t' '$1 == "StartServices" { print $3 }' <<<"$seq")
check "the config is written after the files ($files) and before the service starts ($start): $write" \
	[ "$files" -lt "$write" -a "$write" -lt "$start" ]
check_eq "only on a first install: an upgrade keeps the config" \
	"NOT Installed AND NOT WIX_UPGRADE_DETECTED" \
	"$(awk -F'\t' '$1 == "WriteConfig" { print $2 }' <<<"$seq")"
stop=$(tbl CustomAction | awk -F'\t' '$1 == "StopAgent" { print $2, $4 }')
check_eq "the stop action: deferred, not impersonated, return ignored, an installed exe (3154)" \
	"3154 --stop-service" "$stop"
check_eq "it runs on removal (an upgrade's too), before StopServices and RemoveFiles" \
	"REMOVE~=\"ALL\" 1890 1900 3500" \
	"$(awk -F'\t' '$1 == "StopAgent" { c = $2; s = $3 } $1 == "StopServices" { t = $3 } $1 == "RemoveFiles" { r = $3 } END { print c, s, t, r }' <<<"$seq")"
check_eq "property defaults" "MARK 0x1
AGENT_ID default" "$(tbl Property | grep -E '^(MARK|AGENT_ID)' | tr '\t' ' ')"

# --- Under wine's msiexec, in the client namespace. -----------------------------
setup_net
export WINEPREFIX="$WORK/prefix" WINEDEBUG=-all
trap 'rc=$?; in_c wineserver -k 2>/dev/null; (exit $rc); cleanup' EXIT
in_c bash -c "$(declare -f win_boot); win_boot"
# wine ends its system processes (the SCM among them) when no program of its
# own runs: keep one running while the service comes and goes.
in_c wine cmd /c "ping -n 600 127.0.0.1 >nul" >/dev/null 2>&1 &
PIDS+=($!)

C="$WINEPREFIX/drive_c/certs" # C:\certs
mkdir -p "$C"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=ca" \
	-keyout "$C/ca.key" -out "$C/ca.pem" 2>/dev/null
for leaf in server:IP:127.0.0.1 admin:DNS:console-admin; do
	name=${leaf%%:*}
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
		-keyout "$C/$name.key" -out "$C/$name.csr" 2>/dev/null
	printf 'subjectAltName=%s\n' "${leaf#*:}" >"$C/$name.ext"
	openssl x509 -req -in "$C/$name.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
		-days 2 -extfile "$C/$name.ext" -out "$C/$name.pem" 2>/dev/null
done

PF="$WINEPREFIX/drive_c/Program Files/redirect-agent"
CONF="$WINEPREFIX/drive_c/ProgramData/redirect-agent/agent.conf" # msiexec's CommonAppDataFolder
CTL='C:\Program Files\redirect-agent\redirectctl.exe'
# msiexec ARGS...: wine's msiexec, its log and output in $WORK/msi.*; its exit status (wine
# passes only the low 8 bits of Windows' exit code: 1627 arrives as 91).
msiexec() { in_c wine msiexec "$@" /qn /l*v "$(winepath -w "$WORK/msi.log")" >"$WORK/msi.out" 2>&1; }
sc_state() { in_c wine sc query redirect-agent 2>/dev/null | tr -d '\r' | awk '/STATE/ { print $4 }' || true; }
wait_state() {
	local st=""
	for _ in $(seq 100); do st=$(sc_state); [ "$st" == "$1" ] && return 0; sleep 0.2; done
	echo "service state: '$st'" >&2
	return 1
}
service_present() { in_c wine sc query redirect-agent >/dev/null 2>&1; }
# The service's own %ProgramData% (wine gives services C:\users\Public, not
# C:\ProgramData): where its endpoint file, database and log are.
data_dir() { dirname "$(find "$WINEPREFIX/drive_c" -path '*/redirect-agent/agent.sock' | head -n 1)"; }
# ctl ARGS...: the installed redirectctl.exe on the service's local endpoint; output in $WORK/ctl.out.
ctl() {
	local sock
	sock=$(winepath -w "$(data_dir)/agent.sock")
	in_c wine "$CTL" --socket "$sock" "$@" >"$WORK/ctl.out" 2>&1
}
wait_ctl() { # until the service answers status (20 s at most)
	for _ in $(seq 100); do ctl status && grep -q '^health ' "$WORK/ctl.out" && return 0; sleep 0.2; done
	cat "$WORK/ctl.out" >&2
	return 1
}
installed_versions() {
	in_c wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s 2>/dev/null |
		tr -d '\r' | awk '/DisplayName .* redirect-agent$/ { n = 1; next } n && /DisplayVersion/ { print $3; n = 0 }' |
		sort | tr '\n' ' ' | sed 's/ $//'
}
PROPS=(REMOTE_LISTEN=127.0.0.1:50051 'TLS_CERT=C:\certs\server.pem' 'TLS_KEY=C:\certs\server.key'
	'TLS_CLIENT_CA=C:\certs\ca.pem' ADMINS=console-admin MARK=0x4 AGENT_ID=branch-17)

# 1. A bad property: the deferred config action fails and the install rolls back.
rc=0
msiexec /i "$(winepath -w "$MSI")" "${PROPS[@]/MARK=0x4/MARK=lots}" || rc=$?
check_eq "MARK=lots: msiexec fails (1627, seen as 91)" 91 "$rc"
check "with the agent's reason" grep -q "\[proxy\] mark: 'lots' is not a number" "$WORK/msi.out"
check "rolled back: no executables" not test -e "$PF/redirect-agent.exe"
check "no service" not service_present
check "no config" not test -e "$CONF"
check_eq "not registered as installed" "" "$(installed_versions)"

# 2. The silent fleet install.
rc=0
msiexec /i "$(winepath -w "$MSI")" "${PROPS[@]}" || rc=$?
check_eq "msiexec /i with the properties exits 0" 0 "$rc"
check "both executables under Program Files" test -s "$PF/redirect-agent.exe" -a -s "$PF/redirectctl.exe"
check "installed executables are the built ones" cmp -s "$PF/redirect-agent.exe" "$STAGE/redirect-agent.exe"
check "the service is RUNNING" wait_state RUNNING
check "its command line: --service and the config" grep -qF -- '--service --config' \
	<<<"$(in_c wine reg query 'HKLM\System\CurrentControlSet\Services\redirect-agent' /v ImagePath 2>/dev/null)"
for want in "remote_listen = 127.0.0.1:50051" 'tls_cert = C:\certs\server.pem' \
	'tls_client_ca = C:\certs\ca.pem' "admins = console-admin" "mark = 0x4" "agent_id = branch-17"; do
	check "config has: $want" grep -qxF "$want" <(tr -d '\r' <"$CONF")
done
check "a property not given (READERS) keeps the default" not grep -q "^readers" "$CONF"
check "redirectctl.exe status answers on the local endpoint" wait_ctl
check "as the agent the properties named, with their mark" \
	grep -q '^agent      branch-17' "$WORK/ctl.out"
check "mark 0x4" grep -q 'mark 0x4' "$WORK/ctl.out"
check "health degraded: wine has no filter engine, nothing is redirected" \
	grep -q '^health     degraded' "$WORK/ctl.out"
uuid=$(awk '/^uuid/ { print $2 }' "$WORK/ctl.out")
tls_status() {
	in_c wine "$CTL" --target 127.0.0.1:50051 --ca 'C:\certs\ca.pem' --cert 'C:\certs\admin.pem' \
		--key 'C:\certs\admin.key' status >"$WORK/tls.out" 2>&1
}
check "redirectctl.exe over TLS on the remote listener the properties configured" tls_status
check "the same agent there" grep -q '^agent      branch-17' "$WORK/tls.out"
echo '{"rules": []}' >"$WORK/policy.json"
check "a policy set on the local endpoint (to survive the upgrade)" \
	ctl policy set "$(winepath -w "$WORK/policy.json")"
conf_sum=$(sha256sum <"$CONF")
check_eq "registered: version 0.1.0" 0.1.0 "$(installed_versions)"

# 3. The major upgrade, without properties: config, database and policy kept.
rc=0
msiexec /i "$(winepath -w "$WORK/redirect-agent-0.2.0.msi")" || rc=$?
check_eq "msiexec /i of 0.2.0 exits 0" 0 "$rc"
check_eq "0.1.0 replaced by 0.2.0" 0.2.0 "$(installed_versions)"
check "the service is RUNNING again" wait_state RUNNING
check "and answers" wait_ctl
check_eq "the config is unchanged" "$conf_sum" "$(sha256sum <"$CONF")"
check_eq "the same agent (the database kept its uuid)" "$uuid" \
	"$(awk '/^uuid/ { print $2 }' "$WORK/ctl.out")"
check "its policy kept: version 1, by the local admin" ctl policy get
check "says so" grep -q '^version 1, set .* by local admin' "$WORK/ctl.out"
log="$(data_dir)/agent.log"
check_eq "the log: two starts and a clean stop between them" 2 "$(grep -c 'started:' "$log")"

# 4. Uninstall.
data=$(data_dir)
rc=0
msiexec /x "$(winepath -w "$WORK/redirect-agent-0.2.0.msi")" || rc=$?
check_eq "msiexec /x exits 0" 0 "$rc"
check "msiexec ran the stop action" \
	grep -qa 'StopAgent' "$WORK/msi.log"
check "the service is gone" not service_present
check "the executables are gone" not test -e "$PF/redirect-agent.exe"
check "and their folder" not test -e "$PF"
check_eq "no longer registered" "" "$(installed_versions)"
check "the agent stopped cleanly: its endpoint file is gone" not test -e "$data/agent.sock"
check "the data stays: config" test -s "$CONF"
check "and database" test -s "$data/agent.db"
finish
