# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # DRC and MARK are the caller's; n comes from tests/lib/tap.sh
# Many hypervisors on one storage fabric, their daemons sharing an etcd
# cluster on a management network (docs/cluster.md).  Sourced, from the
# repository root, after tests/lib/tap.sh; it sources tests/lib/checks.sh
# and tests/lib/etcd.sh.  The caller sets P (namespace prefix, e.g. vsnH),
# T (scratch directory), VSN (the binary) and PY (python3), and may set
# HOSTS ("1 2 3") and BACKENDS ("1 2 3").
#
#   $P-vmN  [vm0 10.0.N.2] -- [vmif 10.0.N.1]  $P-hN  [up0 10.1.N.1] -- [hNf0 10.1.N.2]
#                                                     [up1 10.2.N.1] -- [hNf1 10.2.N.2]  $P-fab
#                                                     [mg0 10.8.0.N] -- [mgN] br0        $P-mgmt
#   $P-beK  [eth0 10.3.K.2] -- [bK 10.3.K.1]  $P-fab
#   $P-mgmt br0: 10.8.0.101..103, one etcd member on each (client 2379, peer 2380)
#
# The VM of host N also holds 10.0.N.10..79: each client connection leaves
# from an address of its own, an initiator vsn hashes to a backend on its
# own (as many VMs' NVMe hosts would be).  Host N: vsn attached in $P-hN
# (--vm vmif --uplink up0,up1), pins under /sys/fs/bpf/$P-hN, a daemon with
# its own socket, decision log and metrics in $T/hN/.  The fabric routes
# each VM subnet 10.0.N.0/24 back through host N (up0, else up1).  Every
# host's VM reaches two volumes (hosts_desired):
#   volume 1: $VIP1:4420 over backends 1..3
#   volume 2: $VIP2:4420 over backend 2 ($V2_BACKENDS)
# Backends run tests/cluster/hold.py servers on port 4420 (status in
# $T/beK.json); clients run in the VM namespaces (status $T/hN/TAG.json).
#
#   hosts_lock                                 one run per prefix at a time
#   hosts_up / hosts_down / hosts_rm_pins      the namespaces, the pins
#   hosts_attach / hosts_detach                vsn on every host
#   hosts_etcd_start                           the 3 members ($ETCD_DIR)
#   hosts_cluster_yaml N, hosts_controller_yaml N, hosts_desired CAP [N]
#                                              configuration text
#   hosts_daemon_start N FILE / hosts_daemon_stop N [SIG]
#   hosts_server_start K / hosts_server_stop K
#   hosts_client_start N TAG ADDR COUNT FIRST / hosts_client_stop N TAG
#   cli_stat, per_backend, clients_settled, hosts_poke_ok   what clients see
#   hvsn N ARGS, cstatus N, hlogq / hwait_log / mark_all    each host's vsn
#   hosts_cleanup                              all of it, for an EXIT trap

HOSTS=${HOSTS:-1 2 3}
BACKENDS=${BACKENDS:-1 2 3}
VIP1=192.168.100.10
VIP2=192.168.100.20
HOLD=${HOLD:-$PWD/tests/cluster/hold.py}
ETCD_MEMBERS=(10.8.0.101:2379:2380 10.8.0.102:2379:2380 10.8.0.103:2379:2380)
ETCD_EPS_YAML="[http://10.8.0.101:2379, http://10.8.0.102:2379, http://10.8.0.103:2379]"
ETCD_NETNS=$P-mgmt
ETCD_DIR=$T/etcd
declare -A DPID=()   # host -> daemon pid
declare -A SRVPID=() # backend -> server pid
declare -A CLIPID=() # "host/tag" -> client pid

# shellcheck source=tests/lib/checks.sh
. tests/lib/checks.sh
# shellcheck source=tests/lib/etcd.sh
. tests/lib/etcd.sh

