#!/usr/bin/env bash
# Set up, build and run every test: unit tests and scenario tests (network
# namespaces, so run as root), first in a -Werror build, then again in an
# AddressSanitizer + UndefinedBehaviorSanitizer build. The benchmark
# (tests/bench/) is not part of this.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh

run_suite() { # run_suite BUILD_DIR CMAKE_ARGS...
	local dir=$1; shift
	echo "=== build $dir ($*)"
	cmake -S . -B "$dir" -DWERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)" >/dev/null
	echo "=== test $dir"
	(cd "$dir" && ctest --output-on-failure "${CTEST_ARGS[@]}")
}

CTEST_ARGS=()
[ $# -gt 0 ] && CTEST_ARGS=("$@")
run_suite build/ci
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	run_suite build/ci-sanitize -DSANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
