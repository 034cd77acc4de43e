#!/usr/bin/env bash
# Install every Debian 12 package that building, running and testing
# redirect-agent needs. Idempotent: packages already present are skipped, and
# apt is not touched at all when nothing is missing. Run as root.
#
#   deploy/install-deps.sh          build + run + tests
#   deploy/install-deps.sh --bench  also the benchmark's peers (HAProxy, iperf3, ab)
set -euo pipefail

packages=(
	# build
	build-essential cmake pkg-config
	libuv1-dev libsqlite3-dev libnftables-dev libmnl-dev libinih-dev
	libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libjansson-dev libsystemd-dev libssl-dev
	libnats-dev
	# tests (Debian's python3 with grpcio: the console test)
	libcmocka-dev nftables iproute2 curl sqlite3 python3 procps util-linux openssl
	python3-grpcio python3-grpc-tools systemd
	# the forward test's CONNECT proxy (its package also starts one on localhost:8888)
	tinyproxy
	# the fleet tests' NATS server (JetStream built in); each test starts its own
	nats-server
	# packaging (cpack -G DEB runs dpkg-shlibdeps; the MSI is built with wixl)
	dpkg-dev adduser wixl msitools
	# Windows parts: cross-compiled, their tests run under wine
	gcc-mingw-w64-x86-64 wine wine64
	# and the Windows libraries, built from Debian's sources by
	# deploy/windows/build-deps.sh (posix-thread C++ compiler, mingw zlib,
	# re2's Unicode tables, SQLite's generator, apt-get source's keys)
	g++-mingw-w64-x86-64 libz-mingw-w64-dev make perl unicode-data tcl debian-archive-keyring
)
if [ "${1:-}" = "--bench" ]; then
	packages+=(haproxy iperf3 apache2-utils util-linux)
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
