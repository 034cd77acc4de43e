#!/usr/bin/env bash
# Set up, build and run every test: unit tests and scenario tests (network
# namespaces, so run as root), first in a -Werror build, then again in an
# AddressSanitizer + UndefinedBehaviorSanitizer build. The benchmark
# (tests/bench/) is not part of this.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
# The Windows tests link against a static dependency set, cached outside the
# tree: built here, once, before the tests (about 16 minutes from nothing; a
# hit costs a hash), so no test's timeout has to cover it.
win_deps=$(deploy/windows/build-deps.sh | tail -n 1)
echo "=== Windows dependency set: $win_deps"

run_suite() { # run_suite BUILD_DIR CMAKE_ARGS...
	local dir=$1; shift
	echo "=== build $dir ($*)"
	# One Windows cross build for both suites: sanitizers do not change it.
	cmake -S . -B "$dir" -DWERROR=ON -DRA_WINBUILD="$PWD/build/windows" "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)" >/dev/null
	echo "=== test $dir"
	(cd "$dir" && ctest --output-on-failure "${CTEST_ARGS[@]}")
}

CTEST_ARGS=()
[ $# -gt 0 ] && CTEST_ARGS=("$@")
run_suite build/ci
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	run_suite build/ci-sanitize -DSANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
