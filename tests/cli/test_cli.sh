#!/bin/bash
# Bad input to the vsn CLI and its config: every error exits non-zero, says
# what is wrong (config errors: FILE:LINE: section[i].field: ...), and leaves
# the maps byte for byte as they were.
#
# Topology: tests/lib/topo.sh with prefix vsnc, plus a spare veth pair
# (extra0/extra1) in vsnc-hv.  vsn is attached to vmif (VM) and up0 (uplink)
# only, so up1 and extra0 exist but are not attached.  Pin dir
# /sys/fs/bpf/vsnc.  A good config is applied, then the maps are snapshotted
# (bpftool -j map dump of vsn_volumes, vsn_backends, vsn_paths, vsn_routes,
# vsn_vm_if; sha256 of every key and value of vsn_chash and vsn_ifaces via
# tests/cli/maphash.py) and compared after each error case.
#
# Output: "ok N - ..." / "not ok N - ..." lines, diagnostics prefixed "# ".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

P=vsnc
PIN=/sys/fs/bpf/vsnc
NONE=/sys/fs/bpf/vsnc-none
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
MAPHASH=$ROOT/tests/cli/maphash.py

T=$(mktemp -d /tmp/vsnc-test.XXXXXX)
chmod 755 "$T" # the non-root cases read configs from here
START=$(date +%s)

. tests/lib/tap.sh

