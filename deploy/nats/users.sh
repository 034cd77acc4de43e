#!/bin/sh
# users.sh OPERATOR_PW ADMIN_PW READER_PW [UUID:PASSWORD[:GROUP,...]]...
# prints users.conf for nats-server.conf: the operator, an admin, a reader,
# and one user per agent, "agent-<uuid>". An agent may publish its records
# (redirect.conn.<uuid>), write its own inventory entry, read its own policy
# keys (agent.<uuid> and group.<group> for its groups) and their changes,
# answer the calls made to it, and read replies under _INBOX.agent-<uuid>.
# The agent's UUID is in `redirectctl status` (made at its first start).
# Changing an agent's groups means a new users.conf and a server reload.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 OPERATOR_PW ADMIN_PW READER_PW [UUID:PASSWORD[:GROUP,...]]..." >&2; exit 2; }
# What both console users may publish (the stream, the buckets: reading),
# then what only a reader's and only an admin's list adds.
BOTH='
$JS.API.INFO
$JS.API.STREAM.NAMES
$JS.API.STREAM.INFO.REDIRECT_CONN
$JS.API.STREAM.INFO.KV_REDIRECT_AGENTS
$JS.API.STREAM.INFO.KV_REDIRECT_POLICY
$JS.API.STREAM.MSG.GET.REDIRECT_CONN
$JS.API.CONSUMER.CREATE.REDIRECT_CONN
$JS.API.CONSUMER.CREATE.REDIRECT_CONN.>
$JS.API.CONSUMER.INFO.REDIRECT_CONN.*
$JS.API.CONSUMER.DELETE.REDIRECT_CONN.*
$JS.API.CONSUMER.MSG.NEXT.REDIRECT_CONN.*
$JS.ACK.REDIRECT_CONN.>
$JS.API.DIRECT.GET.KV_REDIRECT_AGENTS.>
$JS.API.CONSUMER.CREATE.KV_REDIRECT_AGENTS
$JS.API.CONSUMER.CREATE.KV_REDIRECT_AGENTS.>
$JS.API.CONSUMER.DELETE.KV_REDIRECT_AGENTS.*
$JS.API.DIRECT.GET.KV_REDIRECT_POLICY.>
$JS.API.CONSUMER.CREATE.KV_REDIRECT_POLICY
$JS.API.CONSUMER.CREATE.KV_REDIRECT_POLICY.>
$JS.API.CONSUMER.DELETE.KV_REDIRECT_POLICY.*
$JS.FC.>
'
READER_ALSO='
redirect.rpc.*.Agent.GetInfo
redirect.rpc.*.Agent.GetHealth
redirect.rpc.*.Telemetry.>
'
ADMIN_ALSO='
redirect.rpc.*.Agent.>
redirect.rpc.*.Telemetry.>
$KV.REDIRECT_POLICY.>
redirect.rpc.*.Policy.>
'
# list NAME SUBJECTS...: a nats-server list variable, one quoted subject a line
list() {
	name=$1
	shift
	echo "  $name = ["
	printf '%s\n' "$@" | sed 's/.*/    "&"/; $!s/$/,/'
	echo "  ]"
}
set -f # the subjects hold * and >: split them into words, never glob them
# shellcheck disable=SC2086 # one subject a word
list READER_PUB $BOTH $READER_ALSO
# shellcheck disable=SC2086
list ADMIN_PUB $BOTH $ADMIN_ALSO
set +f
echo "users = ["
echo "  { user: \"operator\", password: \"$1\", permissions: { publish: \">\", subscribe: \">\" } }"
echo "  { user: \"admin\", password: \"$2\","
echo "    permissions: { publish: { allow: \$ADMIN_PUB }, subscribe: { allow: [\"_INBOX.admin.>\"] } } }"
echo "  { user: \"reader\", password: \"$3\","
echo "    permissions: { publish: { allow: \$READER_PUB }, subscribe: { allow: [\"_INBOX.reader.>\"] } } }"
shift 3
for spec in "$@"; do
	u=${spec%%:*} rest=${spec#*:}
	pw=${rest%%:*} groups=""
	case $rest in *:*) groups=${rest#*:} ;; esac
	case $u in
	*[!0-9a-f-]* | "") echo "$0: '$u' is not an agent UUID" >&2; exit 2 ;;
	esac
	pub="\"redirect.conn.$u\", \"\$JS.API.STREAM.INFO.KV_REDIRECT_AGENTS\", \"\$JS.API.STREAM.INFO.KV_REDIRECT_POLICY\", \"\$KV.REDIRECT_AGENTS.$u\", \"\$JS.API.DIRECT.GET.KV_REDIRECT_POLICY.\$KV.REDIRECT_POLICY.agent.$u\""
	sub="\"_INBOX.agent-$u.>\", \"redirect.rpc.$u.>\", \"redirect.rpc.all.Agent.GetInfo\", \"redirect.policy.agent.$u\""
	for g in $(echo "$groups" | tr ',' ' '); do
		case $g in
		*[!A-Za-z0-9_-]*) echo "$0: '$g' is not a group name" >&2; exit 2 ;;
		esac
		pub="$pub, \"\$JS.API.DIRECT.GET.KV_REDIRECT_POLICY.\$KV.REDIRECT_POLICY.group.$g\""
		sub="$sub, \"redirect.policy.group.$g\""
	done
	echo "  { user: \"agent-$u\", password: \"$pw\", permissions: {"
	echo "      publish: { allow: [ $pub ] }"
	echo "      subscribe: { allow: [ $sub ] }"
	echo "      allow_responses: { max: 1, expires: \"1m\" } } }"
done
echo "]"
