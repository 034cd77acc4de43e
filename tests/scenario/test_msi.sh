#!/usr/bin/env bash
# The Windows installer's tables, built with wixl from a staging folder (the
# Windows executables cannot be linked here: placeholders stand in), checked
# with msiinfo; and the install-time properties' path into the agent's
# config, by running the MSI's own custom-action command line through the
# agent with the properties substituted as msiexec would.
source "$(dirname "$0")/lib.sh"

STAGE="$WORK/stage"
mkdir -p "$STAGE"
echo placeholder >"$STAGE/redirect-agent.exe"
echo placeholder >"$STAGE/redirectctl.exe"
(cd "$STAGE" && wixl -a x64 -D Version=0.1.0 -o "$WORK/redirect-agent.msi" \
	"$SRCDIR/deploy/windows/redirect-agent.wxs" 2>"$WORK/wixl.err")
check "wixl built the MSI" test -s "$WORK/redirect-agent.msi"
tbl() { msiinfo export "$WORK/redirect-agent.msi" "$1" | tail -n +4 | tr -d '\r'; } # exports are CRLF

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
check_eq "property defaults" "MARK 0x1
AGENT_ID default" "$(tbl Property | grep -E '^(MARK|AGENT_ID)' | tr '\t' ' ')"

# A silent install: msiexec /i redirect-agent.msi /qn REMOTE_LISTEN=... and so on.
declare -A PROP=([REMOTE_LISTEN]=0.0.0.0:50051 [TLS_CERT]=/certs/agent.pem
	[TLS_KEY]=/certs/agent.key [TLS_CLIENT_CA]=/certs/ca.pem [ADMINS]=console-admin
	[READERS]="" [MARK]=0x4 [AGENT_ID]=branch-17 [CommonAppDataFolder]="$WORK/ProgramData/")
mkdir -p "$WORK/ProgramData/redirect-agent"
cmdline=$(awk -F'\t' '{ print $4 }' <<<"$ca" | sed 's|\\|/|g')
for k in "${!PROP[@]}"; do cmdline=${cmdline//"[$k]"/${PROP[$k]}}; done
eval "set -- $cmdline"
check "the agent wrote the config from the properties" "$AGENT" "$@"
CONF="$WORK/ProgramData/redirect-agent/agent.conf"
check "the written config is valid" "$AGENT" --check-config --config "$CONF"
for want in "remote_listen = 0.0.0.0:50051" "tls_client_ca = /certs/ca.pem" "admins = console-admin" \
	"mark = 0x4" "agent_id = branch-17"; do
	check "config has: $want" grep -qxF "$want" "$CONF"
done
check "an empty property (READERS) keeps the default" not grep -q "^readers" "$CONF"
# A bad property fails the install (Return=check) and writes nothing.
PROP[MARK]=lots
cmdline=$(awk -F'\t' '{ print $4 }' <<<"$ca" | sed 's|\\|/|g')
for k in "${!PROP[@]}"; do cmdline=${cmdline//"[$k]"/${PROP[$k]}}; done
rm -f "$CONF"
eval "set -- $cmdline"
rc=0; "$AGENT" "$@" 2>"$WORK/err" || rc=$?
check_eq "a bad MARK fails the config action (78)" 78 "$rc"
check "saying which" grep -q "\[proxy\] mark: 'lots' is not a number" "$WORK/err"
check "and writes nothing" not test -e "$CONF"
finish