# nsx NS CMD...: in $P-NS with ip netns exec (non-BPF tools only).
nsx() {
	local ns=$1
	shift
	ip netns exec "$P-$ns" "$@"
}
# nse NS CMD...: in $P-NS keeping this mount namespace (/sys/fs/bpf).
nse() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$P-$ns" "$@"
}
# hosts_cut H K on|off: host H's traffic to backend K dropped in the fabric,
# on both of its links (the backend stays up for every other host).
hosts_cut() {
	if [ "$3" = on ]; then
		nse fab nft -f - <<EOF
table inet vsncut$1$2 {
	chain cut {
		type filter hook forward priority 0;
		iifname { "h${1}f0", "h${1}f1" } ip daddr 10.3.$2.2 drop
	}
}
EOF
	else
		nse fab nft delete table inet "vsncut$1$2"
	fi
}
hpin() { echo "/sys/fs/bpf/$P-h$1"; }
hsock() { echo "$T/h$1/vsn.sock"; }
hlog() { echo "$T/h$1/decisions.log"; }
# hvsn N ARGS...: vsn on host N (its pins, its daemon's socket).
hvsn() {
	local h=$1
	shift
	nse "h$h" env VSN_SOCKET="$(hsock "$h")" "$VSN" --pin-dir "$(hpin "$h")" "$@"
}
# cstatus N: 'vsn -j cluster status' of host N (empty when it fails).
cstatus() { hvsn "$1" -j cluster status 2>/dev/null; }

# fatal TEXT: a setup step failed; the test cannot go on.
fatal() {
	nok "$*"
	echo "1..$n"
	exit 1
}

# hosts_lock [SECONDS]: this run alone uses the prefix $P: waits (600 s)
# while another run (this test, a demo) holds it.  The lock goes with the
# shell (fd 9).
HOSTS_LOCKED=
hosts_lock() {
	exec 9>"/run/lock/$P.hosts.lock" || return 1
	if ! flock -n 9; then
		echo "# another run uses the namespaces $P-*: waiting for it"
		flock -w "${1:-600}" 9 || return 1
	fi
	HOSTS_LOCKED=1
}

# ------------------------------------------------------------ topology

_hlink() { # NS1 IF1 NS2 IF2
	ip link add "$2" netns "$P-$1" type veth peer name "$4" netns "$P-$3" &&
		nsx "$1" ip link set "$2" up && nsx "$3" ip link set "$4" up
}

# _r CMD...: a set-up step; a failure is noted (hosts_up returns 1).
_r() { "$@" || { echo "# set-up step failed: $*"; HOSTS_UP_ERR=1; }; }

hosts_up() {
	local h k
	HOSTS_UP_ERR=0
	for ns in fab mgmt; do
		_r ip netns add "$P-$ns"
		_r nsx "$ns" ip link set lo up
	done
	_r nsx fab sysctl -qw net.ipv4.ip_forward=1
	_r nsx mgmt ip link add br0 type bridge
	_r nsx mgmt ip link set br0 up
	for k in 101 102 103; do _r nsx mgmt ip addr add "10.8.0.$k/24" dev br0; done
	for k in $BACKENDS; do
		_r ip netns add "$P-be$k"
		_r nsx "be$k" ip link set lo up
		_r _hlink "be$k" eth0 fab "b$k"
		_r nsx "be$k" ip addr add "10.3.$k.2/24" dev eth0
		_r nsx fab ip addr add "10.3.$k.1/24" dev "b$k"
		_r nsx "be$k" ip route add default via "10.3.$k.1"
	done
	for h in $HOSTS; do
		_r ip netns add "$P-h$h"
		_r ip netns add "$P-vm$h"
		_r nsx "h$h" ip link set lo up
		_r nsx "vm$h" ip link set lo up
		_r _hlink "vm$h" vm0 "h$h" vmif
		_r _hlink "h$h" up0 fab "h${h}f0"
		_r _hlink "h$h" up1 fab "h${h}f1"
		_r _hlink "h$h" mg0 mgmt "mg$h"
		_r nsx mgmt ip link set "mg$h" master br0
		_r nsx "vm$h" ip addr add "10.0.$h.2/24" dev vm0
		# Initiators: clients leave from 10.0.N.10..79 (hosts_client_start).
		for k in $(seq 10 79); do echo "addr add 10.0.$h.$k/32 dev vm0"; done >"$T/vm$h.addrs"
		_r nsx "vm$h" ip -batch "$T/vm$h.addrs"
		_r nsx "h$h" ip addr add "10.0.$h.1/24" dev vmif
		_r nsx "h$h" ip addr add "10.1.$h.1/24" dev up0
		_r nsx "h$h" ip addr add "10.2.$h.1/24" dev up1
		_r nsx "h$h" ip addr add "10.8.0.$h/24" dev mg0
		_r nsx fab ip addr add "10.1.$h.2/24" dev "h${h}f0"
		_r nsx fab ip addr add "10.2.$h.2/24" dev "h${h}f1"
		_r nsx "vm$h" ip route add default via "10.0.$h.1"
		_r nsx "h$h" sysctl -qw net.ipv4.ip_forward=1
		# The host's own traffic (health probes) leaves an uplink whose
		# carrier is gone by the other one, as vsn's paths do.
		_r nsx "h$h" sysctl -qw net.ipv4.conf.all.ignore_routes_with_linkdown=1
		_r nsx "h$h" ip route add 10.3.0.0/16 via "10.1.$h.2" dev up0
		_r nsx "h$h" ip route add 10.3.0.0/16 via "10.2.$h.2" dev up1 metric 10
		# Replies to host N's VM go back through host N: up0, else up1.
		_r nsx fab ip route add "10.0.$h.0/24" via "10.1.$h.1"
		_r nsx fab ip route add "10.0.$h.0/24" via "10.2.$h.1" metric 10
		# The fabric plays the wire: complete checksums (tests/lib/topo.sh).
		_r nsx fab ethtool -K "h${h}f0" tx off >/dev/null
		_r nsx fab ethtool -K "h${h}f1" tx off >/dev/null
	done
	return $HOSTS_UP_ERR
}

