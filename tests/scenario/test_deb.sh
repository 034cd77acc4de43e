#!/usr/bin/env bash
# The .deb: built by CPack from this build, installed on this machine (root),
# then removed and purged: files, conffile, group, unit enablement and state
# come and go as a well-made Debian package's do. Then an upgrade from an
# older package with the agent running: it runs on, restarted with the new
# binary, its configuration kept.
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
check "installed: the purge script the README names" test -f /usr/share/redirect-agent/purge.sql
check_eq "the config is 0640 (it may hold a NATS password)" 640 "$(stat -c %a /etc/redirect-agent/agent.conf)"
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

# An upgrade with the agent running. These machines have no systemd PID 1:
# in a mount namespace of their own, /run/systemd/system exists (a tmpfs over
# /run) and systemctl and deb-systemd-invoke are stand-ins that log what the
# maintainer scripts ask and keep the service's state in a file.
(cd "$BUILD" && cpack -G DEB -B "$WORK/old" -D CPACK_PACKAGE_VERSION=0.0.1 >/dev/null)
OLD=$(ls "$WORK"/old/redirect-agent_0.0.1_amd64.deb)
mkdir -p "$WORK/stubs"
cat >"$WORK/stubs/deb-systemd-invoke" <<EOF
#!/bin/sh
echo "\$*" >>"$WORK/systemd.log"
case "\$1" in
start | restart) touch "$WORK/active" ;;
stop) rm -f "$WORK/active" ;;
try-restart) [ -e "$WORK/active" ] && echo "restarted" >>"$WORK/systemd.log" ;;
esac
exit 0
EOF
cat >"$WORK/stubs/systemctl" <<EOF
#!/bin/sh
echo "systemctl \$*" >>"$WORK/systemd.log"
# what systemd's preset does for an enabled unit: its WantedBy link
case "\$*" in
*" preset redirect-agent.service")
	mkdir -p /etc/systemd/system/multi-user.target.wants
	ln -sf /lib/systemd/system/redirect-agent.service \
		/etc/systemd/system/multi-user.target.wants/redirect-agent.service ;;
esac
exit 0
EOF
chmod +x "$WORK/stubs/deb-systemd-invoke" "$WORK/stubs/systemctl"
as_systemd() { # as_systemd COMMAND...: dpkg with a systemd to talk to
	unshare -m sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && exec "$@"' \
		sh env PATH="$WORK/stubs:$PATH" "$@"
}
as_systemd env REDIRECT_AGENT_START=yes dpkg -i "$OLD" >/dev/null
check "0.0.1 installed and started (REDIRECT_AGENT_START=yes)" grep -qx "start redirect-agent.service" "$WORK/systemd.log"
echo "; kept across the upgrade" >>/etc/redirect-agent/agent.conf
: >"$WORK/systemd.log"
as_systemd dpkg -i "$DEB" >/dev/null
check "upgrade: prerm did not stop it" not grep -q "^stop" "$WORK/systemd.log"
check "postinst restarted it with the new files (it was running)" grep -qx "restarted" "$WORK/systemd.log"
check "running afterwards" test -e "$WORK/active"
check_eq "the new version is installed" "$(dpkg-deb -f "$DEB" Version)" \
	"$(dpkg-query -W -f '${Version}' redirect-agent)"
check "the edited config is kept" grep -q "kept across the upgrade" /etc/redirect-agent/agent.conf
check "the unit is still enabled" test -L /etc/systemd/system/multi-user.target.wants/redirect-agent.service
: >"$WORK/systemd.log"
as_systemd dpkg -r redirect-agent >/dev/null
check "remove stops it" grep -qx "stop redirect-agent.service" "$WORK/systemd.log"
check "and it is not running" not test -e "$WORK/active"
# Stopped before an upgrade: it stays stopped.
as_systemd dpkg -i "$OLD" >/dev/null
: >"$WORK/systemd.log"
as_systemd dpkg -i "$DEB" >/dev/null
check "an upgrade leaves a stopped agent stopped" not grep -qx "restarted" "$WORK/systemd.log"
purge
finish
