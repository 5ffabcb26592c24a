#!/bin/bash
# Per-VM bandwidth (vsn bw, HTB over rtnetlink) on a veth "uplink":
#
#   vbw-hv [up0 10.77.0.1] --- [f0 10.77.0.2] vbw-fab
#
# vsn bw sets HTB up on up0; TCP flows from vbw-hv carry SO_PRIORITY =
# the VM's classid (what the datapath puts in skb->priority).  Checks the
# tree (tc), the measured rates (cap, share of what is left), a change in
# place, and that teardown leaves a clsact qdisc and its filter alone.
set -uo pipefail
cd "$(dirname "$0")/../.."

P=vbw
VSN=${VSN:-build/vsn}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/vbw.XXXXXX)
PIDS=()
. tests/lib/tap.sh
hv() { ip netns exec "$P-hv" "$@"; }
vsn() { nsenter --net="/run/netns/$P-hv" "$VSN" "$@"; }

del_ns() {
	ip netns del "$P-hv" 2>/dev/null
	ip netns del "$P-fab" 2>/dev/null
}
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	del_ns
	rm -rf "$T"
}
trap cleanup EXIT
del_ns

if ! ip netns add "$P-hv" || ! ip netns add "$P-fab" ||
	! ip link add up0 netns "$P-hv" type veth peer name f0 netns "$P-fab"; then
	echo "not ok 1 - topology"
	exit 1
fi
hv ip link set lo up
hv ip link set up0 up
hv ip addr add 10.77.0.1/24 dev up0
ip netns exec "$P-fab" ip link set lo up
ip netns exec "$P-fab" ip link set f0 up
ip netns exec "$P-fab" ip addr add 10.77.0.2/24 dev f0

# Flows: "recv PORT..." counts bytes per port and prints bit/s over the
# steady part of the run; "send HOST PORT:PRIO..." sends for DUR seconds.
cat >"$T/flow.py" <<'EOF'
import json, socket, sys, threading, time
DUR, SKIP = 5.0, 1.5
mode, args = sys.argv[1], sys.argv[2:]
if mode == "send":
    host, stop, ths = args[0], time.time() + DUR, []
    def send(port, prio):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, prio)
        s.connect((host, port))
        buf = b"x" * 65536
        try:
            while time.time() < stop:
                s.send(buf)
        except OSError:
            pass  # the receiver has its numbers and went away
        s.close()
    for a in args[1:]:
        port, prio = (int(x, 0) for x in a.split(":"))
        ths.append(threading.Thread(target=send, args=(port, prio)))
    for t in ths: t.start()
    for t in ths: t.join()
else:
    ports, got, lsn = [int(p) for p in args], {}, []
    for p in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", p)); s.listen(1); lsn.append(s); got[p] = 0
    print("ready", flush=True)
    def recv(s, p):
        c, _ = s.accept()
        while True:
            b = c.recv(1 << 20)
            if not b: break
            got[p] += len(b)
    ths = [threading.Thread(target=recv, args=(s, p), daemon=True) for s, p in zip(lsn, ports)]
    for t in ths: t.start()
    while not any(got.values()): time.sleep(0.01)
    time.sleep(SKIP); a, t0 = dict(got), time.time()
    time.sleep(DUR - SKIP - 0.8); b, t1 = dict(got), time.time()
    print(json.dumps({p: (b[p] - a[p]) * 8 / (t1 - t0) for p in ports}), flush=True)
EOF

