#!/bin/bash
# The controller's testbed: a tenant VM, a hypervisor namespace running vsn
# and its daemon, two fabrics, two NVMe/TCP target VMs that serve the same
# subsystem.  Used by tests/e2e/test_controller.sh and by demos.
#
#   tenant VM "vm1"  eth0 10.0.0.2 (nvme-tcp initiator, fio)
#        | tap0 10.0.0.1
#   $P-hv     vsn attach --vm tap0 --uplink up0,up1; vsn daemon
#        | up0 10.1.0.1                    | up1 10.2.0.1
#   $P-fab0   bridge br0: f0, x0    $P-fab1   bridge br1: f1, x1
#        | s0 10.1.0.2                     | s1 10.2.0.2
#   $P-sto    router; bridge brs 10.3.0.1: tapt1, tapt2
#        | tgt1 10.3.0.11                  | tgt2 10.3.0.12
#   target VMs: nvmet, TCP 4420, null_blk, the same NQN, serial number and
#   namespace UUID/NGUID, ANA group 1
#
# The tenant connects to the volume's virtual address 192.168.100.10:4420
# only.  vsn: path 1 = up0 (fabric 0), path 2 = up1 (fabric 1), both with
# next_hop fib; backend 1 = tgt1 (tier 0), backend 2 = tgt2 (tier 1, the
# standby: one NVMe controller's TCP connections, admin and I/O queues, must
# all reach one target, and tiers give every new connection the same one).
# Both backends have `nqn:`, so the daemon polls their admin queues.
#
# Replies come back over the fabric that carried the request last: $P-sto
# marks each connection (conntrack) with the fabric its latest packet from
# the tenant came in on and routes the replies by that mark.  A cut of one
# fabric therefore breaks only the path through it.  The hypervisor's own
# route to the targets (the daemon's admin-queue polls) prefers fabric 1
# (TOPO_POLL_VIA=up1), fabric 0 with a higher metric: a cut of fabric 0 is
# then a pure path failure.  (The polls follow the kernel's route, not vsn's
# paths: with TOPO_POLL_VIA=up0 a silent cut of fabric 0 makes every poll
# time out and the daemon fails and drains every backend.)
#
# Faults: `cut N` sets fabric N's bridge port towards the hypervisor to
# state 0 (disabled: carriers stay up, frames are dropped silently), `heal N`
# back to 3 (forwarding); `congest N RATE` puts a TBF on upN.
#
# Usage: scripts/testbed/topo_ctl.sh COMMAND (as root), or source it and call
# the topo_* functions.
#   up                      namespaces, vsn attach, three VMs, the daemon
#   down                    all of it gone (VMs, daemon, namespaces, pins)
#   cut N | heal N          silent cut / restore of fabric N (0 or 1)
#   congest N RATE | uncongest N     TBF on upN (e.g. 20mbit)
#   ana T STATE             ANA state of target T (1 or 2): optimized,
#                           non-optimized, inaccessible, ...
#   tenant-restart on|off   reboot the tenant VM with the tap's vnet_hdr
#   daemon-start | daemon-stop
#   vsn ARGS...             vsn in $P-hv through the daemon's socket
#   exec NAME CMDS...       a command in a guest (vm1, tgt1, tgt2)
# Environment (defaults):
#   P=vct  PIN=/sys/fs/bpf/$P  TOPO_DIR=build/topo_ctl/$P  VM_RUN=$TOPO_DIR/vms
#   TOPO_VNET_HDR=on         tenant tap vnet_hdr
#   TOPO_POLL_VIA=up1        the hypervisor's preferred route to the targets
#   TOPO_DAEMON=1            start the daemon in `up`
#   TOPO_CTL_EXTRA=          more controller keys, YAML flow ("k: v, k: v")
#   TOPO_CAPACITY=           uplink capacity (e.g. 100mbit); empty: unknown
#   TOPO_TGT_APPEND=         more kernel parameters for both targets, e.g.
#                            vsn.nullblk=irqmode=2:completion_nsec=2000000
#   TOPO_NQN=nqn.2026-11.io.vsn:ctl  TOPO_VIP=192.168.100.10
# State in $TOPO_DIR: vsn.yaml, decisions.log, daemon.err, vsn.sock,
# metrics/vsn.prom, topo.log, vms/NAME/serial.log.

TOPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
P=${P:-vct}
PIN=${PIN:-/sys/fs/bpf/$P}
TOPO_DIR=${TOPO_DIR:-$TOPO_ROOT/build/topo_ctl/$P}
export VM_RUN=${VM_RUN:-$TOPO_DIR/vms}
TOPO_VNET_HDR=${TOPO_VNET_HDR:-on}
TOPO_POLL_VIA=${TOPO_POLL_VIA:-up1}
TOPO_DAEMON=${TOPO_DAEMON:-1}
TOPO_CTL_EXTRA=${TOPO_CTL_EXTRA:-}
TOPO_CAPACITY=${TOPO_CAPACITY:-}
TOPO_TGT_APPEND=${TOPO_TGT_APPEND:-}
TOPO_NQN=${TOPO_NQN:-nqn.2026-11.io.vsn:ctl}
TOPO_VIP=${TOPO_VIP:-192.168.100.10}
TOPO_VSN=${TOPO_VSN:-$TOPO_ROOT/build/vsn}
# Both targets present the same namespace identity: after a failover the
# host's controller reconnects to the other one and keeps the namespace
# (it drops a namespace whose UUID/NGUID changed across a reconnect).
TOPO_SERIAL=vsnctl0001
TOPO_NSUUID=5e1f0c2a-7d4b-4c8e-9a10-0000000000c1
TOPO_SOCK=$TOPO_DIR/vsn.sock
TOPO_DLOG=$TOPO_DIR/decisions.log
TOPO_CFG=$TOPO_DIR/vsn.yaml
TOPO_VM_ADDR=10.0.0.2
TOPO_TGT1=10.3.0.11
TOPO_TGT2=10.3.0.12
# shellcheck source=vm.sh
. "$TOPO_ROOT/scripts/testbed/vm.sh"

topo__err() { echo "topo_ctl: $*" >&2; }
# Commands in $P-hv keep /sys/fs/bpf visible (nsenter, not ip netns exec).
topo_hv() { nsenter --net="/run/netns/$P-hv" "$@"; }
topo_vsn() { topo_hv env VSN_SOCKET="$TOPO_SOCK" "$TOPO_VSN" --pin-dir "$PIN" "$@"; }
topo_ns() { # NAME CMD...: in $P-NAME
	local ns=$1
	shift
	ip netns exec "$P-$ns" "$@"
}

# x CMD...: one set-up step; a failure is reported and remembered (set -e
# does not work in a function called from a || list).
topo__x() { "$@" || { echo "topo_ctl: failed: $*"; TOPO_FAILED=1; }; }

topo_net_up() {
	local ns n t i metric0=10 metric1=0 x=topo__x
	[ "$TOPO_POLL_VIA" = up0 ] && metric0=0 metric1=10
	TOPO_FAILED=0
	for ns in hv fab0 fab1 sto; do
		ip netns add "$P-$ns" || return 1
		ip -n "$P-$ns" link set lo up
	done
	# hypervisor: the tenant's tap, two uplinks
	$x ip -n "$P-hv" tuntap add dev tap0 mode tap
	$x ip -n "$P-hv" addr add 10.0.0.1/24 dev tap0
	$x ip link add up0 netns "$P-hv" type veth peer name f0 netns "$P-fab0"
	$x ip link add up1 netns "$P-hv" type veth peer name f1 netns "$P-fab1"
	$x ip -n "$P-hv" addr add 10.1.0.1/24 dev up0
	$x ip -n "$P-hv" addr add 10.2.0.1/24 dev up1
	for i in tap0 up0 up1; do $x ip -n "$P-hv" link set "$i" up; done
	$x ip -n "$P-hv" route add 10.3.0.0/24 via 10.1.0.2 dev up0 metric $metric0
	$x ip -n "$P-hv" route add 10.3.0.0/24 via 10.2.0.2 dev up1 metric $metric1
	$x topo_ns hv sysctl -qw net.ipv4.ip_forward=1
	# fabrics: one bridge each, between the uplink and the storage router
	$x ip link add s0 netns "$P-sto" type veth peer name x0 netns "$P-fab0"
	$x ip link add s1 netns "$P-sto" type veth peer name x1 netns "$P-fab1"
	for n in 0 1; do
		$x ip -n "$P-fab$n" link add "br$n" type bridge forward_delay 0
		$x ip -n "$P-fab$n" link set "f$n" master "br$n"
		$x ip -n "$P-fab$n" link set "x$n" master "br$n"
		for i in "br$n" "f$n" "x$n"; do $x ip -n "$P-fab$n" link set "$i" up; done
		# The fabric plays the wire: frames reaching the uplinks carry
		# complete checksums (vsn's XDP reply path needs them).
		$x topo_ns "fab$n" ethtool -K "f$n" tx off
	done
	# storage router: both fabrics, the targets' segment
	$x ip -n "$P-sto" addr add 10.1.0.2/24 dev s0
	$x ip -n "$P-sto" addr add 10.2.0.2/24 dev s1
	$x ip -n "$P-sto" link add brs type bridge forward_delay 0
	$x ip -n "$P-sto" addr add 10.3.0.1/24 dev brs
	for t in 1 2; do
		$x ip -n "$P-sto" tuntap add dev "tapt$t" mode tap
		$x ip -n "$P-sto" link set "tapt$t" master brs
		$x ip -n "$P-sto" link set "tapt$t" up
	done
	for i in s0 s1 brs; do $x ip -n "$P-sto" link set "$i" up; done
	$x topo_ns sto sysctl -qw net.ipv4.ip_forward=1
	for i in all default s0 s1; do $x topo_ns sto sysctl -qw "net.ipv4.conf.$i.rp_filter=0"; done
	# Replies leave by the fabric the connection's latest request came in on.
	$x topo_ns sto nft -f - <<-'EOF'
	table ip topo_ctl {
		chain pre {
			type filter hook prerouting priority mangle; policy accept;
			ct direction original iifname "s0" ct mark set 1
			ct direction original iifname "s1" ct mark set 2
			ct direction reply meta mark set ct mark
		}
	}
	EOF
	$x ip -n "$P-sto" route add 10.0.0.0/24 via 10.1.0.1 dev s0 table 101
	$x ip -n "$P-sto" route add 10.0.0.0/24 via 10.2.0.1 dev s1 table 102
	$x ip -n "$P-sto" rule add fwmark 1 table 101 pref 101
	$x ip -n "$P-sto" rule add fwmark 2 table 102 pref 102
	# Unmarked replies (no conntrack entry) take the polls' fabric.
	if [ "$TOPO_POLL_VIA" = up0 ]; then
		$x ip -n "$P-sto" route add 10.0.0.0/24 via 10.1.0.1 dev s0
	else
		$x ip -n "$P-sto" route add 10.0.0.0/24 via 10.2.0.1 dev s1
	fi
	# Resolve the next hops before the first storage packet.
	$x topo_ns hv ping -c1 -W2 -I up0 10.1.0.2
	$x topo_ns hv ping -c1 -W2 -I up1 10.2.0.2
	[ "$TOPO_FAILED" = 0 ]
}

