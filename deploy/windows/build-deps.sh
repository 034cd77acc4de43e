#!/usr/bin/env bash
# Cross-build redirect-agent's static Windows (x86_64, mingw-w64) dependency
# set from Debian 12's own source packages, and cache it outside any work tree.
#
#   PREFIX=$(deploy/windows/build-deps.sh | tail -1)
#   PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig pkg-config --static --cflags --libs \
#       grpc gpr libprotobuf-c libuv sqlite3 jansson libssl libcrypto
#
# The last line of stdout is the prefix; everything else goes to stderr, and
# each build step's full output to a log file (shown in part when it fails).
#
# Cache: ${RA_WIN_DEPS_CACHE:-/var/cache/redirect-agent-win-deps}/<16 hex of
# sha256(this script)>. A prefix exists there only once complete (it is built
# in a staging folder and renamed into place last), so a hit costs one hash.
# Editing this script gives a new key, hence a fresh build. Measured on a
# 2-core Debian 12 machine shared with other work: 14 minutes from nothing
# (gRPC 9 of them), 38 MiB of output; a cache hit takes about 0.03 s.
#
# Debian packages this script needs (it checks them, it never installs them;
# deploy/install-deps.sh does). The g++-mingw-w64-x86-64 and
# gcc-mingw-w64-x86-64 packages bring the two *-posix compiler packages:
#   gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix   posix-thread cross compilers
#   binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev          cross binutils, Windows headers/libs
#   libz-mingw-w64-dev    zlib, already built for mingw (copied into the prefix)
#   cmake make pkg-config the build systems and the .pc checks
#   perl                  OpenSSL's Configure, re2's table generator
#   python3 unicode-data  re2's Unicode tables (the +dfsg source lacks them)
#   tcl                   SQLite's amalgamation generator (tclsh)
#   dpkg-dev              dpkg-source, which apt-get source runs to unpack
#   debian-archive-keyring  verifies the private deb-src indexes
# Optional: wine wine64 (wine64 provides the loader): without them the
# final self-test links the probe program but cannot run it.
# Essential packages (coreutils, util-linux's flock, sed, mawk, tar) are
# assumed.
#
# Environment:
#   RA_WIN_DEPS_CACHE   cache root (default /var/cache/redirect-agent-win-deps)
#   RA_WIN_DEPS_JOBS    parallel build jobs (default 2)
#   RA_DEBIAN_MIRROR, RA_DEBIAN_SECURITY_MIRROR
#                       override the mirrors read from the system's apt sources
#   RA_WIN_DEPS_KEEP_FAILED=1
#                       on failure keep the whole build and staging folders
#                       (default: only the logs), to debug a step by hand
#
# nats.c (the NATS C client) and libinih: their source files answer 404 on
# this machine's Debian mirror. The script still asks for them and says what
# it got; the Windows set is then built without NATS (inih is not needed:
# the agent owns its INI tokenizer). See build_nats for what happens if the
# archive ever serves nats.c.
set -euo pipefail

# --- The cache key and the fast path: nothing else runs on a hit. -------------
SELF=$(readlink -f "${BASH_SOURCE[0]}")
KEY=$(sha256sum "$SELF" | cut -c1-16)
CACHE_ROOT=${RA_WIN_DEPS_CACHE:-/var/cache/redirect-agent-win-deps}
PREFIX=$CACHE_ROOT/$KEY
MARKER=.redirect-agent-win-deps-complete
if [ -f "$PREFIX/$MARKER" ]; then
	echo "$PREFIX"
	exit 0
fi

JOBS=${RA_WIN_DEPS_JOBS:-2}
HOST=x86_64-w64-mingw32
CC=$HOST-gcc-posix
CXX=$HOST-g++-posix
AR=$HOST-gcc-ar-posix
RANLIB=$HOST-gcc-ranlib-posix

# Progress lines carry the seconds since the build started.
say() {
	if [ -n "${T0:-}" ]; then
		echo "build-deps: [$(($(date +%s) - T0))s] $*" >&2
	else
		echo "build-deps: $*" >&2
	fi
}
die() { say "error: $*"; exit 1; }

# --- Required packages: name every missing one, install none. -----------------
REQUIRED=(gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64
	mingw-w64-x86-64-dev libz-mingw-w64-dev cmake make pkg-config perl python3 unicode-data
	tcl dpkg-dev debian-archive-keyring)
missing=()
for p in "${REQUIRED[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	die "missing Debian packages: ${missing[*]} (install them, e.g. with deploy/install-deps.sh)"
fi
for t in "$CC" "$CXX" "$AR" "$RANLIB"; do
	command -v "$t" >/dev/null || die "$t not found on PATH"
done