# run_flows OUT PORT:PRIO...: start the receiver, then the senders.
run_flows() {
	local out=$1 ports=()
	shift
	for a in "$@"; do ports+=("${a%%:*}"); done
	ip netns exec "$P-fab" "$PY" "$T/flow.py" recv "${ports[@]}" >"$out" &
	local rpid=$!
	PIDS+=("$rpid")
	for _ in $(seq 50); do grep -q ready "$out" 2>/dev/null && break; sleep 0.1; done
	hv "$PY" "$T/flow.py" send 10.77.0.2 "$@"
	wait "$rpid"
}
mbit() { # mbit OUT PORT
	"$PY" -c 'import json,sys; print("%.1f" % (json.loads(open(sys.argv[1]).read().split("\n")[1])[sys.argv[2]] / 1e6))' "$1" "$2" 2>/dev/null
}
within() { # within VALUE LOW HIGH
	"$PY" -c 'import sys; v,l,h=map(float,sys.argv[1:]); sys.exit(not l <= v <= h)' "$1" "$2" "$3" 2>/dev/null
}

# Rates of one class as tc prints them ("rate 20Mbit ceil 50Mbit"), in
# bit/s: iproute2 6.1 has no JSON for classes.
cat >"$T/rates.py" <<'EOF'
import re, sys
u = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
for line in sys.stdin:
    m = re.search(r"class htb (\S+) .*rate (\d+(?:\.\d+)?)([KMG]?)bit ceil (\d+(?:\.\d+)?)([KMG]?)bit", line)
    if m and m.group(1) == sys.argv[1]:
        print(int(float(m.group(2)) * u[m.group(3)]), int(float(m.group(4)) * u[m.group(5)]))
EOF
class_rates() { # class_rates CLASSID -> "RATE CEIL"
	"$PY" "$T/rates.py" "$1" <<<"$(hv tc class show dev up0)"
}
class_sent() { # bytes sent by a class
	hv tc -s class show dev up0 | awk -v c="$1" '$1=="class" {cur=$3} cur==c && $1=="Sent" {print $2; exit}'
}
qdisc_json() { hv tc -j -s qdisc show dev up0; }
has_qdisc() { # has_qdisc KIND HANDLE
	"$PY" -c 'import json,sys; q=json.loads(sys.stdin.read()); sys.exit(not any(x["kind"]==sys.argv[1] and x["handle"]==sys.argv[2] for x in q))' "$1" "$2" <<<"$(qdisc_json)"
}
htb_bytes() {
	"$PY" -c 'import json,sys; print(sum(x.get("bytes",0) for x in json.loads(sys.stdin.read()) if x["kind"]=="htb"))' <<<"$(qdisc_json)"
}
filter_there() { grep -q "flowid 1:77" <<<"$(hv tc filter show dev up0 egress)"; }

# A clsact qdisc with a filter, there before vsn bw (as vsn's TC programs are).
hv tc qdisc add dev up0 clsact
hv tc filter add dev up0 egress prio 7 protocol ip u32 match ip dst 10.77.9.9/32 classid 1:77

check "vsn bw classid 1 is 1:101 (priority 65793)" \
	test "$(vsn bw classid 1)" = "1:101 65793"
vsn bw setup up0 50M 1:18M:20M 2:5M: 2>"$T/err"
check "bw setup up0 50M 1:18M:20M 2:5M:" test $? -eq 0
diag <"$T/err"
check "root qdisc is htb 1:" has_qdisc htb 1:
check "default class 0xffff" \
	grep -q '"default":"0xffff"' <<<"$(qdisc_json)"
check "class 1:1 rate = ceil = 50Mbit" test "$(class_rates 1:1)" = "50000000 50000000"
check "class 1:101 rate 18Mbit ceil 20Mbit" test "$(class_rates 1:101)" = "18000000 20000000"
check "class 1:102 rate 5Mbit ceil 50Mbit (max 0 = capacity)" \
	test "$(class_rates 1:102)" = "5000000 50000000"
check "class 1:ffff ceil 50Mbit, small rate" test "$(class_rates 1:ffff)" = "500000 50000000"
check "clsact and its filter survive setup" filter_there

