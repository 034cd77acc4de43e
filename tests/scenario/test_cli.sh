#!/usr/bin/env bash
# The command lines: each binary's --help against the options its parser
# accepts, every exit code, and the README's usage lines against --help.
# No agent runs: a usage error must be found before any connection is tried,
# so every command here either exits 2 (usage) or 3 (nothing to reach).
source "$(dirname "$0")/lib.sh"
: "${CTL:?CTL must point at redirectctl}"

NOSOCK="$WORK/absent.sock"
NONATS="nats://127.0.0.1:1" # nothing listens on port 1
README="$SRCDIR/README.md"
echo '{"rules": []}' >"$WORK/policy.json"
UUID=01234567-89ab-4cde-8f01-23456789abcd

# A sample value for each option and argument the help names: a new option
# without one fails here, which is the point.
sample() { # sample OPTION-OR-ARG
	case "$1" in
	--limit | --simulate | --expected-version | --expected-revision | --after) echo 5 ;;
	--since | --inventory-ttl) echo 2h ;;
	--until) echo 1m ;;
	--dst-cidr) echo 10.0.0.0/8 ;;
	--dst-port) echo 443 ;;
	--state) echo closed ;;
	--verdict) echo refuse ;;
	--redirect-state) echo by_other ;;
	--agent | UUID) echo "$UUID" ;;
	ID) echo 42 ;;
	FILE) echo "$WORK/policy.json" ;;
	KEY) echo group.lab ;;
	COMMAND) echo status ;;
	*) echo "no sample value for $1: add one to test_cli.sh" >&2; return 1 ;;
	esac
}

# run ARGS...: redirectctl with nothing to reach; rc, out and err set.
run() {
	rc=0
	"$CTL" --socket "$NOSOCK" --server "$NONATS" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	out=$(cat "$WORK/out")
	err=$(cat "$WORK/err")
}

# ---- redirectctl: every command, its help and its options ----
"$CTL" help >"$WORK/help"
check_eq "redirectctl help is --help" "$(cat "$WORK/help")" "$("$CTL" --help)"
check_eq "and -h" "$(cat "$WORK/help")" "$("$CTL" -h)"
# The command rows: "  fleet policy get KEY   help..." -> "fleet policy get"
# (the left column ends at two spaces, or at an argument when it overflows)
mapfile -t cmds < <(sed -n '/^commands:/,/^$/p' "$WORK/help" | sed -n 's/^  //p' |
	sed 's/  .*//' | awk '{ n = ""; for (i = 1; i <= NF && $i ~ /^[a-z]+$/; i++) n = n (i > 1 ? " " : "") $i; print n }')
check "the help lists the commands (${#cmds[@]})" [ "${#cmds[@]}" -ge 18 ]
for c in "${cmds[@]}"; do
	[ "$c" = help ] && continue
	read -ra words <<<"$c"
	help_out=$("$CTL" help "${words[@]}")
	check_eq "$c: 'help $c' is '$c --help'" "$help_out" "$("$CTL" "${words[@]}" --help)"
	usage=$(sed -n 's/^usage: //p' <<<"$help_out")
	# The usage line's options and the option rows are the same list.
	from_usage=$(grep -o '\[--[a-z-]*\( [A-Z]*\)\?\]' <<<"$usage" | tr -d '[]' | sort || true)
	from_rows=$(sed -n 's/^  \(--[a-z-]*\( [A-Z]*\)\?\)  .*/\1/p' <<<"$help_out" | sed 's/ *$//' | sort)
	check_eq "$c: the usage line and the option rows name the same options" "$from_rows" "$from_usage"
	check "$c: the README has its usage line" grep -qF -- "$usage" "$README"
	# Positional arguments, each with its sample value.
	args=()
	for a in $(sed "s/^redirectctl \[GLOBAL OPTIONS\] $c//; s/\[[^]]*\]//g" <<<"$usage"); do
		args+=("$(sample "$a")")
	done
	run "${words[@]}" "${args[@]}"
	check_eq "$c ${args[*]}: parsed, then nothing to reach (3)" 3 "$rc"
	while read -r opt metavar; do
		[ -n "$opt" ] || continue
		if [ -n "$metavar" ]; then
			v=$(sample "$opt")
			run "${words[@]}" "${args[@]}" "$opt" "$v"
			check_eq "$c $opt $v: accepted (3)" 3 "$rc"
			run "${words[@]}" "${args[@]}" "$opt=$v"
			check_eq "$c $opt=$v: accepted (3)" 3 "$rc"
			run "${words[@]}" "${args[@]}" "$opt"
			check_eq "$c $opt without its value: usage (2)" 2 "$rc"
			check "$c $opt: says it needs a value" grep -q "needs a value" <<<"$err"
		else
			run "${words[@]}" "${args[@]}" "$opt"
			check_eq "$c $opt: accepted (3)" 3 "$rc"
		fi
	done <<<"$from_rows"
	run "${words[@]}" "${args[@]}" --no-such-option
	check_eq "$c --no-such-option: usage (2)" 2 "$rc"
	check "$c --no-such-option: named, no connection tried" \
		bash -c "grep -q \"unknown option '--no-such-option'\" <<<\"\$1\" && ! grep -q 'cannot reach' <<<\"\$1\"" _ "$err"
