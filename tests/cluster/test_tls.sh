#!/bin/bash
# One daemon joining a cluster whose etcd demands client certificates (the
# cluster section's ca_file, cert_file, key_file), on the standard topology
# (tests/lib/topo.sh, prefix vsnT) with etcd in the hypervisor's namespace:
#   1. with the test's certificates it registers, leads, publishes its
#      observations and takes the configuration written with
#      'vsn apply --cluster' (its own part only: a second host's is not);
#   2. without a client certificate it is refused: 'vsn cluster status'
#      says etcd is unreachable and why, the decision log says so, and the
#      datapath keeps the mapping it had (the daemon started on a file with
#      only its cluster section, and leaves the maps as they were);
#   3. its metrics carry the cluster's series and promtool accepts them.
# Output: TAP lines; diagnostics prefixed "# ".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

P=vsnT
PIN=/sys/fs/bpf/vsnT
VSN=$ROOT/build/vsn
T=$(mktemp -d /tmp/vsnT-test.XXXXXX)
chmod 755 "$T"
SOCK=$T/vsn.sock
DPID=

. tests/lib/tap.sh
. tests/lib/netns.sh
. tests/lib/etcd.sh
ETCD_NETNS=$P-hv

vsn() { hv env VSN_PIN_DIR="$PIN" VSN_SOCKET="$SOCK" "$VSN" "$@"; }

stop_daemon() {
	[ -n "$DPID" ] || return 0
	kill "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	DPID=
}
cleanup() {
	stop_daemon
	etcd_stop_all
	netns_down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_daemon FILE LOG: the daemon on FILE, its decision log in LOG, in
# the background (DPID is vsn itself: nsenter and env exec it).
start_daemon() {
	nsenter --net="/run/netns/$P-hv" env VSN_PIN_DIR="$PIN" VSN_SOCKET="$SOCK" "$VSN" \
		daemon -c "$1" --log "$2" 2>>"$T/daemon.err" &
	DPID=$!
	for _ in $(seq 50); do
		kill -0 "$DPID" 2>/dev/null || return 1
		vsn -j daemon status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# cluster_status: vsn -j cluster status, once it is there.
cluster_status() { vsn -j cluster status 2>/dev/null; }

# wait_status JQ SECONDS: until cluster status satisfies JQ.
wait_status() {
	local i
	for ((i = 0; i <= $2 * 10; i++)); do
		jq -e "$1" >/dev/null 2>&1 <<<"$(cluster_status)" && return 0
		sleep 0.1
	done
	return 1
}

netns_up
for c in etcd etcdctl openssl jq promtool; do
	command -v $c >/dev/null || fatal "$c missing (make deps)"
done
etcd_certs "$T/certs" || fatal "etcd_certs"
ETCD_CTL_FLAGS="--cacert=$T/certs/ca.pem --cert=$T/certs/client.pem --key=$T/certs/client-key.pem"
# shellcheck disable=SC2046 # the flags are words
etcd_start "$T/etcd" https 127.0.0.1:23791:23801 -- $(etcd_tls_flags "$T/certs") ||
	fatal "etcd with client-certificate auth"
EP=$ETCD_ENDPOINTS
F0_MAC=$(nsx fab cat /sys/class/net/f0/address)
F1_MAC=$(nsx fab cat /sys/class/net/f1/address)
vsn attach --vm vmif --uplink up0,up1 >/dev/null 2>&1 || fatal "vsn attach"

cat >"$T/own.yaml" <<EOF
cluster: {endpoints: [$EP], host: hv1, lease_ttl_s: 2, publish_ms: 300,
  ca_file: $T/certs/ca.pem, cert_file: $T/certs/client.pem, key_file: $T/certs/client-key.pem}
controller: {socket: $SOCK, metrics_dir: $T, metrics_interval_ms: 200}
EOF
# One file for two hosts: hv1 (this one) and hv2 (absent here).
cat >"$T/cluster.yaml" <<EOF
backends:
  - {id: 1, name: be1, address: 10.3.1.2, paths: [1, 2], capacity: 50}
  - {id: 2, name: be2, address: 10.3.2.2, paths: [1, 2], capacity: 50}
uplinks:
  - {interface: up0, host: hv1}
  - {interface: up1, host: hv1}
  - {interface: up0, host: hv2}
paths:
  - {id: 1, uplink: up0, next_hop: "$F0_MAC", host: hv1}
  - {id: 2, uplink: up1, next_hop: "$F1_MAC", host: hv1}
  - {id: 1, uplink: up0, next_hop: fib, host: hv2}
  - {id: 2, uplink: up0, next_hop: fib, dscp: 10, host: hv2}
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2], host: hv1}
  - {name: vm1, id: 1, interface: tap9, addresses: [10.0.9.2], host: hv2}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1, 2], host: hv1}
  - {id: 2, vm: vm1, address: 192.168.100.20, backends: [2], host: hv2}
