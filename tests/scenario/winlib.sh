# shellcheck shell=bash
# Shared by the Windows scenario tests (test_windows.sh, test_msi.sh): sourced.
#
# win_build DIR: the static dependency set from deploy/windows/build-deps.sh
# (cached outside the tree; from nothing it builds for about 16 minutes,
# which tests/run-all.sh pays before the tests), then the whole Windows tree
# cross-built against it with -Werror in DIR. DIR is kept between the tests
# of one ctest run ($WINBUILD), so the second test only checks it is current.
# Sets WIN_DEPS (the prefix). Returns non-zero, with the log shown, on failure.
win_build() {
	local dir=$1 log
	log=$(mktemp)
	if ! WIN_DEPS=$(bash "$SRCDIR/deploy/windows/build-deps.sh" 2>"$log" | tail -n 1) ||
		[ ! -f "$WIN_DEPS/lib/pkgconfig/grpc.pc" ]; then
		echo "deploy/windows/build-deps.sh failed:" >&2
		tail -n 40 "$log" >&2
		rm -f "$log"
		return 1
	fi
	if ! { cmake -S "$SRCDIR" -B "$dir" -DWERROR=ON -DRA_WIN_DEPS="$WIN_DEPS" \
		-DCMAKE_TOOLCHAIN_FILE="$SRCDIR/deploy/windows/toolchain-mingw64.cmake" &&
		nice cmake --build "$dir" -j2; } >"$log" 2>&1; then
		tail -n 60 "$log" >&2
		rm -f "$log"
		return 1
	fi
	rm -f "$log"
}

# win_boot: a fresh wine prefix ($WINEPREFIX), its first boot finished.
win_boot() {
	wineboot -i >/dev/null 2>&1 || true
	# Let the first boot finish (its processes end), or the SCM is still busy.
	timeout 120 wineserver -w || true
}

# win_imports EXE: the DLLs a PE file imports, lower case, one line, sorted.
win_imports() {
	x86_64-w64-mingw32-objdump -p "$1" | awk '/DLL Name:/ { print tolower($3) }' | sort -u |
		tr '\n' ' ' | sed 's/ $//'
}