done

# Each word a help row lists is one the parser takes.
conns_help=$("$CTL" help conns)
for opt in state verdict redirect-state; do
	listed=$(grep -- "^  --$opt " <<<"$conns_help" | sed 's/^  --[a-z-]* [A-Z]* *//; s/,//g; s/ or / /')
	check "conns --$opt lists its words" [ "$(wc -w <<<"$listed")" -ge 4 ]
	for w in $listed; do
		run conns "--$opt" "$w"
		check_eq "conns --$opt $w: accepted (3)" 3 "$rc"
	done
done

# The global and fleet options: each row is accepted before a command.
while read -r opt metavar; do
	case "$opt" in
	--version | --help) continue ;;
	--socket) v=$NOSOCK; cmd=(status) ;;
	--target) continue ;; # with --ca, --cert and --key, below
	--ca | --cert | --key) continue ;;
	--json) v=; cmd=(status) ;;
	--tls-cert | --tls-key) continue ;; # together, below
	--server) v=$NONATS; cmd=(fleet agents) ;;
	--user | --inbox | --prefix | --password) v=someone; cmd=(fleet agents) ;;
	--creds | --tls-ca) v=$WORK/policy.json; cmd=(fleet agents) ;;
	*) check "global option $opt has a case in test_cli.sh" false; continue ;;
	esac
	rc=0
	if [ -n "$metavar" ]; then
		"$CTL" --socket "$NOSOCK" --server "$NONATS" "$opt" "$v" "${cmd[@]}" >/dev/null 2>"$WORK/err" || rc=$?
	else
		"$CTL" --socket "$NOSOCK" --server "$NONATS" "$opt" "${cmd[@]}" >/dev/null 2>"$WORK/err" || rc=$?
	fi
	check "global $opt: accepted (not a usage error; got $rc)" [ "$rc" -ne 2 ]
done < <(sed -n '/^global options:/,/^commands:/p' "$WORK/help" | sed -n 's/^  \(--[a-z-]*\)\( [A-Z:]*\)\?  .*/\1\2/p')
rc=0; "$CTL" --target 127.0.0.1:1 --ca "$WORK/policy.json" --cert "$WORK/policy.json" --key "$WORK/policy.json" status 2>"$WORK/err" || rc=$?
check_eq "--target with --ca, --cert, --key: parsed, nothing to reach (3)" 3 "$rc"
rc=0; "$CTL" --target 127.0.0.1:1 status 2>"$WORK/err" || rc=$?
check_eq "--target alone: usage (2)" 2 "$rc"
rc=0; "$CTL" --server "$NONATS" --tls-cert "$WORK/policy.json" --tls-key "$WORK/policy.json" fleet agents 2>"$WORK/err" || rc=$?
check "--tls-cert with --tls-key: parsed (got $rc)" [ "$rc" -ne 2 ]
rc=0; "$CTL" --server "$NONATS" --tls-cert "$WORK/policy.json" fleet agents 2>"$WORK/err" || rc=$?
check_eq "--tls-cert alone: usage (2)" 2 "$rc"
rc=0; "$CTL" fleet --server "$NONATS" agents 2>"$WORK/err" || rc=$?
check_eq "fleet options after 'fleet' too (3)" 3 "$rc"