controller: {socket: $SOCK, metrics_dir: $T, metrics_interval_ms: 200}
EOF

# ------------------------------------------------ 1. with the certificates
echo "# 1. client certificates"
start_daemon "$T/own.yaml" "$T/d1.log" || fatal "the daemon did not start"
check "the daemon joins over TLS: registered, reachable, leading" \
	wait_status '.reachable and .leader == "hv1" and (.hosts | length) == 1' 10
out=$(vsn apply --cluster "$T/cluster.yaml" 2>&1)
rc=$?
echo "# $out"
check "vsn apply --cluster writes the configuration for two hosts (exit $rc)" \
	eval '[ $rc = 0 ] && grep -q "written to etcd as revision" <<<"$out"'
REV=$(jq -r .config_revision <<<"$(cluster_status)")
check "hv1 runs revision $REV and says so in etcd" \
	wait_status '.config_revision as $r | $r > 0 and .running_revision == $r and
		any(.hosts[]; .name == "hv1" and .applied == $r)' 10
check "hv1's maps hold its own part only (volume 1, not hv2's volume 2)" \
	jq -e 'length == 1 and .[0].volume == 1' <<<"$(vsn -j show volumes)"
check "its observations of both backends are published" \
	wait_status '[.backends[].id] | sort == [1, 2]' 10
stop_daemon
check "a stopped daemon's keys go with its lease at once" \
	eval '[ -z "$(etcd_ctl --endpoints=$EP get --prefix /vsn/hosts/ --keys-only)" ]'

# --------------------------------------------- 2. without a certificate
echo "# 2. no client certificate"
sed -e "s|, cert_file: [^,]*, key_file: [^}]*}|}|" "$T/own.yaml" >"$T/nocert.yaml"
grep -q cert_file "$T/nocert.yaml" && fatal "nocert.yaml still has cert_file"
before=$(vsn -j show volumes)
start_daemon "$T/nocert.yaml" "$T/d2.log" || fatal "the daemon did not start"
sleep 3
st=$(cluster_status)
echo "# $(jq -c '{reachable, last_error}' <<<"$st")"
check "etcd refuses it: cluster status unreachable, the error names TLS" \
	jq -e '(.reachable | not) and (.last_error | test("TLS|certificate|SSL|handshake"; "i"))' \
	<<<"$st"
check "the decision log says it decides alone" \
	eval 'grep -q "\"event\":\"cluster-joined\"" "$T/d2.log" &&
		! grep -q "\"event\":\"cluster-reachable\"" "$T/d2.log"'
check "the datapath keeps the mapping it had (a cluster-only file leaves the maps alone)" \
	eval '[ "$(vsn -j show volumes)" = "$before" ] &&
		grep -q "\"maps\":\"kept until the cluster" "$T/d2.log"'
check "vsn apply --cluster through it fails with etcd's error, not silently" \
	not vsn apply --cluster "$T/cluster.yaml"

# ----------------------------------------------------------- 3. metrics
echo "# 3. metrics"
sleep 0.5
check "the metrics say etcd is down for this host" \
	grep -qx 'vsn_cluster_etcd_up 0' "$T/vsn.prom"
check "promtool accepts them" promtool check metrics <"$T/vsn.prom"
stop_daemon
start_daemon "$T/own.yaml" "$T/d3.log" || fatal "the daemon did not restart"
check "with its certificates again it is reachable and runs revision $REV" \
	wait_status ".reachable and .running_revision == $REV" 10
sleep 0.5
check "the metrics say so (etcd up, this host leads, revision $REV)" \
	eval 'grep -qx "vsn_cluster_etcd_up 1" "$T/vsn.prom" &&
		grep -qx "vsn_cluster_leader 1" "$T/vsn.prom" &&
		grep -qx "vsn_cluster_config_revision $REV" "$T/vsn.prom"'
check "promtool accepts them" promtool check metrics <"$T/vsn.prom"

echo "1..$n"
[ "$failed" -eq 0 ]