# --- One builder per key at a time; a second waits, then takes the hit. -------
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.$KEY.lock"
if ! flock -n 9; then
	say "another run is building $KEY: waiting for it"
	flock 9
fi
if [ -f "$PREFIX/$MARKER" ]; then
	echo "$PREFIX"
	exit 0
fi

# Staging prefix beside the final one (same file system, so the last rename is
# atomic). Its name is fixed, not random: the few paths that get compiled in
# (OpenSSL's ENGINESDIR) are then the same on every run. A leftover from a
# killed run is ours to remove, since we hold this key's lock.
STAGE=$CACHE_ROOT/.staging-$KEY
rm -rf "$STAGE"
# A prefix folder without its marker is not ours to trust: rebuild it.
rm -rf "$PREFIX"
mkdir -p "$STAGE/lib/pkgconfig" "$STAGE/include"

BUILD=$(mktemp -d "${TMPDIR:-/tmp}/ra-win-deps.XXXXXX")
LOGS=$BUILD/logs
mkdir -p "$LOGS"
finished=no
cleanup() {
	if [ "$finished" != yes ] && [ "${RA_WIN_DEPS_KEEP_FAILED:-0}" = 1 ]; then
		say "failed; kept $BUILD and $STAGE"
		return
	fi
	rm -rf "$STAGE"
	if [ "$finished" = yes ]; then
		rm -rf "$BUILD"
	else
		# Keep only the logs of a failed run (the build tree is over a GiB).
		local keep
		keep=$(mktemp -d "${TMPDIR:-/tmp}/ra-win-deps-logs.XXXXXX")
		cp -r "$LOGS/." "$keep/" 2>/dev/null || true
		rm -rf "$BUILD"
		say "failed; logs kept in $keep"
	fi
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap cleans up (a
# signal waits for the step running in the foreground to end).
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# run STEP CMD...: run a command niced, its output into logs/STEP.log.
run() {
	local step=$1
	shift
	if ! nice -n 19 "$@" >>"$LOGS/$step.log" 2>&1; then
		say "step '$step' failed: $*"
		tail -n 40 "$LOGS/$step.log" >&2
		exit 1
	fi
}

# Build paths must not leak into the binaries (gRPC asserts print __FILE__):
# map the random build folder to a fixed name, for byte-stable output.
MAPFLAG="-ffile-prefix-map=$BUILD=/build"

T0=$(date +%s)
say "building into $PREFIX (key $KEY), work in $BUILD"

# --- 1. Sources from Debian's archive, without touching the system's apt. -----
# A private APT_CONFIG: its own sources.list with deb-src lines only, no
# sources.list.d parts, its own lists and caches. The system's apt.conf.d
# settings (proxies and the like) still apply.
detect_mirrors() {
	local files=() f
	[ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
	for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && files+=("$f")
	done
	[ ${#files[@]} -gt 0 ] || return 0
	# Prints "main <uri>" for the suite bookworm and "security <uri>" for
	# bookworm-security, from one-line (.list) and deb822 (.sources) files.
	awk '
	function emit(uri, suite) {
		sub(/\/+$/, "", uri)
		if (uri !~ /^https?:\/\//) return
		if (suite == "bookworm" && main == "") main = uri
		if (suite == "bookworm-security" && sec == "") sec = uri
	}
	function flush(   n, m, u, s, i, j) {
		if (types ~ /deb/ && enabled != "no") {
			n = split(uris, u, " "); m = split(suites, s, " ")
			for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) emit(u[i], s[j])
		}
		types = ""; uris = ""; suites = ""; enabled = ""
	}
	FNR == 1 { flush() }
	FILENAME ~ /\.sources$/ {
		if ($0 ~ /^[ \t]*$/) { flush(); next }
		if ($0 ~ /^[ \t]*#/) next
		k = tolower($1); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
		if (k == "types:") types = v
		else if (k == "uris:") uris = v
		else if (k == "suites:") suites = v
		else if (k == "enabled:") enabled = tolower(v)
		next
	}
	/^[ \t]*deb(-src)?[ \t]/ {
		line = $0; gsub(/\[[^]]*\]/, "", line)
		n = split(line, f, " ")
		if (n >= 3) emit(f[2], f[3])
	}
	END { flush(); if (main != "") print "main " main; if (sec != "") print "security " sec }
	' "${files[@]}"
}
MIRROR=${RA_DEBIAN_MIRROR:-}
SEC_MIRROR=${RA_DEBIAN_SECURITY_MIRROR:-}
while read -r kind uri; do
	case $kind in
	main) [ -n "$MIRROR" ] || MIRROR=$uri ;;
	security) [ -n "$SEC_MIRROR" ] || SEC_MIRROR=$uri ;;
	esac
done < <(detect_mirrors)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SEC_MIRROR=${SEC_MIRROR:-${MIRROR%/debian}/debian-security}
say "Debian mirror $MIRROR, security $SEC_MIRROR"

APTDIR=$BUILD/apt
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$APTDIR/sources.list" <<EOF
deb-src [signed-by=$KEYRING] $MIRROR bookworm main
deb-src [signed-by=$KEYRING] $MIRROR bookworm-updates main
deb-src [signed-by=$KEYRING] $SEC_MIRROR bookworm-security main
EOF
# APT::Sandbox::User root: the downloads land in our private 0700 temp
# folder, which apt's _apt user cannot enter (apt would fall back to root
# anyway, with a warning per package).
cat >"$APTDIR/apt.conf" <<EOF
Dir::Etc::SourceList "$APTDIR/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "$APTDIR/lists";
Dir::Cache "$APTDIR/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Sandbox::User "root";
EOF
export APT_CONFIG=$APTDIR/apt.conf
run apt-update apt-get update

# Debian versions of a source package, newest first (dpkg's ordering).
versions_newest_first() {
	local v sorted=() i j tmp
	while read -r v; do sorted+=("$v"); done < <(apt-cache showsrc --only-source "$1" 2>/dev/null |
		awk '/^Version:/ { print $2 }' | sort -u)
	for ((i = 1; i < ${#sorted[@]}; i++)); do
		for ((j = i; j > 0; j--)); do
			if dpkg --compare-versions "${sorted[j]}" gt "${sorted[j - 1]}"; then
				tmp=${sorted[j]}; sorted[j]=${sorted[j - 1]}; sorted[j - 1]=$tmp
			else
				break
			fi
		done
	done
	[ ${#sorted[@]} -eq 0 ] || printf '%s\n' "${sorted[@]}"
}

# fetch PKG: download and unpack (Debian patches applied) the newest version
# of PKG whose files all download, into $SRC/PKG; print the version. The
# mirror here lacks some files (bookworm-security's openssl .dsc answered 404
# while its orig tarball did not), so an older complete version is the
# fallback. apt checks every file against the signed Sources index.
SRC=$BUILD/src
mkdir -p "$SRC"
fetch() {
	local pkg=$1 v dir=$SRC/$1 log=$LOGS/source-$1.log
	for v in $(versions_newest_first "$pkg"); do
		rm -rf "$dir" && mkdir -p "$dir"
		echo "== apt-get source $pkg=$v" >>"$log"
		if (cd "$dir" && apt-get source "$pkg=$v") >>"$log" 2>&1; then
			echo "$v"
			return 0
		fi
		grep -E '^(E|Err):' "$log" | tail -n 4 | sed "s/^/build-deps:   $pkg $v: /" >&2 || true
	done
	rm -rf "$dir"
	return 1
}
# srcdir PKG: the unpacked source tree of PKG.
srcdir() {
	local d
	d=$(find "$SRC/$1" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	[ -n "$d" ] || die "no unpacked source for $1"
	echo "$d"
}

VERSIONS=$BUILD/VERSIONS
: >"$VERSIONS"
for pkg in openssl abseil c-ares re2 grpc protobuf-c sqlite3 libuv1 jansson; do
	v=$(fetch "$pkg") || die "could not download the Debian source package $pkg (see $LOGS/source-$pkg.log)"
	say "source $pkg $v"
	echo "$pkg $v" >>"$VERSIONS"
done
case $(grep '^grpc ' "$VERSIONS") in
"grpc 1.51."*) ;;
*) say "warning: gRPC is not 1.51.x; the flags below were verified with 1.51.1" ;;
esac
# Optional ones: nats.c (the NATS C client) and libinih.
HAVE_NATS=no
if v=$(fetch nats.c); then
	HAVE_NATS=yes
	say "source nats.c $v"
	echo "nats.c $v" >>"$VERSIONS"
else
	say "nats.c: no complete source on $MIRROR: the Windows set is built WITHOUT NATS"
	echo "nats.c absent (source files 404 on $MIRROR)" >>"$VERSIONS"
fi
if v=$(fetch libinih); then
	say "libinih $v downloaded (not built: the agent owns its INI tokenizer)"
else
	say "libinih: no complete source (not needed: the agent owns its INI tokenizer)"
fi

# --- 2. The cross toolchain. ---------------------------------------------------
# Posix-thread mingw compilers: with the win32-thread ones abseil fails on
# std::mutex and gRPC's link misses __once_proxy and pthread_key_create.
TOOLCHAIN=$BUILD/toolchain.cmake
cat >"$TOOLCHAIN" <<EOF
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER $CC)
set(CMAKE_CXX_COMPILER $CXX)
set(CMAKE_RC_COMPILER $HOST-windres)
set(CMAKE_AR $(command -v "$AR") CACHE FILEPATH "")
set(CMAKE_RANLIB $(command -v "$RANLIB") CACHE FILEPATH "")
# Look for target libraries and packages only in our prefix and mingw's root.
set(CMAKE_FIND_ROOT_PATH $STAGE /usr/$HOST)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
EOF
# Release at -O2 (Debian's level; CMake's Release default is -O3, slower to
# build for no need here). Every C++ library gets the same standard: abseil's ABI (absl::string_view,
# optional, ...) follows the standard it was compiled with. 17 is Debian's.
CMAKE_COMMON=(-G "Unix Makefiles" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DCMAKE_BUILD_TYPE=Release
	-DCMAKE_INSTALL_PREFIX="$STAGE" -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_INSTALL_INCLUDEDIR=include
	-DBUILD_SHARED_LIBS=OFF -DCMAKE_CXX_STANDARD=17 -DCMAKE_CXX_STANDARD_REQUIRED=ON
	-DCMAKE_C_FLAGS="$MAPFLAG" -DCMAKE_CXX_FLAGS="$MAPFLAG"
	-DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG")
unset CFLAGS CXXFLAGS LDFLAGS CPPFLAGS PKG_CONFIG_PATH
# cmake_build NAME SRC TARGET... [-- EXTRA CMAKE ARGS]: configure and build.
cmake_build() {
	local name=$1 src=$2
	shift 2
	local targets=() extra=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do targets+=(--target "$1"); shift; done
	[ $# -gt 0 ] && shift
	extra=("$@")
	run "$name" cmake -S "$src" -B "$BUILD/b-$name" "${CMAKE_COMMON[@]}" "${extra[@]}"
	run "$name" cmake --build "$BUILD/b-$name" -j "$JOBS" "${targets[@]}"
}

# --- 3. zlib: Debian's mingw build, copied so the prefix stands alone. ---------
cp /usr/$HOST/lib/libz.a "$STAGE/lib/"
cp /usr/$HOST/include/zlib.h /usr/$HOST/include/zconf.h "$STAGE/include/"
ZVER=$(dpkg-query -W -f='${Version}' libz-mingw-w64-dev)
echo "libz-mingw-w64-dev $ZVER (binary package)" >>"$VERSIONS"
cat >"$STAGE/lib/pkgconfig/zlib.pc" <<EOF
prefix=$STAGE
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: zlib
Description: zlib compression library (Debian libz-mingw-w64-dev $ZVER)
Version: $(sed -n 's/^#define ZLIB_VERSION "\(.*\)"/\1/p' /usr/$HOST/include/zlib.h)
Libs: -L\${libdir} -lz
Cflags: -I\${includedir}
EOF

# --- 4. OpenSSL (libssl.a, libcrypto.a, their .pc files). ----------------------
say "openssl"
OSSL=$(srcdir openssl)
# CC=gcc-posix: the Makefile prefixes it with the cross prefix, so the C
# library is built by the same compiler as the rest (plain -gcc is win32).
(cd "$OSSL" && run openssl ./Configure mingw64 no-shared no-tests no-module \
	--cross-compile-prefix=$HOST- CC=gcc-posix --prefix="$STAGE" --libdir=lib "$MAPFLAG")
run openssl make -C "$OSSL" -j "$JOBS" build_libs
run openssl make -C "$OSSL" install_dev

# --- 5. c-ares. ----------------------------------------------------------------
say "c-ares"
# Debian's CVE-2023-31130 patch uses INADDRSZ, which only the Unix headers
# define: give it its value (4) for Windows.
cmake_build c-ares "$(srcdir c-ares)" -- -DCARES_STATIC=ON -DCARES_SHARED=OFF \
	-DCARES_BUILD_TOOLS=OFF -DCARES_BUILD_TESTS=OFF -DCMAKE_C_FLAGS="$MAPFLAG -DINADDRSZ=4"
run c-ares cmake --install "$BUILD/b-c-ares"

# --- 6. abseil. ----------------------------------------------------------------
say "abseil"
cmake_build abseil "$(srcdir abseil)" -- -DABSL_PROPAGATE_CXX_STD=ON -DBUILD_TESTING=OFF \
	-DABSL_BUILD_TESTING=OFF -DABSL_ENABLE_INSTALL=ON
run abseil cmake --install "$BUILD/b-abseil"

# --- 7. re2. -------------------------------------------------------------------
say "re2"
RE2=$(srcdir re2)
# Debian's +dfsg tarball drops the generated tables; regenerate them as
# Debian does (REBUILD_TABLES=1), from /usr/share/unicode (unicode-data).
(cd "$RE2" && run re2 sh -c 'perl re2/make_perl_groups.pl > re2/perl_groups.cc')
(cd "$RE2/re2" && run re2 sh -c 'python3 make_unicode_groups.py > unicode_groups.cc')
(cd "$RE2/re2" && run re2 sh -c 'python3 make_unicode_casefold.py > unicode_casefold.cc')
cmake_build re2 "$RE2" -- -DRE2_BUILD_TESTING=OFF
run re2 cmake --install "$BUILD/b-re2"

# --- 8. gRPC core (libgrpc, libgpr, libupb, libaddress_sorting). ---------------
say "grpc (the long one: 5 to 9 minutes on 2 cores)"
GRPC=$(srcdir grpc)
# Every dependency from our prefix ("package"), no protobuf (no codegen, no
# C++ API), static OpenSSL. Only the grpc target is built; its deps follow.
cmake_build grpc "$GRPC" grpc -- \
	-DgRPC_ABSL_PROVIDER=package -DgRPC_CARES_PROVIDER=package -DgRPC_RE2_PROVIDER=package \
	-DgRPC_SSL_PROVIDER=package -DgRPC_ZLIB_PROVIDER=package -DgRPC_PROTOBUF_PROVIDER=none \
	-DgRPC_BUILD_TESTS=OFF -DgRPC_BUILD_CODEGEN=OFF -DgRPC_BUILD_CSHARP_EXT=OFF \
	-DOPENSSL_USE_STATIC_LIBS=ON -DOPENSSL_ROOT_DIR="$STAGE" \
	-DOPENSSL_INCLUDE_DIR="$STAGE/include" -DOPENSSL_CRYPTO_LIBRARY="$STAGE/lib/libcrypto.a" \
	-DOPENSSL_SSL_LIBRARY="$STAGE/lib/libssl.a" \
	-DZLIB_INCLUDE_DIR="$STAGE/include" -DZLIB_LIBRARY="$STAGE/lib/libz.a" \
	-Dabsl_DIR="$STAGE/lib/cmake/absl" -Dc-ares_DIR="$STAGE/lib/cmake/c-ares" \
	-Dre2_DIR="$STAGE/lib/cmake/re2"
# `cmake --install` would want every target; install what we built by hand.
for lib in grpc gpr upb address_sorting; do
	cp "$BUILD/b-grpc/lib$lib.a" "$STAGE/lib/"
done
cp -r "$GRPC/include/grpc" "$STAGE/include/"
cp "$BUILD/b-grpc/libs/opt/pkgconfig/grpc.pc" "$BUILD/b-grpc/libs/opt/pkgconfig/gpr.pc" "$STAGE/lib/pkgconfig/"

# --- 9. protobuf-c (the runtime library only). ---------------------------------
say "protobuf-c"
cmake_build protobuf-c "$(srcdir protobuf-c)/build-cmake" -- -DBUILD_PROTOC=OFF -DBUILD_TESTS=OFF
run protobuf-c cmake --install "$BUILD/b-protobuf-c"
# Its install also makes a host symlink bin/protoc-c -> protoc-gen-c, which
# we did not build: drop it.
rm -rf "${STAGE:?}/bin"

# --- 10. SQLite. -----------------------------------------------------------------
say "sqlite3"
SQL=$(srcdir sqlite3)
# Debian's compile-time options, so the Windows store behaves like the Linux
# one (which uses Debian's libsqlite3). The native configure gets them too:
# the amalgamation's parser is generated with the feature flags.
SQLITE_FLAGS=(-O2 -fno-strict-aliasing -DSQLITE_SECURE_DELETE -DSQLITE_ENABLE_COLUMN_METADATA
	-DSQLITE_ENABLE_FTS3 -DSQLITE_ENABLE_FTS3_PARENTHESIS -DSQLITE_ENABLE_RTREE=1 -DSQLITE_SOUNDEX=1
	-DSQLITE_ENABLE_UNLOCK_NOTIFY -DSQLITE_OMIT_LOOKASIDE=1 -DSQLITE_ENABLE_DBSTAT_VTAB
	-DSQLITE_ALLOW_ROWID_IN_VIEW -DSQLITE_ENABLE_UPDATE_DELETE_LIMIT=1 -DSQLITE_ENABLE_LOAD_EXTENSION
	-DSQLITE_ENABLE_JSON1 -DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_THREADSAFE=1
	-DSQLITE_ENABLE_FTS3_TOKENIZER=1 -DSQLITE_USE_URI=1 -DSQLITE_MAX_SCHEMA_RETRY=25
	-DSQLITE_ENABLE_PREUPDATE_HOOK -DSQLITE_ENABLE_SESSION -DSQLITE_ENABLE_STMTVTAB
	-DSQLITE_MAX_VARIABLE_NUMBER=250000)
# Generating sqlite3.c needs the native tools (lemon, mkkeywordhash, tclsh),
# so configure natively, make only the amalgamation, then cross-compile it.
mkdir -p "$BUILD/b-sqlite3"
(cd "$BUILD/b-sqlite3" && run sqlite3 "$SQL/configure" --disable-tcl CFLAGS="${SQLITE_FLAGS[*]}")
run sqlite3 make -C "$BUILD/b-sqlite3" -j "$JOBS" sqlite3.c
(cd "$BUILD/b-sqlite3" && run sqlite3 "$CC" "${SQLITE_FLAGS[@]}" "$MAPFLAG" -c sqlite3.c -o sqlite3.o)
run sqlite3 $AR rcs "$STAGE/lib/libsqlite3.a" "$BUILD/b-sqlite3/sqlite3.o"
cp "$BUILD/b-sqlite3/sqlite3.h" "$SQL/src/sqlite3ext.h" "$STAGE/include/"
cat >"$STAGE/lib/pkgconfig/sqlite3.pc" <<EOF
prefix=$STAGE
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: SQLite
Description: SQL database engine (amalgamation, Debian's options)
Version: $(sed -n 's/^#define SQLITE_VERSION *"\(.*\)"/\1/p' "$BUILD/b-sqlite3/sqlite3.h")
Libs: -L\${libdir} -lsqlite3
Cflags: -I\${includedir}
EOF

# --- 11. libuv. --------------------------------------------------------------------
say "libuv"
UV=$(srcdir libuv1)
cmake_build libuv "$UV" uv_a -- -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
# The static library is libuv_a.a upstream; install it as libuv.a so that
# `-luv` (and the module name libuv) mean the static library.
cp "$BUILD/b-libuv/libuv_a.a" "$STAGE/lib/libuv.a"
cp -r "$UV/include/." "$STAGE/include/"
# The system libraries are libuv's own list (CMakeLists.txt, if(WIN32)).
cat >"$STAGE/lib/pkgconfig/libuv.pc" <<EOF
prefix=$STAGE
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libuv
Description: multi-platform support library with a focus on asynchronous I/O (static)
Version: $(grep '^libuv1 ' "$VERSIONS" | sed 's/^libuv1 \([0-9.]*\).*/\1/')
Libs: -L\${libdir} -luv
Libs.private: -lpsapi -luser32 -ladvapi32 -liphlpapi -luserenv -lws2_32
Cflags: -I\${includedir}
EOF

# --- 12. jansson. ------------------------------------------------------------------
say "jansson"
cmake_build jansson "$(srcdir jansson)" -- -DJANSSON_BUILD_DOCS=OFF -DJANSSON_EXAMPLES=OFF \
	-DJANSSON_WITHOUT_TESTS=ON -DJANSSON_BUILD_SHARED_LIBS=OFF
run jansson cmake --install "$BUILD/b-jansson"

# --- 13. nats.c, only if the archive served it. --------------------------------------
# Never exercised here (the mirror answers 404): best effort, and a failure
# leaves the set without NATS rather than failing the whole build.
build_nats() {
	local N b=$BUILD/b-nats
	N=$(srcdir nats.c)
	nice -n 19 cmake -S "$N" -B "$b" "${CMAKE_COMMON[@]}" -DNATS_BUILD_STREAMING=OFF \
		-DNATS_BUILD_EXAMPLES=OFF -DBUILD_TESTING=OFF -DNATS_BUILD_LIB_SHARED=OFF \
		-DNATS_BUILD_LIB_STATIC=ON -DNATS_BUILD_WITH_TLS=ON -DOPENSSL_USE_STATIC_LIBS=ON \
		-DOPENSSL_INCLUDE_DIR="$STAGE/include" -DOPENSSL_CRYPTO_LIBRARY="$STAGE/lib/libcrypto.a" \
		-DOPENSSL_SSL_LIBRARY="$STAGE/lib/libssl.a" >>"$LOGS/nats.log" 2>&1 &&
		nice -n 19 cmake --build "$b" -j "$JOBS" --target nats_static >>"$LOGS/nats.log" 2>&1 || return 1
	local lib
	lib=$(find "$b" -name 'libnats_static.a' | head -n 1)
	[ -n "$lib" ] || return 1
	cp "$lib" "$STAGE/lib/libnats.a"
	mkdir -p "$STAGE/include/nats/adapters"
	cp "$N"/src/nats.h "$N"/src/status.h "$N"/src/version.h "$STAGE/include/nats/"
	cp "$N"/src/adapters/*.h "$STAGE/include/nats/adapters/"
	cat >"$STAGE/lib/pkgconfig/libnats.pc" <<EOF
prefix=$STAGE
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libnats
Description: NATS C client (static)
Version: $(grep '^nats.c ' "$VERSIONS" | sed 's/^nats.c \([0-9.]*\).*/\1/')
Requires.private: libssl libcrypto
Libs: -L\${libdir} -lnats
Libs.private: -lws2_32
Cflags: -I\${includedir}
EOF
}
if [ "$HAVE_NATS" = yes ]; then
	say "nats.c (untested path: best effort)"
	if build_nats; then
		say "nats.c built"
	else
		say "nats.c did not build (see $LOGS/nats.log): the set is WITHOUT NATS"
		sed -i 's/^nats.c .*/& (build failed: not installed)/' "$VERSIONS"
	fi
fi

# --- 14. Make the .pc files work for a static mingw link, anywhere. ------------
say "pkg-config files"
PCDIR=$STAGE/lib/pkgconfig
# abseil's Windows .pc files name system libraries bare and quoted
# ("advapi32", "dbghelp", "bcrypt") and before the library that needs them,
# and carry Linux's -latomic wrapper (no libatomic needed or present here).
# Rewrite each Libs line as: -labsl_X, then its system libraries, then
# -lstdc++ (abseil is C++ and callers link with the C driver). These must
# stay on the Libs line: pkgconf 1.8 removes duplicate Libs flags keeping the
# last one (so one -lstdc++ lands after the last abseil library), but repeats
# Libs.private once per dependency path (1,642 times -ladvapi32 for the set).
for f in "$PCDIR"/absl_*.pc; do
	awk '
	/^Libs:/ {
		sub(/-Wl,--push-state,--as-needed -latomic -Wl,--pop-state/, "")
		sys = ""
		while (match($0, /"[A-Za-z0-9_]+"/)) {
			sys = sys " -l" substr($0, RSTART + 1, RLENGTH - 2)
			$0 = substr($0, 1, RSTART - 1) substr($0, RSTART + RLENGTH)
		}
		if ($0 ~ /-labsl_/) $0 = $0 sys " -lstdc++"
		gsub(/[ \t]+/, " ")
		sub(/ $/, "")
	}
	{ print }' "$f" >"$f.new"
	mv "$f.new" "$f"
done
# gRPC's generated grpc.pc: c-ares and zlib as modules (c-ares then brings
# its own system libraries), and gRPC's own Windows libraries
# (_gRPC_BASELIB_LIBRARIES in its CMakeLists.txt) for a static link.
sed -i -e 's/ -lcares -lz$//' -e 's/^Libs.private:.*/Libs.private: -lws2_32 -lcrypt32/' \
	-e 's/^Requires:\(.*\)/Requires:\1\nRequires.private: libcares zlib/' "$PCDIR/grpc.pc"
# Relocatable: every prefix= becomes relative to the .pc file itself, so the
# staging folder can be renamed into place (and the cache moved).
for f in "$PCDIR"/*.pc; do
	sed -i "s|$STAGE|\${pcfiledir}/../..|g" "$f"
done
if grep -l "$STAGE" "$PCDIR"/*.pc >&2; then
	die "staging path left in the .pc files above"
fi

# --- 15. Prove the set: link a probe against everything, run it under wine. -------
say "self-test: link a probe program"
PROBE=$BUILD/probe
mkdir -p "$PROBE"
cat >"$PROBE/probe.c" <<'EOF'
/* Links every library of the set and calls into each. */
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <sqlite3.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <zlib.h>

static int fails;
static void check(int ok, const char *what) {
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (!ok)
		fails++;
}

int main(void) {
	grpc_init();
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	grpc_channel *ch = grpc_channel_create("127.0.0.1:50051", creds, NULL);
	check(ch != NULL, "grpc insecure channel");
	printf("     grpc %s\n", grpc_version_string());
	grpc_channel_destroy(ch);
	grpc_channel_credentials_release(creds);
	grpc_shutdown();

	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_open(":memory:", &db) == SQLITE_OK &&
	         sqlite3_prepare_v2(db, "SELECT sqlite_version(), json_object('a', 1)", -1, &st, NULL) == SQLITE_OK &&
	         sqlite3_step(st) == SQLITE_ROW;
	check(ok, "sqlite3 :memory:");
	if (ok)
		printf("     sqlite %s %s\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	sqlite3_close(db);

	uv_loop_t loop;
	check(uv_loop_init(&loop) == 0 && uv_run(&loop, UV_RUN_NOWAIT) == 0 && uv_loop_close(&loop) == 0,
	      "uv_loop_init/run/close");
	printf("     libuv %s\n", uv_version_string());

	json_t *j = json_pack("{s:i,s:s}", "n", 42, "s", "x");
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	check(text && strcmp(text, "{\"n\":42,\"s\":\"x\"}") == 0, "jansson pack/dump");
	free(text);
	json_decref(j);

	check(protobuf_c_version_number() >= 1000000, "protobuf-c");
	printf("     protobuf-c %s\n", protobuf_c_version());

	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	check(ctx != NULL, "openssl SSL_CTX_new");
	SSL_CTX_free(ctx);
	printf("     %s\n", OpenSSL_version(OPENSSL_VERSION));

	check(zlibVersion()[0] == ZLIB_VERSION[0], "zlib");

	printf("%s\n", fails ? "PROBE FAILED" : "PROBE OK");
	return fails ? 1 : 0;
}
EOF
export PKG_CONFIG_LIBDIR=$PCDIR
MODULES=(grpc gpr libprotobuf-c libuv sqlite3 jansson libssl libcrypto)
run probe pkg-config --exists --print-errors "${MODULES[@]}"
# link_probe NAME MODULE...: link probe.c into NAME.exe with exactly what a
# caller uses: the posix gcc, -static, pkg-config --static; nothing by hand.
link_probe() {
	local name=$1 cflags libs
	shift
	read -ra cflags <<<"$(pkg-config --cflags "$@")"
	read -ra libs <<<"$(pkg-config --static --libs "$@")"
	run probe "$CC" -static -O2 -o "$PROBE/$name.exe" "$PROBE/probe.c" "${cflags[@]}" "${libs[@]}"
	echo "$CC -static -O2 -o $name.exe probe.c ${cflags[*]} ${libs[*]}" >>"$LOGS/probe-link-line.txt"
}
: >"$LOGS/probe-link-line.txt"
link_probe probe "${MODULES[@]}"
# The modules in reverse order too: the flags must not depend on it.
REVERSED=()
for ((i = ${#MODULES[@]} - 1; i >= 0; i--)); do REVERSED+=("${MODULES[i]}"); done
link_probe probe-reversed "${REVERSED[@]}"

if command -v wine >/dev/null; then
	say "self-test: run the probes under wine"
	WP=$(mktemp -d "${TMPDIR:-/tmp}/ra-win-deps-wine.XXXXXX")
	# Output to files, never a pipe: wine's helper processes inherit the
	# program's stdout and would hold a pipe open. 9>&-: wineserver
	# outlives wine and must not inherit our lock.
	rc=0
	(
		exec 9>&-
		export WINEPREFIX=$WP WINEDEBUG=-all
		timeout 300 wineboot -i >"$LOGS/wineboot.log" 2>&1 || true
		timeout 120 wine "$PROBE/probe.exe" >"$LOGS/probe-run.txt" 2>&1
		timeout 120 wine "$PROBE/probe-reversed.exe" >"$LOGS/probe-reversed-run.txt" 2>&1
	) || rc=$?
	WINEPREFIX=$WP timeout 30 wineserver -k >/dev/null 2>&1 || true
	WINEPREFIX=$WP timeout 30 wineserver -w >/dev/null 2>&1 || true
	rm -rf "$WP"
	cat "$LOGS/probe-run.txt" >&2
	if [ $rc -ne 0 ] || ! grep -q 'PROBE OK' "$LOGS/probe-run.txt" ||
		! grep -q 'PROBE OK' "$LOGS/probe-reversed-run.txt"; then
		die "a probe failed under wine (exit $rc)"
	fi
else
	say "self-test: wine not installed: linked, not run"
fi

# --- 16. Record what went in, mark complete, rename into place. ------------------
rm -rf "$STAGE/share/man" # c-ares' manual pages
mkdir -p "$STAGE/share/redirect-agent-win-deps"
{
	echo "# Debian source packages (version) built into this prefix by build-deps.sh $KEY"
	cat "$VERSIONS"
	echo "# mirrors: $MIRROR $SEC_MIRROR"
	echo "# compilers: $($CC --version | head -n 1) / $($CXX --version | head -n 1)"
	echo "# NATS: $([ -f "$STAGE/lib/libnats.a" ] && echo present || echo ABSENT)"
	echo "# probe link line:"
	sed -e "s|$BUILD/probe/||g" -e "s|$STAGE|$PREFIX|g" "$LOGS/probe-link-line.txt"
} >"$STAGE/share/redirect-agent-win-deps/BUILDINFO"
date -u +%Y-%m-%dT%H:%M:%SZ >"$STAGE/$MARKER"
mv -T "$STAGE" "$PREFIX"
finished=yes
[ -f "$PREFIX/lib/libnats.a" ] || say "NOTE: this set has NO NATS client (see $PREFIX/share/redirect-agent-win-deps/BUILDINFO)"
say "done in $(($(date +%s) - T0)) s: $(du -sh "$PREFIX" | cut -f1) in $PREFIX"
echo "$PREFIX"
