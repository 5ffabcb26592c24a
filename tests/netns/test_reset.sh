#!/bin/bash
# A connection the controller marks reset (VSN_CONN_RESET, as when its
# backend fails) ends for a real TCP client at once: the datapath answers the
# client's next segment with a RST from the VIP, so the client sees
# ECONNRESET within a second instead of retransmitting into a dead backend,
# and a new connection through the VIP works right after.
#
# Standard topology (tests/lib/topo.sh, prefix vdp), vsn pins under
# /sys/fs/bpf/vdp.  A client in the VM namespace sends to the VIP every
# 10 ms; the test sets the flag on both connection entries with bpftool.
# vmif transmits without checksum offload and the client's socket checks
# every checksum, so the RST is only accepted if its checksum is right, both
# when the client's segments arrive with a partial checksum (round IPv4,
# vm0 offloading) and with a complete one (round IPv6, vm0 offload off).
# Round host: the hypervisor's own connection (host-initiator mode, TC
# egress), whose RST is handed up the uplink's receive path.
#
# Output: "ok N - ..." / "not ok N - ..." lines, diagnostics prefixed "# ".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

P=vdp
PIN=/sys/fs/bpf/vdp
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
TCPX=$ROOT/tests/netns/tcpx.py
T=$(mktemp -d /tmp/vdp-reset.XXXXXX)
PIDS=()

. tests/lib/tap.sh
. tests/lib/netns.sh
vsn() { hv "$VSN" --pin-dir "$PIN" "$@"; }
trap 'netns_down "${PIDS[@]}"' EXIT

netns_up
# The RST leaves vmif with its checksum completed in software, and the
# client's stack verifies it (veth passes CHECKSUM_NONE on as it is).
nsx hv ethtool -K vmif tx off >/dev/null || fatal "ethtool -K vmif tx off"
F0_MAC=$(nsx fab cat /sys/class/net/f0/address)

cat >"$T/vsn.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: "$F0_MAC"}
backends:
  - {id: 1, address: 10.3.1.2, port: 4420, paths: [1]}
  - {id: 2, address: "2001:db8:3:1::2", port: 4420, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, port: 4420, backends: [1]}
  - {id: 2, vm: vm1, address: "2001:db8:100::10", port: 4420, backends: [2]}
  - {id: 3, vm: host, address: 10.3.1.2, port: 4420, backends: [1]}
EOF
vsn attach --vm vmif --uplink up0,up1 >"$T/attach.out" 2>&1 || {
	diag <"$T/attach.out"
	fatal "vsn attach"
}
vsn apply "$T/vsn.yaml" >"$T/apply.out" 2>&1 || {
	diag <"$T/apply.out"
	fatal "vsn apply"
}

ip netns exec "$P-be1" "$PY" "$TCPX" server --port 4420 --log "$T/be1.log" &
PIDS+=($!)
for _ in $(seq 50); do
	grep -q listening "$T/be1.log" 2>/dev/null && break
	sleep 0.1
done
grep -q listening "$T/be1.log" 2>/dev/null || fatal "server in $P-be1 did not start"

# A client that keeps sending (1000 bytes every 10 ms, after tcpx's header
# asking for nothing back) and reports how its connection ended.
cat >"$T/client.py" <<'EOF'
import errno, socket, struct, sys, time
s = socket.create_connection((sys.argv[1], 4420), timeout=5)
s.sendall(struct.pack("!QQ", 1 << 40, 0))
print("connected", s.getsockname()[1], flush=True)
end = time.monotonic() + 10
while time.monotonic() < end:
    try:
        s.send(b"x" * 1000)
    except OSError as e:
        print("error", errno.errorcode.get(e.errno, e.errno), time.monotonic_ns(), flush=True)
        sys.exit(0)
    time.sleep(0.01)
print("timeout", flush=True)
EOF

# mark_reset SPORT: set VSN_CONN_RESET in every vsn_conns entry of the VM's
# connection from SPORT (found by its conn_id); prints "<entries> <time>".
mark_reset() {
	"$PY" - "$PIN/vsn_conns" "$1" <<'EOF'
import json, struct, subprocess, sys, time
pin, sport = sys.argv[1], int(sys.argv[2])
RESET, FLAGS, CONN_ID, VM_PORT = 16, 16, 112, 108   # include/vsn_types.h
dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned", pin],
                                 capture_output=True, text=True, check=True).stdout)
ents = [(bytes(int(x, 16) for x in e["key"]), bytearray(int(x, 16) for x in e["value"]))
        for e in dump]
ids = {struct.unpack_from("=I", v, CONN_ID)[0] for k, v in ents
       if k[37] == 0 and struct.unpack_from("!H", v, VM_PORT)[0] == sport}
n = 0
# Fabric side first: the VM-side flag makes the datapath delete both at the
# client's next packet; "exist" so an entry deleted meanwhile stays deleted.
for k, v in sorted(ents, key=lambda e: -e[0][37]):
    if struct.unpack_from("=I", v, CONN_ID)[0] in ids:
        struct.pack_into("=I", v, FLAGS, struct.unpack_from("=I", v, FLAGS)[0] | RESET)
        subprocess.run(["bpftool", "map", "update", "pinned", pin,
                        "key", "hex", *("%02x" % b for b in k),
                        "value", "hex", *("%02x" % b for b in v), "exist"], check=True)
        n += 1