# hosts_down: every $P-* namespace removed, with whatever still runs in
# one (a process left by an aborted run).
hosts_down() {
	local ns pids
	for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086 # one pid per word
		[ -z "$pids" ] || kill -9 $pids 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	return 0
}

# hosts_rm_pins: remove what is left under every host's pin directory.
hosts_rm_pins() {
	local d
	for d in /sys/fs/bpf/"$P"-*; do
		[ -d "$d" ] || continue
		rm -f "$d"/*
		rmdir "$d" 2>/dev/null
	done
	return 0
}

# hosts_attach: vsn attached on every host (VM interface vmif, uplinks up0,up1).
hosts_attach() {
	local h out
	for h in $HOSTS; do
		mkdir -p "$T/h$h"
		if ! out=$(hvsn "$h" attach --vm vmif --uplink up0,up1 2>&1); then
			echo "$out" | diag
			return 1
		fi
	done
}

hosts_detach() {
	local h
	for h in $HOSTS; do
		[ -e "/run/netns/$P-h$h" ] && [ -d "$(hpin "$h")" ] && hvsn "$h" detach >/dev/null 2>&1
	done
	return 0
}

# fmac N K: the MAC of the fabric's end of host N's uplink K (0, 1).
fmac() { nsx fab cat "/sys/class/net/h$1f$2/address"; }

# --------------------------------------------------------------- configs

# hosts_cluster_yaml N [KEY: VALUE, ...]: host N's cluster section.
hosts_cluster_yaml() {
	echo "cluster: {endpoints: $ETCD_EPS_YAML, host: h$1, lease_ttl_s: 2, publish_ms: 300,"
	echo "  timeout_ms: 500, quorum: 2${2:+, $2}}"
}
# hosts_controller_yaml N: host N's controller section.
hosts_controller_yaml() {
	cat <<EOF
controller: {socket: $(hsock "$1"), metrics_dir: $T/h$1, tick_ms: 100, watch_ms: 20,
  silent_ms: 150, hold_down_ms: 1000, flap_window_ms: 1000, flap_max: 20,
  metrics_interval_ms: 500, health_interval_ms: 200, health_timeout_ms: 100}
EOF
}

# hosts_desired CAP [N]: the desired configuration of every host (items
# with host: hN), or with N host N's part alone, without host keys (for
# 'vsn apply' or a daemon file without a cluster section).  CAP is every
# backend's capacity; V2_BACKENDS ("2") volume 2's backends.
hosts_desired() {
	local cap=$1 only=${2:-} h k hk
	echo "backends:"
	for k in $BACKENDS; do
		echo "  - {id: $k, name: be$k, address: 10.3.$k.2, port: 4420, paths: [1, 2], health: tcp, capacity: $cap}"
	done
	for sect in uplinks paths vms volumes; do
		echo "$sect:"
		for h in $HOSTS; do
			[ -n "$only" ] && [ "$h" != "$only" ] && continue
			hk=", host: h$h"
			[ -n "$only" ] && hk=
			case $sect in
			uplinks)
				echo "  - {interface: up0$hk}"
				echo "  - {interface: up1$hk}"
				;;
			paths)
				echo "  - {id: 1, uplink: up0, next_hop: \"$(fmac "$h" 0)\"$hk}"
				echo "  - {id: 2, uplink: up1, next_hop: \"$(fmac "$h" 1)\"$hk}"
				;;
			vms) echo "  - {name: vm-h$h, id: 1, interface: vmif, addresses: [10.0.$h.0/24]$hk}" ;;
			volumes)
				echo "  - {id: 1, vm: vm-h$h, address: $VIP1, port: 4420, backends: [1, 2, 3]$hk}"
				echo "  - {id: 2, vm: vm-h$h, address: $VIP2, port: 4420, backends: [${V2_BACKENDS:-2}]$hk}"
				;;
			esac
		done
	done
}

# --------------------------------------------------------------- daemons

# hosts_daemon_start N FILE: host N's daemon in the background; waits
# until it answers on its socket.
hosts_daemon_start() {
	local h=$1 i
	# Not through a function: in the background that is a subshell, and
	# $! must be vsn itself (nsenter and env exec it).
	nsenter --net="/run/netns/$P-h$h" env VSN_SOCKET="$(hsock "$h")" "$VSN" \
		--pin-dir "$(hpin "$h")" daemon -c "$2" --log "$(hlog "$h")" >>"$T/h$h/daemon.err" 2>&1 &
	DPID[$h]=$!
	for ((i = 0; i < 100; i++)); do
		kill -0 "${DPID[$h]}" 2>/dev/null || return 1
		[ -S "$(hsock "$h")" ] && hvsn "$h" -j daemon status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# hosts_daemon_stop N [SIGNAL]: signal host N's daemon (TERM), wait for it
# (5 s, then SIGKILL); DRC is its exit status.
hosts_daemon_stop() {
	local h=$1 pid=${DPID[$1]:-} i
	DRC=
	[ -n "$pid" ] || return 0
	kill "-${2:-TERM}" "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	DRC=$?
	DPID[$h]=
}

hosts_daemons_stop() {
	local h
	for h in "${!DPID[@]}"; do hosts_daemon_stop "$h" "${1:-TERM}"; done
}

# --------------------------------------------------- servers and clients

# hosts_server_start K: backend K's hold.py server; waits until it listens.
hosts_server_start() {
	local k=$1 i
	rm -f "$T/be$k.json"
	nsenter --net="/run/netns/$P-be$k" "$PY" "$HOLD" server --port 4420 --name "be$k" \
		--status "$T/be$k.json" 2>>"$T/be$k.err" &
	SRVPID[$k]=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$T/be$k.json" ] && return 0
		sleep 0.05
	done
	return 1
}

hosts_server_stop() {
	local k=$1 pid=${SRVPID[$1]:-}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	SRVPID[$k]=
}

# hosts_client_start N TAG ADDR COUNT FIRST: COUNT connections from host
# N's VM to ADDR:4420, kept open, each from its own source address
# 10.0.N.FIRST, FIRST+1, ... (initiators: vsn hashes each to a backend);
# status in $T/hN/TAG.json.
hosts_client_start() {
	local h=$1 tag=$2
	rm -f "$T/h$h/$tag.json"
	nsenter --net="/run/netns/$P-vm$h" "$PY" "$HOLD" client --dst "$3" --port 4420 --n "$4" \
		--src "10.0.$h.$5" --status "$T/h$h/$tag.json" 2>>"$T/h$h/$tag.err" &
	CLIPID[$h/$tag]=$!
}

hosts_client_stop() { # N TAG
	local pid=${CLIPID[$1/$2]:-}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "CLIPID[$1/$2]"
}

hosts_clients_stop() {
	local k
	for k in "${!CLIPID[@]}"; do hosts_client_stop "${k%/*}" "${k#*/}"; done
}