topo_write_cfg() {
	local cap=${TOPO_CAPACITY:+, capacity: $TOPO_CAPACITY} extra=${TOPO_CTL_EXTRA:+, $TOPO_CTL_EXTRA}
	mkdir -p "$TOPO_DIR/metrics"
	cat >"$TOPO_CFG" <<EOF
vms:
  - {name: vm1, id: 1, interface: tap0, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0$cap}
  - {interface: up1$cap}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
  - {id: 2, uplink: up1, next_hop: fib}
backends:
  - {id: 1, name: tgt1, address: $TOPO_TGT1, port: 4420, paths: [1, 2], nqn: "$TOPO_NQN", health: nvme-tcp}
  - {id: 2, name: tgt2, address: $TOPO_TGT2, port: 4420, paths: [1, 2], nqn: "$TOPO_NQN", health: nvme-tcp, tier: 1}
volumes:
  - {id: 1, vm: vm1, address: $TOPO_VIP, port: 4420, protocol: nvme-tcp, backends: [1, 2]}
controller: {socket: $TOPO_SOCK, metrics_dir: $TOPO_DIR/metrics$extra}
EOF
}

topo_daemon_start() {
	local i
	[ -s "$TOPO_DIR/daemon.pid" ] && kill -0 "$(cat "$TOPO_DIR/daemon.pid")" 2>/dev/null && {
		topo__err "the daemon runs already"
		return 1
	}
	rm -f "$TOPO_SOCK"
	# nsenter and env exec: the pid is vsn's own.
	nsenter --net="/run/netns/$P-hv" env VSN_SOCKET="$TOPO_SOCK" "$TOPO_VSN" --pin-dir "$PIN" \
		daemon -c "$TOPO_CFG" --log "$TOPO_DLOG" >>"$TOPO_DIR/daemon.err" 2>&1 </dev/null &
	echo $! >"$TOPO_DIR/daemon.pid"
	for i in $(seq 100); do
		kill -0 "$(cat "$TOPO_DIR/daemon.pid")" 2>/dev/null || break
		[ -S "$TOPO_SOCK" ] && topo_vsn daemon status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	topo__err "the daemon did not answer on $TOPO_SOCK: $(tail -3 "$TOPO_DIR/daemon.err")"
	return 1
}

topo_daemon_stop() {
	local p i
	p=$(cat "$TOPO_DIR/daemon.pid" 2>/dev/null) || return 0
	rm -f "$TOPO_DIR/daemon.pid"
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p"
	for i in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
	kill -KILL "$p" 2>/dev/null
	return 0
}

