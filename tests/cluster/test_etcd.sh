#!/bin/bash
# The etcd client (user/cluster/etcd.c) against real etcd members, all in a
# network namespace of its own (vsnEtcd) on 127.0.0.1: the C program
# build/cluster/etcd-client-test (tests/cluster/etcd_client_test.c, ASan
# and UBSan) runs three times, its TAP lines renumbered into this script's:
#   single   one member (client 2379): kv, txn, leases, watches (compacted,
#            stop flag, progress, a SIGSTOPped member), elections;
#   cluster  three members (2301-2303), the first endpoint not Raft's
#            leader: one killed, then all;
#   tls      one member with client-certificate auth (2311).
# Every etcd started here is killed and the namespace deleted on exit.
#
# Output: "ok N - ..." / "not ok N - ..." lines, diagnostics prefixed "# ".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

BIN=build/cluster/etcd-client-test
NS=vsnEtcd
T=$(mktemp -d /tmp/vsn-etcd.XXXXXX)

. tests/lib/tap.sh
. tests/lib/etcd.sh
ETCD_NETNS=$NS

cleanup() {
	etcd_stop_all
	ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

fatal() {
	nok "$*"
	echo "1..$n"
	exit 1
}

# client MODE ARG...: the test program in the namespace.
client() {
	local line rc before=$failed
	# A campaign or watch that never ends must not hang the suite.
	timeout 120 nsenter --net="/run/netns/$NS" "$BIN" "$@" >"$T/client.out" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok * - }" ;;
		"not ok "*) nok "${line#not ok * - }" ;;
		"#"*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done <"$T/client.out"
	# A crash, or an exit without saying why.
	[ "$rc" -eq 0 ] || [ "$failed" -gt "$before" ] || nok "etcd-client-test $1 exited $rc"
}

[ "$(id -u)" = 0 ] || fatal "must run as root"
[ -x "$BIN" ] || fatal "$BIN not built (make build/cluster/etcd-client-test)"
for c in etcd etcdctl openssl jq; do
	command -v $c >/dev/null || fatal "$c missing (make deps)"
done
# What a run killed before its trap left: its members, its namespace.
if [ -e "/run/netns/$NS" ]; then
	for p in $(ip netns pids "$NS"); do kill -KILL "$p"; done
	ip netns del "$NS"
fi
if ! ip netns add "$NS" || ! ip -n "$NS" link set lo up; then
	fatal "namespace $NS"
fi

etcd_start "$T/one" http 127.0.0.1:2379:2380 || fatal "one etcd member"
client single http://127.0.0.1:2379 "$(etcd_pid "$T/one" m1)"
etcd_stop_all

etcd_start "$T/three" http 127.0.0.1:2301:2401 127.0.0.1:2302:2402 127.0.0.1:2303:2403 ||
	fatal "three etcd members"
leader=$(etcd_leader)
[ -n "$leader" ] || fatal "three members without a Raft leader"
eps='' pids='' last=''
for i in 1 2 3; do
	ep=http://127.0.0.1:230$i
	pid=$(etcd_pid "$T/three" "m$i")
	if [ "$ep" = "$leader" ]; then
		last="$ep $pid"
	else
		eps="$eps${eps:+,}$ep"
		pids="$pids${pids:+,}$pid"
	fi
done
client cluster "$eps,${last% *}" "$pids,${last#* }"
etcd_stop_all

etcd_certs "$T/certs" || {
	diag <"$T/certs/openssl.log"
	fatal "certificates"
}
ETCD_CTL_FLAGS="--cacert=$T/certs/ca.pem --cert=$T/certs/client.pem --key=$T/certs/client-key.pem"
# shellcheck disable=SC2046 # the flags, one word each
etcd_start "$T/tls" https 127.0.0.1:2311:2411 -- $(etcd_tls_flags "$T/certs") ||
	fatal "one etcd member with TLS"
client tls https://127.0.0.1:2311 "$T/certs"

echo "1..$n"
[ "$failed" -eq 0 ]
