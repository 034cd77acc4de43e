#!/usr/bin/env bash
# Benchmark: short-connection rate through redirect-agent with no policy
# (allow-all, the baseline) and with a 1,000-rule policy, in one run. The two
# alternate round by round (SetPolicy between rounds), so drift hits both;
# each figure is the median of its rounds. The 1,000 rules are what a
# blocklist looks like: 999 CIDR+port rules that miss the benchmark's
# traffic, then one that allows it, so every verdict looks at the index and
# lands on the last rule.
#
#   tests/bench/bench_policy_rate.sh [--rounds N] [--reqs N]   (root; not part of CI)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=6 REQS=20000
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	--reqs) REQS=$2; shift ;;
	*) echo "usage: $0 [--rounds N] [--reqs N]" >&2; exit 2 ;;
	esac
	shift
done

deploy/install-deps.sh --bench
command -v nginx >/dev/null || apt-get install -y -qq nginx-light >/dev/null
source tests/bench/lib.sh
bench_build
bench_net rapol
bench_nginx 80
cat >"$WORK/agent.conf" <<EOF2
[agent]
log_level = warn
[proxy]
workers = 1
redirect_ports = 80
[db]
path = $WORK/agent.db
[api]
local_socket = $WORK/agent.sock
EOF2
ip netns exec "$C" taskset -c 0 "$AGENT" --foreground --config "$WORK/agent.conf" >"$WORK/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$WORK/agent.sock" ] && break; sleep 0.1; done
sleep 0.5
ip netns exec "$C" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1

"$PY" - "$WORK/rules.json" "$SRV" <<'EOF2'
import json, sys
rules = [{"id": "r%d" % i, "action": "block",
          "match": {"dst_cidrs": ["10.%d.%d.0/24" % (100 + i // 256, i % 256)], "dst_ports": [80, 443]}}
         for i in range(999)]
rules.append({"id": "bench", "action": "allow", "match": {"dst_cidrs": [sys.argv[2] + "/32"]}})
json.dump({"default_action": "block", "rules": rules}, open(sys.argv[1], "w"))
EOF2
echo '{"default_action": "allow", "rules": []}' >"$WORK/none.json"

rate() {
	ip netns exec "$C" taskset -c 1 ab -q -n "$REQS" -c 32 "http://$SRV/" >"$WORK/ab.out" 2>&1
	local fails
	fails=$(awk '/^Failed requests/ { print $3 }' "$WORK/ab.out")
	[ "$fails" = 0 ] || echo "warning: $fails failed requests" >&2
	awk '/^Requests per second/ { print $4 }' "$WORK/ab.out"
}
ctl() { "$CTL" --socket "$WORK/agent.sock" "$@"; }

declare -a base rules
for r in $(seq "$ROUNDS"); do
	ctl policy set "$WORK/none.json" >/dev/null
	base+=("$(rate)")
	ctl policy set "$WORK/rules.json" >/dev/null
	rules+=("$(rate)")
	echo "round $r: allow-all ${base[-1]}/s, 1,000 rules ${rules[-1]}/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mb=$(median "${base[@]}")
mr=$(median "${rules[@]}")
echo
echo "short connections/s, median of $ROUNDS rounds ($REQS requests, ab -c 32)"
printf '%-22s %10s\n' "allow-all (baseline)" "$mb"
printf '%-22s %10s   %.3fx\n' "1,000-rule policy" "$mr" "$(echo "$mr / $mb" | bc -l)"
hits=$(ctl --json stats | "$PY" -c 'import json,sys; s=json.load(sys.stdin); print([h["hits"] for h in s["rule_hits"] if h["rule_id"] == "bench"][0])')
echo "the last rule's hits in the last round: $hits (every connection was judged by the policy)"