# cli_stat N TAG [FILTER]: the client's status (jq FILTER applied).
cli_stat() { jq -c "${3:-.}" "$T/h$1/$2.json" 2>/dev/null; }

# clients_settled SECONDS TAG...: every host's TAG clients hold all their
# connections, and their counts stopped changing for a second.
clients_settled() {
	local end=$((SECONDS + $1)) tag h all prev='' cur='' since=
	shift
	while [ $SECONDS -le $end ]; do
		all=1
		cur=
		for h in $HOSTS; do
			for tag in "$@"; do
				jt "$(cli_stat "$h" "$tag")" '.open == .n' || all=0
				cur+="$(cli_stat "$h" "$tag" '[.per_backend, .connects]')"
			done
		done
		if [ $all = 1 ] && [ "$cur" = "$prev" ]; then
			lt 1 "$(sub "$(now)" "$since")" && return 0
		else
			since=$(now)
		fi
		prev=$cur
		sleep 0.2
	done
	for h in $HOSTS; do
		for tag in "$@"; do echo "# not settled: h$h $tag $(cli_stat "$h" "$tag")"; done
	done
	return 1
}

# hosts_poke_ok SECONDS H TAG...: host H's TAG clients send a line on every
# open connection (hold.py client, SIGUSR1) and get every one back within
# SECONDS, none lost: vsn still forwards every connection they hold.
hosts_poke_ok() {
	local secs=$1 h=$2 tag end ok before=() i
	shift 2
	for tag in "$@"; do before+=("$(cli_stat "$h" "$tag" '"\(.poked) \(.lost) \(.open)"' | tr -d '"')"); done
	for tag in "$@"; do kill -USR1 "${CLIPID[$h/$tag]}" 2>/dev/null; done
	end=$((SECONDS + secs))
	while :; do
		ok=1 i=0
		for tag in "$@"; do
			read -r p0 l0 o0 <<<"${before[$i]}"
			i=$((i + 1))
			jt "$(cli_stat "$h" "$tag")" ".poked >= $p0 + $o0 and .echoed == .poked and .lost == $l0" || ok=0
		done
		[ $ok = 1 ] && return 0
		[ $SECONDS -ge $end ] && break
		sleep 0.1
	done
	for tag in "$@"; do echo "# h$h $tag: $(cli_stat "$h" "$tag" '{open, poked, echoed, lost}')"; done
	return 1
}

# per_backend TAG...: connections per backend, all hosts' TAG clients
# together, as {"be1": n, ...}.
per_backend() {
	local h tag
	for h in $HOSTS; do
		for tag in "$@"; do cli_stat "$h" "$tag" '.per_backend'; done
	done | jq -sc 'reduce .[] as $o ({}; reduce ($o | to_entries[]) as $e (.; .[$e.key] += $e.value))'
}

# ---------------------------------------------------------------- etcd

# hosts_etcd_start: the 3 members in $P-mgmt (data kept in $ETCD_DIR).
hosts_etcd_start() { etcd_start "$ETCD_DIR" http "${ETCD_MEMBERS[@]}"; }

# ------------------------------------------------------- decision logs

hlines() { wc -l 2>/dev/null <"$(hlog "$1")" || echo 0; }
# hlogq N FROM FILTER / hwait_log N FROM FILTER SECONDS: logq and wait_log
# (tests/lib/checks.sh) on host N's decision log.
hlogq() { DLOG=$(hlog "$1") logq "$2" "$3"; }
hwait_log() { DLOG=$(hlog "$1") wait_log "$2" "$3" "$4"; }

# mark_all: MARK[N] = host N's decision-log length now (hlogq N "${MARK[N]}" ...).
declare -A MARK=()
mark_all() {
	local h
	for h in $HOSTS; do MARK[$h]=$(hlines "$h"); done
}

# hosts_cleanup: everything the library started, for an EXIT trap (not
# when another run held the lock: its namespaces are not ours).
hosts_cleanup() {
	[ -n "$HOSTS_LOCKED" ] || return 0
	hosts_clients_stop
	hosts_daemons_stop TERM
	local k
	for k in "${!SRVPID[@]}"; do hosts_server_stop "$k"; done
	etcd_stop_all
	hosts_detach
	hosts_down
	hosts_rm_pins
}