topo_tenant_start() { # on|off
	vm_start vm1 --nic "$P-hv:tap0" --vnet-hdr "${1:-$TOPO_VNET_HDR}" \
		--append "vsn.role=initiator vsn.ip=$TOPO_VM_ADDR/24 vsn.gw=10.0.0.1"
}

topo_tenant_restart() { # on|off
	vm_stop vm1
	topo_tenant_start "$1" && vm_wait vm1 VSN-READY 120
}

topo_up() {
	local t
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	[ -x "$TOPO_VSN" ] || { topo__err "no $TOPO_VSN (run make)"; return 1; }
	[ -e "/run/netns/$P-hv" ] && { topo__err "$P-hv exists: run down first"; return 1; }
	mkdir -p "$TOPO_DIR"
	bash "$TOPO_ROOT/scripts/testbed/build.sh" >"$TOPO_DIR/testbed-build.log" 2>&1 ||
		{ topo__err "testbed build failed: $TOPO_DIR/testbed-build.log"; return 1; }
	topo_net_up >"$TOPO_DIR/topo.log" 2>&1 ||
		{ topo__err "network set-up failed: $(tail -3 "$TOPO_DIR/topo.log")"; return 1; }
	topo_write_cfg
	topo_vsn attach --vm tap0 --uplink up0,up1 >>"$TOPO_DIR/topo.log" 2>&1 ||
		{ topo__err "vsn attach failed: $(tail -3 "$TOPO_DIR/topo.log")"; return 1; }
	# Targets first: they are ready before the tenant needs them.
	for t in 1 2; do
		vm_start "tgt$t" --nic "$P-sto:tapt$t" --append "vsn.role=target \
vsn.ip=10.3.0.1$t/24 vsn.gw=10.3.0.1 vsn.nqn=$TOPO_NQN vsn.serial=$TOPO_SERIAL \
vsn.nsuuid=$TOPO_NSUUID vsn.nsnguid=$TOPO_NSUUID $TOPO_TGT_APPEND" || return 1
	done
	topo_tenant_start "$TOPO_VNET_HDR" || return 1
	vm_wait tgt1 VSN-READY 120 && vm_wait tgt2 VSN-READY 120 && vm_wait vm1 VSN-READY 120 ||
		return 1
	if [ "$TOPO_DAEMON" = 1 ]; then
		topo_daemon_start || return 1
	fi
	return 0
}

topo_down() {
	local ns
	topo_daemon_stop
	vm_stop_all
	if [ -e "/run/netns/$P-hv" ] && [ -d "$PIN" ]; then
		topo_vsn detach >/dev/null 2>&1
	fi
	for ns in hv fab0 fab1 sto; do ip netns del "$P-$ns" 2>/dev/null; done
	if [ -d "$PIN" ]; then # detach failed: the pins are ours alone
		rm -rf "$PIN"
	fi
	rm -f "$TOPO_SOCK"
	return 0
}

topo_cut() { topo_ns "fab$1" bridge link set dev "f$1" state 0; }
topo_heal() { topo_ns "fab$1" bridge link set dev "f$1" state 3; }
topo_congest() { # N RATE: TBF on upN (50 ms of queue)
	ip -n "$P-hv" link set "up$1" txqueuelen 1000 >/dev/null
	topo_ns hv tc qdisc replace dev "up$1" root tbf rate "$2" burst 16kb latency 50ms
}
topo_uncongest() { topo_ns hv tc qdisc del dev "up$1" root 2>/dev/null || true; }
topo_ana() { vm_exec "tgt$1" -t 30 "vsn-target ana all $2"; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -uo pipefail
	cmd=${1:-}
	shift || true
	case $cmd in
	up) topo_up || { topo_down; exit 1; } ;;
	down) topo_down ;;
	cut) topo_cut "${1:?fabric 0 or 1}" ;;
	heal) topo_heal "${1:?fabric 0 or 1}" ;;
	congest) topo_congest "${1:?uplink 0 or 1}" "${2:?rate}" ;;
	uncongest) topo_uncongest "${1:?uplink 0 or 1}" ;;
	ana) topo_ana "${1:?target 1 or 2}" "${2:?state}" ;;
	tenant-restart) topo_tenant_restart "${1:-on}" ;;
	daemon-start) topo_daemon_start ;;
	daemon-stop) topo_daemon_stop ;;
	vsn) topo_vsn "$@" ;;
	exec)
		n=${1:?guest name}
		shift
		vm_exec "$n" "$@"
		;;
	*)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
		exit 2
		;;
	esac
fi
