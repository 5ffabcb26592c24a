#!/bin/bash
# Boot and drive testbed guests (QEMU TCG) whose NICs are taps in network
# namespaces chosen by the caller.  Source it for the functions, or run
# `vm.sh FUNCTION ARGS...` (without the vm_ prefix: vm.sh start NAME ...).
#
#   vm_start NAME --nic NS:TAP[:MAC] [--nic NS:TAP[:MAC]] [--vnet-hdr on|off]
#            [--mem MB] [--append "vsn.role=... vsn.ip=..."]
#       Boots NAME in the background.  Each tap is created (persistent, up)
#       in NS if it does not exist yet, so the caller may create, address and
#       attach programs to it before the guest boots.  QEMU runs in the first
#       NIC's namespace (nsenter, which keeps /sys/fs/bpf); a tap in another
#       namespace is created there by vm_start, opened by QEMU and then moved.
#       The guest gets a shared directory at /share (virtfs), on the host
#       $VM_RUN/NAME/share.
#   vm_wait NAME [REGEX] [TIMEOUT_S]   wait for REGEX (default VSN-READY) on
#       the serial console; fails on timeout, VSN-FAIL or QEMU exit
#   vm_exec NAME [-t TIMEOUT_S] [CMDS...]   run a bash script in the guest
#       (CMDS, or stdin without CMDS); prints its output, returns its status
#   vm_put NAME FILE... / vm_file NAME NAME   files in the shared directory
#   vm_stop NAME        QEMU monitor "quit", then TERM/KILL; deletes the taps
#                       that vm_start created
#   vm_stop_all         every guest started from this VM_RUN
# Environment: VM_RUN (state, default build/testbed/run), VSN_TESTBED_DIR.
# Serial log: $VM_RUN/NAME/serial.log; QEMU's own messages: qemu.log.

VM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The kernel series scripts/testbed/build.sh built (VSN_TESTBED_SERIES).
if [ "${VSN_TESTBED_SERIES:-6.1}" = 6.1 ]; then
	VM_TB=${VSN_TESTBED_DIR:-$VM_ROOT/build/testbed}
else
	VM_TB=${VSN_TESTBED_DIR:-$VM_ROOT/build/testbed-$VSN_TESTBED_SERIES}
fi
VM_RUN=${VM_RUN:-$VM_TB/run}

