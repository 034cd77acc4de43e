#!/usr/bin/env bash
# Fuzz the parsers that read what peers send (libFuzzer + ASan/UBSan, clang).
#   tests/fuzz/run.sh [SECONDS per target, default 60]     (not part of CI)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
OUT=build/fuzz
mkdir -p "$OUT"
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE"
CFLAGS+=" -Iagent/common -Iagent/proxy -Iagent/policy"
COMMON="agent/common/addr.c agent/common/conn.c agent/common/err.c agent/common/log.c agent/common/parse.c"
clang $CFLAGS -o "$OUT/fuzz_sniff" tests/fuzz/fuzz_sniff.c agent/proxy/sniff.c
# The policy compiler is a library of its own (agent/policy/): it and the common layer.
clang $CFLAGS $(pkg-config --cflags jansson) -o "$OUT/fuzz_policy" tests/fuzz/fuzz_policy.c \
	agent/policy/*.c $COMMON $(pkg-config --libs jansson)
for t in sniff policy; do
	mkdir -p "$OUT/corpus_$t"
	cp tests/fuzz/seeds/$t/* "$OUT/corpus_$t/"
	"$OUT/fuzz_$t" -max_total_time="$SECS" -max_len=65536 "$OUT/corpus_$t" 2>&1 | tail -3
done