# Two VMs at once.  HTB shares what is above the guarantees in proportion
# to them (quantum follows rate): VM 1 would get 18 + 27 * 18/23 = 39, so
# its max of 20 holds it, and VM 2 gets the rest of the 50.  Rates are TCP
# payload: about 4 % below what HTB counts (headers).
run_flows "$T/r1" 5001:$((0x10101)) 5002:$((0x10102))
r1=$(mbit "$T/r1" 5001)
r2=$(mbit "$T/r1" 5002)
echo "# measured: VM 1 (max 20) ${r1:-?} Mbit/s, VM 2 (max 50) ${r2:-?} Mbit/s, capacity 50"
check "VM 1 capped near 20 Mbit/s: ${r1:-?} (16..24)" within "${r1:-0}" 16 24
check "VM 2 gets the rest, ~30 Mbit/s: ${r2:-?} (24..36)" within "${r2:-0}" 24 36
check "together within capacity: $r1 + $r2 <= 52.5" \
	within "$("$PY" -c "print(${r1:-99}+${r2:-99})")" 0 52.5
check "VM 1's bytes went through 1:101" test "$(class_sent 1:101)" -gt 5000000
check "VM 2's bytes went through 1:102" test "$(class_sent 1:102)" -gt 5000000
before=$(class_sent 1:ffff)
hv ping -c 3 -i 0.1 -q 10.77.0.2 >/dev/null
check "unmarked traffic goes to 1:ffff" test "$(class_sent 1:ffff)" -gt "$before"

# Change in place: new limits, VM 2 gone, VM 3 new; the qdisc stays (its
# byte counter keeps counting rather than starting again at 0).
bytes0=$(htb_bytes)
vsn bw setup up0 50M 1:5M:10M 3:1M:2M 2>"$T/err"
check "bw setup again with another set" test $? -eq 0
diag <"$T/err"
check "qdisc not recreated (bytes $(htb_bytes) >= $bytes0 > 0)" \
	test "$(htb_bytes)" -ge "$bytes0" -a "$bytes0" -gt 0
check "class 1:101 changed to ceil 10Mbit" test "$(class_rates 1:101)" = "5000000 10000000"
check "class 1:103 added" test "$(class_rates 1:103)" = "1000000 2000000"
check "class 1:102 removed" test -z "$(class_rates 1:102)"
run_flows "$T/r2" 5001:$((0x10101))
r3=$(mbit "$T/r2" 5001)
echo "# measured: VM 1 (max 10) ${r3:-?} Mbit/s"
check "VM 1 capped near its new 10 Mbit/s: ${r3:-?} (8..12)" within "${r3:-0}" 8 12

# Refusals: bad input, and a root qdisc that is not vsn's.
vsn bw setup up0 50M 1:40M: 2:20M: 2>"$T/err"
check "guarantees above capacity refused" test $? -ne 0
check "  ... saying so" grep -q "more than the capacity" "$T/err"
check "  ... and changing nothing" test "$(class_rates 1:101)" = "5000000 10000000"
vsn bw setup up0 1x 2>"$T/err"
check "capacity that is not a rate refused" grep -q "'1x' is not a rate" "$T/err"
vsn bw setup up0 1G 1:2M 2>"$T/err"
check "VM spec without MAX refused" grep -q "is not VM:MIN:MAX" "$T/err"
vsn bw setup nosuch 1G 2>"$T/err"
check "unknown interface refused" grep -q "no interface 'nosuch'" "$T/err"

vsn bw teardown up0 2>"$T/err"
check "bw teardown" test $? -eq 0
check "htb root qdisc gone" not has_qdisc htb 1:
check "clsact qdisc still there" has_qdisc clsact ffff:
check "its filter still there" filter_there

hv tc qdisc add dev up0 root handle 5: htb default 1
vsn bw setup up0 1G 2>"$T/err"
check "someone else's root qdisc: setup refused" test $? -ne 0
check "  ... saying whose" grep -q "htb 5:" "$T/err"
vsn bw teardown up0 2>"$T/err"
check "teardown leaves someone else's root qdisc" has_qdisc htb 5:
check "clsact still there at the end" has_qdisc clsact ffff:

echo "# $n assertions, $failed failed"
[ "$failed" -eq 0 ]
