#!/bin/bash
# Test topology, all in network namespaces named ${P}-*, (P defaults to vsnt):
#
#   ${P}-vm  [vm0 10.0.0.2] --- [vmif 10.0.0.1]  ${P}-hv  [up0 10.1.0.1] --- [f0 10.1.0.2]
#                                                         [up1 10.2.0.1] --- [f1 10.2.0.2]  ${P}-fab
#   ${P}-be1 [eth0 10.3.1.2] --- [b1 10.3.1.1] ${P}-fab
#   ${P}-be2 [eth0 10.3.2.2] --- [b2 10.3.2.1] ${P}-fab
#
# IPv6 too: 2001:db8:N::/64 on each link with the same host numbers.
# vsn runs in ${P}-hv (VM interface vmif, uplinks up0 and up1); the VM
# reaches its volume at the virtual address 192.168.100.10 / 2001:db8:100::10.
# Usage: topo.sh up|down   (sourcing it defines the functions only)
set -euo pipefail
P=${P:-vsnt}

nsx() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

link() { # link NS1 IF1 NS2 IF2
	ip link add "$2" netns "$P-$1" type veth peer name "$4" netns "$P-$3"
	nsx "$1" ip link set "$2" up
	nsx "$3" ip link set "$4" up
}

addr() { # addr NS IF N HOST: 10.N.0.HOST/24 and 2001:db8:N::HOST/64
	nsx "$1" ip addr add "10.$3.$4/24" dev "$2"
	nsx "$1" ip -6 addr add "2001:db8:${3//./:}::$4/64" dev "$2" nodad
}

up() {
	for ns in vm hv fab be1 be2; do
		ip netns add "$P-$ns"
		nsx "$ns" ip link set lo up
	done
	link vm vm0 hv vmif
	link hv up0 fab f0
	link hv up1 fab f1
	link be1 eth0 fab b1
	link be2 eth0 fab b2
	addr vm vm0 0.0 2
	addr hv vmif 0.0 1
	addr hv up0 1.0 1
	addr fab f0 1.0 2
	addr hv up1 2.0 1
	addr fab f1 2.0 2
	addr be1 eth0 3.1 2
	addr fab b1 3.1 1
	addr be2 eth0 3.2 2
	addr fab b2 3.2 1
	nsx vm ip route add default via 10.0.0.1
	nsx vm ip -6 route add default via 2001:db8:0:0::1
	nsx be1 ip route add default via 10.3.1.1
	nsx be1 ip -6 route add default via 2001:db8:3:1::1
	nsx be2 ip route add default via 10.3.2.1
	nsx be2 ip -6 route add default via 2001:db8:3:2::1
	nsx fab sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	nsx hv sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	# Replies reach the VM side through up0 unless SNAT chooses otherwise.
	nsx fab ip route add 10.0.0.0/24 via 10.1.0.1
	nsx fab ip route add 10.9.1.0/24 via 10.1.0.1
	nsx fab ip route add 10.9.2.0/24 via 10.2.0.1
	nsx fab ip -6 route add 2001:db8::/64 via 2001:db8:1::1
	nsx hv ip route add 10.3.0.0/16 via 10.1.0.2 dev up0
	nsx hv ip route add 10.3.0.0/16 via 10.2.0.2 dev up1 metric 10
	nsx hv ip -6 route add 2001:db8:3::/48 via 2001:db8:1::2 dev up0
	nsx hv ip -6 route add 2001:db8:3::/48 via 2001:db8:2::2 dev up1 metric 10
	# Not needed by vsn any more (replies to a veth go through TC: lib/xfer.h;
	# tests/netns/test_vethgro.sh has it off); the other tests keep it on.
	nsx vm ethtool -K vm0 gro on >/dev/null
	# The fabric side plays the wire: frames reaching the uplinks carry
	# complete checksums, as from a real NIC (veth would otherwise hand XDP
	# CHECKSUM_PARTIAL frames whose checksum field is only a pseudo sum).
	nsx fab ethtool -K f0 tx off >/dev/null
	nsx fab ethtool -K f1 tx off >/dev/null
}

down() {
	for ns in vm hv fab be1 be2; do
		ip netns del "$P-$ns" 2>/dev/null || true
	done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	"$@"
fi