# ---- redirectctl: the usage errors of issue 17, and the rest of the exit codes ----
usage_case() { # usage_case WHAT ARGS...: exits 2, says why with one prefix, tries nothing
	local what=$1
	shift
	run "$@"
	check_eq "$what: usage (2)" 2 "$rc"
	check "$what: 'redirectctl: ' prefix, no connection tried" \
		bash -c "head -1 <<<\"\$1\" | grep -q '^redirectctl: ' && ! grep -q 'cannot reach' <<<\"\$1\"" _ "$err"
}
usage_case "conns --bogus" conns --bogus
usage_case "conn abc" conn abc
usage_case "conns --since 1w" conns --since 1w
usage_case "conns --since 1m --until 1h" conns --since 1m --until 1h
usage_case "conns --verdict maybe" conns --verdict maybe
usage_case "conns --dst-cidr 10.0.0.0/33" conns --dst-cidr 10.0.0.0/33
usage_case "conns --limit 0" conns --limit 0
usage_case "short -s" conns -s 1h
usage_case "short -j" -j status
usage_case "an unknown command" frobnicate
usage_case "no command" --json
usage_case "policy without a subcommand" policy
usage_case "fleet policy without a subcommand" fleet policy
usage_case "help for no such command" help frobnicate
usage_case "status takes no argument" status now
usage_case "fleet call needs UUID COMMAND" fleet call "$UUID"
usage_case "fleet call: a bad UUID" fleet call not-a-uuid status
usage_case "fleet call watch" fleet call "$UUID" watch
usage_case "policy set of a missing file" policy set "$WORK/absent.json"
# Through a relative path the prefix is still the program's name.
rc=0; (cd "$(dirname "$CTL")" && "./$(basename "$CTL")" conns --bogus) 2>"$WORK/err" || rc=$?
check "the prefix is 'redirectctl:', however it was called" grep -q "^redirectctl: conns: unknown option" "$WORK/err"
run policy --help
check_eq "policy --help: 0" 0 "$rc"
check_eq "policy --help is 'help policy'" "$("$CTL" help policy)" "$out"
check "and not the top-level usage" not grep -q "COMMAND \[ARGS\]" <<<"$out"
run status
check_eq "nothing listening: exit 3" 3 "$rc"
check "naming the socket" grep -q "cannot reach the agent at $NOSOCK" <<<"$err"
rc=0; out=$("$CTL" --version) || rc=$?
check "--version: 0, 'redirectctl VERSION'" grep -qE '^redirectctl [0-9]+\.[0-9]+' <<<"$out"
check "the help lists every exit code" grep -q "exit codes: 0 ok, 1 the agent said no, 2 usage, 3 cannot reach the agent" "$WORK/help"

# ---- redirect-agent: --help against getopt's table ----
"$AGENT" --help >"$WORK/ahelp"
# Every long option the parser has (agent.c's table, Windows-only ones aside) is in the help,
# and every one in the help is in the table.
table=$(sed -n '/static const struct option opts\[\] = {/,/^	};/p' "$SRCDIR/agent/agent.c" |
	sed '/#ifdef _WIN32/,/#endif/d' | sed -n 's/.*{"\([a-z-]*\)",.*/--\1/p' | sort)
in_help=$(grep -o -- '--[a-z][a-z-]*' "$WORK/ahelp" | sort -u)
check_eq "redirect-agent: the help names exactly the parser's options" "$table" "$in_help"
# Every short option the help shows works as its long one.
printf '[agent]\nlog_level = info\n' >"$WORK/a.conf"
rc=0; "$AGENT" -c "$WORK/a.conf" -n >/dev/null || rc=$?
check_eq "redirect-agent -c FILE -n: 0" 0 "$rc"
check_eq "-V is --version" "$("$AGENT" --version)" "$("$AGENT" -V)"
check_eq "-h is --help" "$(cat "$WORK/ahelp")" "$("$AGENT" -h)"
rc=0; "$AGENT" -w "$WORK/w.conf" agent.log_level=debug >/dev/null || rc=$?
check_eq "-w FILE writes a config: 0" 0 "$rc"
check "which --check-config accepts" bash -c '"$1" --config "$2" --check-config >/dev/null' _ "$AGENT" "$WORK/w.conf"
shorts=$(grep -o '^  -[a-zA-Z],' "$WORK/ahelp" | tr -d ' ,-' | sort | tr -d '\n')
check_eq "the help's short options are -c -f -n -w -V -h" "Vcfhnw" "$shorts"
rc=0; "$AGENT" --bogus 2>"$WORK/err" >/dev/null || rc=$?
check_eq "redirect-agent --bogus: 2" 2 "$rc"
check "named with the program's name" grep -q "^redirect-agent: unknown option '--bogus'" "$WORK/err"
rc=0; "$AGENT" --config 2>"$WORK/err" >/dev/null || rc=$?
check_eq "--config without a value: 2" 2 "$rc"
check "says so" grep -q "^redirect-agent: --config needs a value" "$WORK/err"
rc=0; "$AGENT" --force 2>"$WORK/err" >/dev/null || rc=$?
check_eq "--force without --cleanup: 2" 2 "$rc"
rc=0; "$AGENT" --check-config stray 2>"$WORK/err" >/dev/null || rc=$?
check_eq "a stray argument: 2" 2 "$rc"
printf '[agent]\nno_such_key = 1\n' >"$WORK/bad.conf"
rc=0; "$AGENT" --config "$WORK/bad.conf" --check-config 2>"$WORK/err" >/dev/null || rc=$?
check_eq "a bad config: 78" 78 "$rc"
# The README shows the same usage lines.
while read -r line; do
	check "README has the agent's usage line: $line" grep -qF -- "$line" "$README"
done < <(sed -n '1,/^$/p' "$WORK/ahelp" | sed -n 's/^\(usage:\)\? *\(redirect-agent .*\)/\2/p')

finish
