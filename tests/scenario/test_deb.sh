#!/usr/bin/env bash
# The .deb: built by CPack from this build, installed on this machine (root),
# then removed and purged: files, conffile, group, unit enablement and state
# come and go as a well-made Debian package's do.
source "$(dirname "$0")/lib.sh"

BUILD=$(cd "$(dirname "$AGENT")/.." && pwd)
(cd "$BUILD" && cpack -G DEB -B "$WORK/pkg" >/dev/null)
DEB=$(ls "$WORK"/pkg/redirect-agent_*_amd64.deb)
check "a .deb was built" test -f "$DEB"
deps=$(dpkg-deb -f "$DEB" Depends)
for lib in libgrpc29 libuv1 libnftables1 libsqlite3-0 libsystemd0; do
	check "Depends computed by shlibdeps: $lib" grep -q "$lib" <<<"$deps"
done
check_eq "the config is a conffile" "/etc/redirect-agent/agent.conf" \
	"$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)"

purge() { dpkg --purge redirect-agent >/dev/null 2>&1 || true; }
trap 'purge; cleanup' EXIT
purge
dpkg -i "$DEB" >/dev/null
check "installed: /usr/sbin/redirect-agent runs" /usr/sbin/redirect-agent --version
check "installed: /usr/bin/redirectctl" test -x /usr/bin/redirectctl
check "installed: the unit" test -f /usr/lib/systemd/system/redirect-agent.service
check "installed: the config" test -f /etc/redirect-agent/agent.conf
check "postinst created the redirect-admin group" getent group redirect-admin
check "postinst enabled the unit" test -L /etc/systemd/system/multi-user.target.wants/redirect-agent.service

# State the agent would leave: the database directory.
mkdir -p /var/lib/redirect-agent && touch /var/lib/redirect-agent/agent.db
echo "; local edit" >>/etc/redirect-agent/agent.conf
dpkg -r redirect-agent >/dev/null
check "remove: binaries gone" not test -e /usr/sbin/redirect-agent
check "remove: the edited config stays" grep -q "local edit" /etc/redirect-agent/agent.conf
check "remove: the database stays" test -f /var/lib/redirect-agent/agent.db
dpkg --purge redirect-agent >/dev/null
check "purge: config gone" not test -e /etc/redirect-agent
check "purge: state gone" not test -e /var/lib/redirect-agent
check "purge: group gone" not getent group redirect-admin
check "purge: unit enablement gone" not test -e /etc/systemd/system/multi-user.target.wants/redirect-agent.service
check_eq "purge: dpkg knows nothing of it" "" "$(dpkg -l redirect-agent 2>/dev/null | grep '^[a-z][a-z] ' || true)"
finish