nsx() {
	local ns=$1
	shift
	ip netns exec "$P-$ns" "$@"
}
hv() { nsenter --net="/run/netns/$P-hv" "$@"; }
vsn() { hv "$VSN" --pin-dir "$PIN" "$@"; }
nobody() { hv setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

cleanup() {
	if [ -e "/run/netns/$P-hv" ] && [ -e "$PIN" ]; then
		vsn detach >/dev/null 2>&1
	fi
	P=$P bash "$ROOT/tests/lib/topo.sh" down
	if [ -d "$PIN" ]; then
		rm -f "$PIN"/*
		rmdir "$PIN" 2>/dev/null
	fi
	# A failed attach there (the old code) left its pins.
	[ -d "$NONE" ] && rm -f "$NONE"/* && rmdir "$NONE" 2>/dev/null
	rm -rf "$T"
	echo "# runtime $(($(date +%s) - START))s"
}
trap cleanup EXIT

fatal() {
	nok "$*"
	exit 1
}

# q STRING: STRING as an ERE matching itself.
q() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'; }

# ------------------------------------------------------------------ setup

[ "$(id -u)" = 0 ] || fatal "must run as root"
[ -x "$VSN" ] || fatal "$VSN not built (run make)"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
P=$P bash tests/lib/topo.sh down
if [ -d "$PIN" ]; then
	rm -f "$PIN"/*
	rmdir "$PIN"
fi
[ ! -e "$NONE" ] || fatal "$NONE exists; it must not for the 'not pinned' cases"
P=$P bash tests/lib/topo.sh up || fatal "topology setup"
hv ip link add extra0 type veth peer name extra1 || fatal "spare veth"
hv ip link set extra0 up
hv ip link set extra1 up

vsn attach --vm vmif --uplink up0 2>&1 | diag
[ "${PIPESTATUS[0]}" -eq 0 ] || fatal "attach --vm vmif --uplink up0"
F0_MAC=$(nsx fab cat /sys/class/net/f0/address)

C=$T/cfg
mkdir -p "$C"
cat >"$C/good.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0, capacity: 10gbit}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
  - {id: 2, uplink: up0, next_hop: "$F0_MAC", vlan: 100, dscp: 26}
backends:
  - {id: 1, name: be1, address: 10.3.1.2, paths: [1, 2]}
  - {id: 2, name: be2, address: 10.3.2.2, paths: [1]}
  - {id: 3, name: be1v6, address: "2001:db8:3:1::2", paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1, 2]}
  - {id: 2, vm: vm1, address: "2001:db8:100::10", backends: [3]}
routes:
  - {vm: vm1, volume: 1, backend: 1, path: 2}
EOF
# A different valid config: for --check (must write nothing) and, at the
# end, to show that the snapshot does see a change.
cat >"$C/good2.yaml" <<EOF
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0, capacity: 25gbit}
paths:
  - {id: 1, uplink: up0, next_hop: fib, ttl: 32}
  - {id: 3, uplink: up0, next_hop: "$F0_MAC", vlan: 200}
backends:
  - {id: 1, name: be1, address: 10.3.1.2, paths: [1, 3]}
  - {id: 2, name: be2, address: 10.3.2.2, state: draining, paths: [3]}
  - {id: 4, name: be4, address: 10.3.2.2, port: 4421, weight: 50, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1, 2, 4]}
  - {id: 5, vm: vm1, address: 192.168.100.11, backends: [4]}
routes:
  - {vm: vm1, volume: 1, backend: 2, path: 3}
EOF
vsn apply "$C/good.yaml" 2>&1 | diag
[ "${PIPESTATUS[0]}" -eq 0 ] || fatal "apply good.yaml"

SMALL="vsn_volumes vsn_backends vsn_paths vsn_routes vsn_vm_if"
# snap FILE: the maps' contents.
snap() {
	local m
	{
		for m in $SMALL; do
			echo "== $m"
			hv bpftool -j map dump pinned "$PIN/$m" || echo "DUMP FAILED"
			echo
		done
		hv "$PY" "$MAPHASH" "$PIN/vsn_chash" "$PIN/vsn_ifaces" || echo "MAPHASH FAILED"
	} >"$1" 2>&1
}
snap "$T/base.snap"
if grep -q FAILED "$T/base.snap"; then
	diag <"$T/base.snap"
	fatal "snapshot of the maps"
fi
check "baseline snapshot has the good config (2 volumes, 3 backends, 2 paths, 3 routes)" \
	test "$(hv bpftool -j map dump pinned $PIN/vsn_volumes | jq length) $(hv bpftool -j map dump pinned $PIN/vsn_backends | jq length) $(hv bpftool -j map dump pinned $PIN/vsn_paths | jq length) $(hv bpftool -j map dump pinned $PIN/vsn_routes | jq length)" = "2 3 2 3"
CHASH0=$(hv bpftool -j map dump pinned "$PIN/vsn_chash" | sha256sum | cut -d' ' -f1)
STATUS0=$(vsn -j status | jq -c '.interfaces | sort_by(.name) | map({name, role, ingress})')

# maps_same: the maps are as in the baseline snapshot.
maps_same() {
	snap "$T/now.snap"
	if cmp -s "$T/base.snap" "$T/now.snap"; then
		return 0
	fi
	diff "$T/base.snap" "$T/now.snap" | head -10 | diag
	return 1
}

# bad DESC REGEX CMD...: CMD must exit non-zero, print an error matching
# REGEX (ERE) on stderr, and leave the maps unchanged.
bad() {
	local d=$1 re=$2 rc
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	check "$d: exits non-zero ($rc)" test $rc -ne 0
	if grep -qE -- "$re" "$T/err"; then
		ok "$d: stderr names the problem"
	else
		nok "$d: stderr names the problem"
		echo "# expected /$re/, got:"
		head -5 "$T/err" | diag
	fi
	check "$d: maps unchanged" maps_same
}

# cfg NAME: path of a config file written from stdin.
cfg() {
	cat >"$C/$1.yaml"
	chmod 644 "$C/$1.yaml"
	echo "$C/$1.yaml"
}
# cerr FILE LINE FIELD: start of the error line of a config error.
cerr() { echo "^vsn: error: $(q "$1"):$2: $(q "$3"): "; }

# ------------------------------------------------ environment errors

echo "# environment: not root, no BPF filesystem, nothing pinned"
chmod 644 "$C"/*.yaml
ROOTRE="must run as root"
bad "not root: show" "$ROOTRE" nobody "$VSN" --pin-dir "$PIN" show
bad "not root: apply" "$ROOTRE" nobody "$VSN" --pin-dir "$PIN" apply "$C/good2.yaml"
bad "not root: route set" "$ROOTRE" nobody "$VSN" --pin-dir "$PIN" route set 1 1 2 2
bad "not root: backend set" "$ROOTRE" nobody "$VSN" --pin-dir "$PIN" backend set 1 down
bad "not root: attach" "$ROOTRE" nobody "$VSN" --pin-dir "$PIN" attach --vm vmif --uplink up0
bad "not root: detach" "$ROOTRE" nobody "$VSN" --pin-dir "$PIN" detach
check "not root: detach left the programs attached" \
	test "$(vsn -j status | jq -c '.interfaces | sort_by(.name) | map({name, role, ingress})')" = "$STATUS0"

mkdir -p "$T/notbpf"
bad "no BPF filesystem: show" "$(q "$T/notbpf/vsn") is not on a BPF filesystem.*mount -t bpf" \
	hv "$VSN" --pin-dir "$T/notbpf/vsn" show
bad "no BPF filesystem: apply" "$(q "$T/notbpf/vsn") is not on a BPF filesystem" \
	hv "$VSN" --pin-dir "$T/notbpf/vsn" apply "$C/good.yaml"
bad "no BPF filesystem: attach" "$(q "$T/notbpf/vsn") is not on a BPF filesystem" \
	hv "$VSN" --pin-dir "$T/notbpf/vsn" attach --vm vmif --uplink up0
check "no BPF filesystem: attach created nothing there" test -z "$(ls -A "$T/notbpf")"
bad "no BPF filesystem (VSN_PIN_DIR): status" "$(q "$T/notbpf/vsn") is not on a BPF filesystem" \
	env VSN_PIN_DIR="$T/notbpf/vsn" nsenter --net="/run/netns/$P-hv" "$VSN" status

NOTPIN="map $(q "$NONE")/vsn_[a-z_]+ not found: run 'vsn attach' first"
bad "maps not pinned: show" "$NOTPIN" hv "$VSN" --pin-dir "$NONE" show
bad "maps not pinned: status" "$NOTPIN" hv "$VSN" --pin-dir "$NONE" status
bad "maps not pinned: apply" "$NOTPIN" hv "$VSN" --pin-dir "$NONE" apply "$C/good.yaml"
bad "maps not pinned: backend set" "$NOTPIN" hv "$VSN" --pin-dir "$NONE" backend set 1 down
check "maps not pinned: nothing was created at $NONE" test ! -e "$NONE"

# ------------------------------------------------ attach errors

echo "# attach with interfaces that do not exist"
bad "attach: unknown VM interface" "unknown interface 'nosuch0'" \
	vsn attach --vm nosuch0 --uplink up0
bad "attach: unknown uplink (after a good one)" "unknown interface 'nosuch1'" \
	vsn attach --vm vmif --uplink up0,nosuch1
bad "attach: bad --xdp-mode" "--xdp-mode: 'turbo' is not one of" \
	vsn attach --vm vmif --uplink up0 --xdp-mode turbo
check "failed attaches left the programs as they were" \
	test "$(vsn -j status | jq -c '.interfaces | sort_by(.name) | map({name, role, ingress})')" = "$STATUS0"

# ------------------------------------------------ config errors

echo "# config errors: FILE:LINE: field, and nothing written"
f=$(cfg ifunk <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
  - {name: vm2, id: 2, interface: nosuch0, addresses: [10.0.6.2]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
EOF
)
bad "config: unknown VM interface" "$(cerr "$f" 3 "vms[1].interface")unknown interface 'nosuch0'" vsn apply "$f"

f=$(cfg upunk <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - interface: nosuch1
    capacity: 1g
paths:
  - {id: 1, uplink: up0, next_hop: fib}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
EOF
)
bad "config: unknown uplink interface" "$(cerr "$f" 5 "uplinks[1].interface")unknown interface 'nosuch1'" vsn apply "$f"

f=$(cfg dupvol <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
  - {id: 2, address: 10.3.2.2, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
  - id: 2
    vm: vm1
    address: 192.168.100.10
    port: 4420
    backends: [2]
EOF
)
# docs/config.md: duplicates point at the item's line (12); the address
# field's line (14) names the place as well.
bad "config: duplicate volume address" \
	"^vsn: error: $(q "$f"):(12|14): volumes\[1\]\.address: duplicate volume address 192\.168\.100\.10:4420 for vm1 \(also volumes\[0\]\)" \
	vsn apply "$f"

f=$(cfg upnotatt <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
  - {interface: up1}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
  - {id: 2, uplink: up1, next_hop: fib}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
EOF
)
# up1 must be named with the line it is declared on, as uplinks[1] or as
# the path that uses it.
bad "config: a path's uplink exists but is not attached" \
	"($(cerr "$f" 5 "uplinks[1].interface")|$(cerr "$f" 8 "paths[1].uplink")).*'up1' is not attached as an uplink" \
	vsn apply "$f"
bad "config --check: a path's uplink is not attached (checked when attached)" \
	"($(cerr "$f" 5 "uplinks[1].interface")|$(cerr "$f" 8 "paths[1].uplink")).*'up1' is not attached" \
	vsn apply --check "$f"

f=$(cfg vmnotatt <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
  - {name: vm2, id: 2, interface: extra0, addresses: [10.0.6.2]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
  - {id: 2, vm: vm2, address: 192.168.100.10, backends: [1]}
EOF
)
bad "config: a VM interface exists but is not attached" \
	"$(cerr "$f" 3 "vms[1].interface").*'extra0' is not attached as a VM interface" vsn apply "$f"

f=$(cfg vmisuplink <<'EOF'
vms:
  - {name: vm1, id: 1, interface: up0, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
EOF
)
bad "config: a VM on the uplink's interface" "$(cerr "$f" 2 "vms[0].interface")up0 is also an uplink" vsn apply "$f"

f=$(cfg syntax <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0
paths:
  - {id: 1, uplink: up0, next_hop: fib}
EOF
)
bad "config: YAML syntax error" "^vsn: error: $(q "$f"):[45]: syntax error: " vsn apply "$f"

f=$(cfg tabs <<'EOF'
vms:
	- {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
EOF
)
bad "config: YAML syntax error (tab indentation)" "^vsn: error: $(q "$f"):2: syntax error: " vsn apply "$f"

f=$(cfg unkkey <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
paths:
  - id: 1
    uplink: up0
    next_hop: fib
    colour: blue
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
EOF
)
bad "config: unknown key" "$(cerr "$f" 9 "paths[0].colour")unknown key" vsn apply "$f"

f=$(cfg unksection <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
volumez:
  - {id: 1}
EOF
)
bad "config: unknown section" "^vsn: error: $(q "$f"):3: volumez: unknown key" vsn apply "$f"

f=$(cfg vlan <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
  - id: 2
    uplink: up0
    next_hop: fib
    vlan: 4095
backends:
  - {id: 1, address: 10.3.1.2, paths: [1, 2]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
EOF
)
bad "config: vlan 4095 out of range" "$(cerr "$f" 10 "paths[1].vlan")4095 is out of range 1\.\.4094" vsn apply "$f"

f=$(cfg vlan0 <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib, vlan: 0}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
EOF
)
bad "config: vlan 0 out of range" "$(cerr "$f" 6 "paths[0].vlan")0 is out of range 1\.\.4094" vsn apply "$f"

f=$(cfg unkbe <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
volumes:
  - id: 1
    vm: vm1
    address: 192.168.100.10
    backends: [1, 7]
EOF
)
# docs/config.md: unresolved references point at the item (line 10); the
# backends list itself (line 13) would do as well.
bad "config: volume refers to an unknown backend" \
	"^vsn: error: $(q "$f"):(10|13): volumes\[0\]\.backends\[1\]: unknown backend 7" vsn apply "$f"

f=$(cfg routeunkbe <<'EOF'
vms:
  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, "2001:db8::2"]}
uplinks:
  - {interface: up0}
paths:
  - {id: 1, uplink: up0, next_hop: fib}
backends:
  - {id: 1, address: 10.3.1.2, paths: [1]}
volumes:
  - {id: 1, vm: vm1, address: 192.168.100.10, backends: [1]}
routes:
  - {vm: vm1, volume: 1, backend: 9, path: 1}
EOF
)
bad "config: route refers to an unknown backend" "$(cerr "$f" 12 "routes[0].backend")unknown backend 9" vsn apply "$f"

f=$C/nofile.yaml
rm -f "$f"
bad "config: file does not exist" "$(q "$f"): cannot open: No such file" vsn apply "$f"
bad "config: a directory instead of a file" "$(q "$C").*[Ii]s a directory" vsn apply "$C"

echo "# apply --check of a good file that differs from what is applied"
# good_check DESC CMD...: CMD exits 0, its stdout matches the last
# argument-free pattern in $WANT, and the maps are unchanged.
good_check() {
	local d=$1 rc
	shift
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	cat "$T/out" "$T/err" | head -3 | diag
	check "$d: exit 0" test $rc -eq 0
	check "$d: says the file is valid" grep -qE -- "$WANT" "$T/out"
	check "$d: maps unchanged" maps_same
}
WANT="good2\.yaml: valid \(2 volumes, 3 backends, 2 paths, 4 routes\)$"
good_check "apply --check good2.yaml" vsn apply --check "$C/good2.yaml"
WANT='"valid":true'
good_check "apply -j --check good2.yaml" vsn -j apply --check "$C/good2.yaml"
WANT="good2\.yaml: valid .*interfaces not checked"
good_check "apply --check good2.yaml as non-root (no maps)" \
	nobody "$VSN" --pin-dir "$PIN" apply --check "$C/good2.yaml"

# ------------------------------------------------ capacity

echo "# capacity: more volumes or paths than the maps can hold"
gen() { # gen FILE NVOLUMES NPATHS: vm1, one backend, NPATHS paths, NVOLUMES volumes
	"$PY" - "$@" <<'EOF'
import sys
path, nvol, npath = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    f.write("vms:\n  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, '2001:db8::2']}\n")
    f.write("uplinks:\n  - {interface: up0}\n")
    f.write("paths:\n")
    for i in range(1, npath + 1):
        f.write("  - {id: %d, uplink: up0, next_hop: fib}\n" % i)
    f.write("backends:\n  - {id: 1, address: 10.3.1.2, paths: [1]}\n")
    f.write("volumes:\n")
    # Fresh addresses: none of the applied volumes' keys.
    for i in range(1, nvol + 1):
        f.write("  - {id: %d, vm: vm1, address: 172.16.%d.%d, backends: [1]}\n"
                % (i, i // 250, 1 + i % 250))
EOF
	chmod 644 "$1"
}
gen "$C/vol1024.yaml" 1024 1
bad "1024 volumes (ids stop at 1023)" "^vsn: error: $(q "$C/vol1024.yaml"):9: volumes: 1024 entries, at most 1023" \
	vsn apply "$C/vol1024.yaml"
gen "$C/path256.yaml" 1 256
bad "256 paths (ids stop at 255)" "^vsn: error: $(q "$C/path256.yaml"):5: paths: 256 entries, at most 255" \
	vsn apply "$C/path256.yaml"
# 1023 new volume keys + the 2 applied ones > 1024 entries of vsn_volumes.
gen "$C/vol1023.yaml" 1023 1
bad "1023 new volumes while 2 others are applied: vsn_volumes would be full" \
	"vsn_volumes is full: the change needs 1025 entries, it holds 1024" vsn apply "$C/vol1023.yaml"
bad "apply --check of the same file: the full map is found without writing" \
	"vsn_volumes is full: the change needs 1025 entries, it holds 1024" \
	vsn apply --check "$C/vol1023.yaml"

# ------------------------------------------------ route / backend / show

echo "# files that are no config, or an empty one (issue 11)"
f=$(cfg empty </dev/null)
bad "config: an empty file is refused without --allow-empty, naming the flag" \
	"^vsn: error: $(q "$f"): no vms, uplinks.*--allow-empty" vsn apply "$f"
bad "config: a comment-only file is refused too (apply --check)" "--allow-empty" \
	vsn apply --check "$(printf '# nothing here\n' | cfg comments)"
printf 'root:$y$j9T$SECRETHASH:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n' >"$C/shadow"
bad "config: a shadow-like file is refused at line 1" "^vsn: error: $(q "$C/shadow"):1: " \
	vsn apply "$C/shadow"
check "config: ... and none of its content is echoed" not grep -q SECRETHASH "$T/err"
printf 'vms: []\nupl\0inks: []\n' >"$C/nul.yaml"
bad "config: a NUL byte on line 2 is reported on line 2" \
	"^vsn: error: $(q "$C/nul.yaml"):2: syntax error: control characters" vsn apply "$C/nul.yaml"
f=$(cfg multi <<'EOF2'
vms:
  - {name: vm1, id: one, interface: vmif}
uplinks:
  - {interface: up0, capacity: 10gbps}
paths:
  - {id: 1, uplink: up0, next_hop: fib, vlan: 5000}
  - {id: 2, uplink: up0, next_hop: fib, ttl: 0}
EOF2
)
bad "config: four errors in one file: the first" "$(cerr "$f" 2 "vms[0].id")expected an integer" vsn apply "$f"
check "config: ... and all four, each FILE:LINE: FIELD" eval \
	'grep -qE "^$(q "$f"):4: uplinks\[0\]\.capacity: " "$T/err" &&
	 grep -qE "^$(q "$f"):6: paths\[0\]\.vlan: " "$T/err" &&
	 grep -qE "^$(q "$f"):7: paths\[1\]\.ttl: " "$T/err"'
{
	printf 'vms: '
	head -c 200000 /dev/zero | tr '\0' '['
} >"$C/nested.yaml"
t0=$(date +%s%N)
bad "config: 200 kB of nested brackets is refused at its depth" \
	"^vsn: error: $(q "$C/nested.yaml"):1: nested deeper than 8 levels" vsn apply "$C/nested.yaml"
ms=$((($(date +%s%N) - t0) / 1000000))
check "config: ... quickly (${ms} ms for the three checks)" test "$ms" -lt 3000
truncate -s 9M "$C/huge.yaml"
bad "config: a 9 MiB file is refused for its size" "file too large" vsn apply "$C/huge.yaml"

echo "# route, backend, show, unknown command"
bad "route set: unknown path" "no path 99" vsn route set 1 1 1 99
bad "route set: path id out of range" "path: '256' is not a number from 0 to 255" vsn route set 1 1 1 256
bad "route set: unknown volume" "VM 1 has no volume 9 with backend 1" vsn route set 1 9 1 1
bad "route set: a path the backend does not allow" "path 2 is not one of backend 2's paths" \
	vsn route set 1 1 2 2
bad "route set: backend not in the volume" "VM 1 has no volume 1 with backend 3" vsn route set 1 1 3 1
bad "route set: not a number" "volume: 'one' is not a number" vsn route set 1 one 1 1
bad "route set: missing argument" "route: bad arguments" vsn route set 1 1 1
bad "route del: no such route" "no such route" vsn route del 1 9 1
bad "route conn: no such connection" "no such connection" \
	vsn route conn 1 10.0.0.2 1234 192.168.100.10 4420 1
bad "backend set: unknown id" "no backend 99" vsn backend set 99 down
bad "backend set: bad state" "state 'sideways' is not one of up, down, draining" vsn backend set 1 sideways
bad "backend set: id not a number" "backend: 'x1' is not a number" vsn backend set x1 up
bad "show: unknown table" "show: unknown table 'tables'" vsn show tables
bad "unknown command" "unknown command 'frobnicate'" vsn frobnicate
bad "unknown global option" "usage: vsn" vsn --frobnicate show
bad "no command" "usage: vsn" vsn
bad "apply without a file" "usage: vsn apply" vsn apply
bad "detach with an argument" "detach takes no arguments" vsn detach now
check "after all the errors the programs are still attached as before" \
	test "$(vsn -j status | jq -c '.interfaces | sort_by(.name) | map({name, role, ingress})')" = "$STATUS0"
CHASH1=$(hv bpftool -j map dump pinned "$PIN/vsn_chash" | sha256sum | cut -d' ' -f1)
check "bpftool -j map dump vsn_chash: same sha256 before and after all error cases" test "$CHASH0" = "$CHASH1"

# ------------------------------------------------ JSON output

echo "# -j output parses as JSON"
json_ok() {
	"$@" >"$T/out" 2>"$T/err" && jq -e . "$T/out" >/dev/null 2>&1 && return 0
	echo "# $(head -c 200 "$T/out") $(head -c 200 "$T/err")"
	return 1
}
for t in "" volumes backends paths routes connections counters; do
	check "vsn -j show ${t:-(all tables)} is valid JSON" json_ok vsn -j show $t
done
check "vsn -j status is valid JSON" json_ok vsn -j status
check "vsn -j show volumes lists the applied volumes" \
	test "$(vsn -j show volumes | jq -c 'map(.address) | sort')" = '["192.168.100.10","2001:db8:100::10"]'

# ------------------------------------------------ --help

echo "# --help of every command: exit 0, usage on stdout, no root needed"
# usage_ok CMD OPT: 'vsn CMD OPT' as non-root exits 0, prints CMD's usage
# on stdout and nothing on stderr.
usage_ok() {
	local c=$1 h=$2 rc want
	nobody "$VSN" --pin-dir "$NONE" $c $h >"$T/out" 2>"$T/err"
	rc=$?
	case $c in
	"") want="^usage: vsn \[OPTIONS\] COMMAND" ;;
	"show profile") want="^usage: vsn \[-j\] profile" ;; # the profile's own
	*) want="^usage: vsn (\[-j\] )?${c%% *}" ;;
	esac
	[ $rc -eq 0 ] && grep -qE -- "$want" "$T/out" && [ ! -s "$T/err" ] && return 0
	echo "# exit $rc; stdout: $(head -c 100 "$T/out"); stderr: $(head -c 200 "$T/err")"
	return 1
}
for c in "" attach detach apply show status route backend events telemetry profile top \
	health daemon verify bw; do
	for h in --help -h; do
		check "vsn ${c:+$c }$h: exit 0, usage on stdout (as non-root)" usage_ok "$c" "$h"
	done
done
# Help after a subcommand or a table name is help too (not an attempt to
# run it: no root, no attach, no daemon needed).
for c in "show counters" "show health" "show profile" "route set" "route conn" \
	"backend set" "daemon status" "health probe" "bw setup" "telemetry --parse on"; do
	check "vsn $c --help: exit 0, usage on stdout (as non-root)" usage_ok "$c" --help
done
check "--help touched no maps" maps_same

# ------------------------------------------------ nothing attached

echo "# nothing attached (pin dir $NONE): -j status, apply --check, a failed attach"
hv "$VSN" --pin-dir "$NONE" -j status >"$T/out" 2>"$T/err"
rc=$?
check "-j status with nothing attached: exits 1 ($rc)" test $rc -eq 1
check "-j status with nothing attached: stdout is a JSON error object" \
	eval 'test -s "$T/out" && jq -e ".attached == false and (.error | test(\"run .vsn attach. first\"))" "$T/out" >/dev/null'
head -c 300 "$T/out" | diag
hv "$VSN" --pin-dir "$NONE" apply --check "$C/good2.yaml" >"$T/out" 2>"$T/err"
rc=$?
check "apply --check with nothing attached: exit 0 ($rc)" test $rc -eq 0
check "apply --check with nothing attached: the verdict only, saying interfaces were not checked" \
	eval 'test "$(wc -l <"$T/out")" -eq 1 && grep -q "good2\.yaml: valid .*interfaces not checked.*nothing attached" "$T/out"'
check "apply --check with nothing attached: nothing on stderr (no 'map not found')" \
	test ! -s "$T/err"
cat "$T/out" "$T/err" | diag
# A bridge has no native XDP: the attach fails after loading, pinning and
# attaching the VM side.
hv ip link add vsncbr0 type bridge && hv ip link set vsncbr0 up
hv "$VSN" --pin-dir "$NONE" attach --vm extra0 --uplink vsncbr0 --xdp-mode native >"$T/out" 2>"$T/err"
rc=$?
cat "$T/err" | diag
check "attach with an uplink that has no native XDP: exits non-zero ($rc)" test $rc -ne 0
check "a failed first attach leaves no pin directory ($NONE)" test ! -e "$NONE"
check "a failed first attach leaves nothing on the VM interface it had attached (extra0)" \
	eval '! hv tc filter show dev extra0 ingress | grep -q bpf && ! hv tc qdisc show dev extra0 | grep -q clsact'
check "a failed first attach leaves nothing on the uplink (vsncbr0)" \
	eval '! hv tc qdisc show dev vsncbr0 | grep -q clsact && ! hv ip link show vsncbr0 | grep -q xdp'
hv ip link del vsncbr0
check "the failed attach with another pin dir left this one's maps alone" maps_same

# ------------------------------------------------ positive control

echo "# control: a good apply does change the snapshot"
vsn apply "$C/good2.yaml" 2>&1 | diag
check "apply good2.yaml: exit 0" test "${PIPESTATUS[0]}" -eq 0
if maps_same >/dev/null; then
	nok "the snapshot sees the change"
else
	ok "the snapshot sees the change"
fi

[ "$failed" -eq 0 ]
