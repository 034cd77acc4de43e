#!/usr/bin/env bash
# Fuzz the parsers that read what peers send (libFuzzer + ASan/UBSan, clang).
#   tests/fuzz/run.sh [SECONDS per target, default 60]     (not part of CI)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
OUT=build/fuzz
mkdir -p "$OUT"
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Iagent"
clang $CFLAGS -o "$OUT/fuzz_sniff" tests/fuzz/fuzz_sniff.c agent/sniff.c
clang $CFLAGS $(pkg-config --cflags jansson) -o "$OUT/fuzz_policy" tests/fuzz/fuzz_policy.c \
	agent/policy.c agent/addr.c agent/log.c agent/records.c agent/redirect_linux.c agent/nft.c \
	agent/route_linux.c $(pkg-config --libs jansson libnftables libmnl)
for t in sniff policy; do
	mkdir -p "$OUT/corpus_$t"
	cp tests/fuzz/seeds/$t/* "$OUT/corpus_$t/"
	"$OUT/fuzz_$t" -max_total_time="$SECS" -max_len=65536 "$OUT/corpus_$t" 2>&1 | tail -3
done