print(n, time.monotonic_ns(), " ".join(map(str, sorted(ids))))
EOF
}

# entries_of IDS: how many vsn_conns entries carry one of these conn_ids.
entries_of() {
	"$PY" - "$PIN/vsn_conns" "$@" <<'EOF'
import json, struct, subprocess, sys
ids = {int(x) for x in sys.argv[2:]}
dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned", sys.argv[1]],
                                 capture_output=True, text=True, check=True).stdout)
print(sum(struct.unpack_from("=I", bytes(int(x, 16) for x in e["value"]), 112)[0] in ids
          for e in dump))
EOF
}

resets() { vsn -j show counters | jq '.reasons.reset.packets // 0'; }

# round NAME NS IFACE VIP CSUM: a client in ${P}-NS, on IFACE, reset; then
# a fresh connection.  CSUM: the RST arrives with its checksum complete
# (yes), or as a CHECKSUM_PARTIAL skb that the capture cannot judge (no).
round() {
	local name=$1 ns=$2 ifc=$3 vip=$4 csum=$5 sport= out marked t_set t_err cap r0 r1 ids
	local sum='cksum 0x[0-9a-f]+ \(correct\)'
	[ "$csum" = yes ] || sum='cksum 0x[0-9a-f]+'
	r0=$(resets)
	ip netns exec "$P-$ns" tcpdump -i "$ifc" -Q in -nn -vv -l -c 1 \
		'tcp[tcpflags] & tcp-rst != 0 or (ip6 and ip6[53] & 4 != 0)' \
		>"$T/$name.rst" 2>/dev/null &
	cap=$!
	PIDS+=($cap)
	ip netns exec "$P-$ns" "$PY" "$T/client.py" "$vip" >"$T/$name.client" 2>&1 &
	local cpid=$!
	PIDS+=($cpid)
	for _ in $(seq 50); do
		sport=$(sed -n 's/^connected //p' "$T/$name.client")
		[ -n "$sport" ] && grep -q "\"event\": \"accept\".*:$sport\"" "$T/be1.log" && break
		sleep 0.1
	done
	check "$name: client connected through $vip (port ${sport:-none}), backend accepted" \
		grep -q "\"event\": \"accept\".*:$sport\"" "$T/be1.log"
	sleep 0.3 # some data flows
	marked=$(mark_reset "$sport")
	read -r n_ent t_set ids <<<"$marked"
	check "$name: both connection entries marked reset ($n_ent)" test "${n_ent:-0}" -eq 2
	for _ in $(seq 30); do
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.1
	done
	out=$(cat "$T/$name.client")
	echo "$out" | diag
	read -r _ err t_err <<<"$(grep '^error' <<<"$out")"
	check "$name: the client's connection failed with ECONNRESET" test "${err:-}" = ECONNRESET
	local ms=$(((${t_err:-0} - ${t_set:-0}) / 1000000))
	check "$name: ... within 1 s of the mark (${ms} ms)" \
		test -n "${t_err:-}" -a "$ms" -ge 0 -a "$ms" -lt 1000
	sleep 0.3
	kill "$cap" 2>/dev/null
	wait "$cap" 2>/dev/null
	diag <"$T/$name.rst"
	check "$name: $ifc received a RST from $vip.4420 to port $sport ($sum)" \
		grep -qE "${vip//./\\.}\.4420 > .*\.$sport: Flags \[R\.\], $sum" "$T/$name.rst"
	r1=$(resets)
	check "$name: counted as reset ($r0 -> $r1)" test "$r1" -gt "$r0"
	check "$name: the connection's entries are gone" test "$(entries_of ${ids:-0})" -eq 0
	nsx "$ns" "$PY" "$TCPX" client --dst "$vip" --port 4420 --up 300000 --down 300000 \
		>"$T/$name.new" 2>&1
	local rc=$?
	"$PY" "$TCPX" verify "$T/$name.new" be1="$T/be1.log" >"$T/$name.verify" 2>&1
	check "$name: a new connection through $vip moves data both ways" \
		test "$rc" -eq 0 -a "$(grep -v '^#' "$T/$name.verify")" = be1
	grep '^#' "$T/$name.verify"
}

# IPv4: vm0 offloads its checksums, so vsn sees CHECKSUM_PARTIAL segments.
round ipv4 vm vm0 192.168.100.10 yes
# IPv6: checksums complete in the VM.
nsx vm ethtool -K vm0 tx off >/dev/null
round ipv6 vm vm0 2001:db8:100::10 yes
# The host's own connection to the backend, steered on up0's egress.
round host hv up0 10.3.1.2 no

vsn detach >/dev/null 2>&1
check "detach" test $? -eq 0
echo "1..$n"
[ "$failed" -eq 0 ]