vm__err() { echo "vm: $*" >&2; }
vm__alive() { local p; p=$(cat "$VM_RUN/$1/pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

vm_start() {
	local name=$1 nics=() vnet=on mem=768 append="" env d i n ns tap mac qns
	local netargs=() moves=() created=()
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--nic) nics+=("$2"); shift 2 ;;
		--vnet-hdr) vnet=$2; shift 2 ;;
		--mem) mem=$2; shift 2 ;;
		--append) append=$2; shift 2 ;;
		*) vm__err "vm_start: unknown option $1"; return 2 ;;
		esac
	done
	[ ${#nics[@]} -ge 1 ] || { vm__err "vm_start $name: at least one --nic NS:TAP"; return 2; }
	env=$VM_TB/testbed.env
	[ -r "$env" ] || { vm__err "no $env: run scripts/testbed/build.sh"; return 1; }
	# shellcheck disable=SC1090
	. "$env"
	d=$VM_RUN/$name
	if vm__alive "$name"; then vm__err "$name is already running"; return 1; fi
	rm -rf "$d"
	mkdir -p "$d/share/ctl"
	qns=${nics[0]%%:*}
	for i in "${!nics[@]}"; do
		IFS=: read -r ns tap mac <<<"${nics[$i]}"
		[ -e "/run/netns/$ns" ] || { vm__err "no network namespace $ns"; return 1; }
		if [ -z "$mac" ]; then
			n=$(printf '%s' "$name" | cksum | cut -d' ' -f1)
			mac=$(printf '52:54:%02x:%02x:%02x:%02x' $((n >> 16 & 255)) $((n >> 8 & 255)) \
				$((n & 255)) "$i")
		fi
		if [ "$ns" = "$qns" ]; then
			if ! ip -n "$ns" link show "$tap" >/dev/null 2>&1; then
				ip -n "$ns" tuntap add dev "$tap" mode tap || return 1
				created+=("$ns:$tap")
			fi
			ip -n "$ns" link set "$tap" up
		else
			ip -n "$qns" tuntap add dev "$tap" mode tap || return 1
			ip -n "$qns" link set "$tap" up
			moves+=("$ns:$tap")
			created+=("$ns:$tap")
		fi
		netargs+=(-netdev "tap,id=n$i,ifname=$tap,script=no,downscript=no,vnet_hdr=$vnet"
			-device "virtio-net-pci,netdev=n$i,mac=$mac,romfile=")
	done
	printf '%s\n' "${created[@]}" >"$d/taps"
	nsenter --net="/run/netns/$qns" qemu-system-x86_64 -name "$name" \
		-accel tcg -cpu max -m "$mem" -smp 1 -nodefaults -display none -no-reboot \
		-kernel "$KERNEL" -initrd "$INITRD" \
		-append "console=ttyS0 quiet panic=-1 vsn.name=$name $append" \
		-serial "file:$d/serial.log" \
		-monitor "unix:$d/mon.sock,server=on,wait=off" \
		-fsdev "local,id=fs0,path=$d/share,security_model=none" \
		-device virtio-9p-pci,fsdev=fs0,mount_tag=share \
		"${netargs[@]}" >"$d/qemu.log" 2>&1 &
	echo $! >"$d/pid"
	for i in "${!moves[@]}"; do
		IFS=: read -r ns tap <<<"${moves[$i]}"
		# A persistent tap gets its carrier once QEMU has attached to it.
		for n in $(seq 200); do
			ip -n "$qns" link show "$tap" 2>/dev/null | grep -q LOWER_UP && break
			vm__alive "$name" || break
			sleep 0.05
		done
		ip -n "$qns" link show "$tap" 2>/dev/null | grep -q LOWER_UP ||
			{ vm__err "QEMU did not attach to $tap"; return 1; }
		ip -n "$qns" link set "$tap" netns "$ns" && ip -n "$ns" link set "$tap" up ||
			{ vm__err "cannot move $tap to $ns"; return 1; }
	done
	sleep 0.2
	vm__alive "$name" || { vm__err "QEMU for $name exited: $(cat "$d/qemu.log")"; return 1; }
}

vm_wait() {
	local name=$1 re=${2:-VSN-READY} t=${3:-60} d=$VM_RUN/$1 end
	end=$(($(date +%s) + t))
	while :; do
		if grep -qE "$re" "$d/serial.log" 2>/dev/null; then return 0; fi
		if grep -q 'VSN-FAIL' "$d/serial.log" 2>/dev/null; then
			vm__err "$name: $(grep VSN-FAIL "$d/serial.log" | head -3 | tr '\n' ' ')"
			return 1
		fi
		if ! vm__alive "$name"; then
			vm__err "$name: QEMU exited before /$re/; last console lines:"
			tail -15 "$d/serial.log" >&2
			return 1
		fi
		if [ "$(date +%s)" -ge "$end" ]; then
			vm__err "$name: no /$re/ within ${t}s; last console lines:"
			tail -15 "$d/serial.log" >&2
			return 1
		fi
		sleep 0.1
	done
}

vm_exec() {
	local name=$1 t=120 ctl id end rc
	shift
	if [ "${1:-}" = -t ]; then t=$2; shift 2; fi
	ctl=$VM_RUN/$name/share/ctl
	[ -d "$ctl" ] || { vm__err "no guest $name"; return 1; }
	id=$(date +%s%N)-$$-$RANDOM
	if [ $# -gt 0 ]; then printf '%s\n' "$*" >"$ctl/$id.tmp"; else cat >"$ctl/$id.tmp"; fi
	mv "$ctl/$id.tmp" "$ctl/$id.sh"
	end=$(($(date +%s) + t))
	while [ ! -e "$ctl/$id.rc" ]; do
		if ! vm__alive "$name"; then
			vm__err "$name died during vm_exec"
			cat "$ctl/$id.out" 2>/dev/null
			return 1
		fi
		if [ "$(date +%s)" -ge "$end" ]; then
			vm__err "$name: vm_exec timed out after ${t}s"
			cat "$ctl/$id.out" 2>/dev/null
			return 124
		fi
		sleep 0.1
	done
	rc=$(cat "$ctl/$id.rc")
	cat "$ctl/$id.out"
	rm -f "$ctl/$id".*
	return "$rc"
}

vm_put() { local name=$1; shift; cp "$@" "$VM_RUN/$name/share/"; }
vm_file() { echo "$VM_RUN/$1/share/$2"; }

vm_stop() {
	local name=$1 d=$VM_RUN/$1 p i ns tap
	p=$(cat "$d/pid" 2>/dev/null || true)
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
		if [ -S "$d/mon.sock" ]; then
			echo quit | timeout 2 socat - "UNIX-CONNECT:$d/mon.sock" >/dev/null 2>&1 || true
		fi
		for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -TERM "$p" 2>/dev/null && sleep 0.3
		kill -KILL "$p" 2>/dev/null || true
	fi
	rm -f "$d/pid"
	while IFS=: read -r ns tap; do
		[ -n "$tap" ] && ip -n "$ns" link del "$tap" 2>/dev/null
	done 2>/dev/null <"$d/taps"
	rm -f "$d/taps"
	return 0
}

vm_stop_all() {
	local d
	for d in "$VM_RUN"/*/; do
		[ -e "$d/pid" ] && vm_stop "$(basename "$d")"
	done
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cmd=${1:?usage: vm.sh start|wait|exec|stop|stop_all ARGS...}
	shift
	"vm_$cmd" "$@"
fi
