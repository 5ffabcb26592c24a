#!/bin/bash
# Build the real-kernel testbed: Debian's own kernel (it has NVMe/TCP, nvmet,
# rdma_rxe) and a busybox initramfs with the guest tools, for QEMU (TCG).
#
#   scripts/testbed/build.sh [--force]
#
# From a fresh Debian 12 machine (as root): installs the packages it needs,
# downloads linux-image-KVER (KVER from `apt-cache depends linux-image-amd64`,
# or linux-image-6.12-amd64 with VSN_TESTBED_SERIES=6.12),
# unpacks it, runs depmod, and builds the initramfs in two layers:
#
#   base     modules (with their dependency closure) + host binaries and the
#            libraries ldd lists; cached by KVER and a hash of its inputs
#   overlay  the guest /init and helpers from scripts/testbed/guest/, plus
#            build/vsn and build/*.bpf.o when present; rebuilt when they change
#
# Output (build/testbed/, build/testbed-SERIES/, or $VSN_TESTBED_DIR):
#   testbed.env          KVER, KERNEL and INITRD paths, read by vm.sh
#   vmlinuz-KVER         the kernel
#   initrd-KVER.img      base and overlay archives concatenated
# A second run with nothing changed takes a second or two.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/scripts/testbed
# VSN_TESTBED_SERIES=6.12: Debian's 6.12 kernel instead of the default
# (Debian 12's own, 6.1), in its own folder so both stay cached.
SERIES=${VSN_TESTBED_SERIES:-6.1}
if [ "$SERIES" = 6.1 ]; then
	META=linux-image-amd64
	OUT=${VSN_TESTBED_DIR:-$ROOT/build/testbed}
else
	META=linux-image-$SERIES-amd64
	OUT=${VSN_TESTBED_DIR:-$ROOT/build/testbed-$SERIES}
fi
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

T0=$(date +%s%N)
step() { printf '[testbed %6.1fs] %s\n' "$(echo "$(($(date +%s%N) - T0))" | awk '{print $1/1e9}')" "$*"; }
die() { echo "testbed: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"

# Host packages: QEMU and the tools that go into the guest.
PKGS=(qemu-system-x86 busybox-static nvme-cli fio ibverbs-utils ibverbs-providers
	tcpdump kmod iproute2 bash coreutils cpio lz4 gzip zstd ethtool bpftool libc-bin
	util-linux socat tshark xdp-tools xz-utils)
# Modules the guest loads (their dependencies come from modules.dep).
MODULES=(virtio_pci virtio_net 9p 9pnet_virtio configfs null_blk nvme_tcp nvmet nvmet_tcp
	nvme_rdma nvmet_rdma rdma_rxe ib_uverbs rdma_ucm crc32_generic crc32c_generic
	veth bridge 8021q sch_netem sch_tbf cls_matchall act_gact sch_ingress cls_bpf)
# Host binaries copied into the guest (with their libraries).
BINS=(bash ip tc bridge ss nvme rdma tcpdump bpftool fio ibv_rc_pingpong ibv_devinfo
	ethtool dd xdp-loader)

# ---------------------------------------------------------------- packages
step "checking host packages"
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	step "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" \
		>/dev/null
fi

# ---------------------------------------------------------------- kernel
kver() { apt-cache depends "$META" 2>/dev/null |
	sed -n 's/^ *Depends: linux-image-\([0-9].*\)$/\1/p' | head -1; }
KVER=${VSN_TESTBED_KVER:-$(kver)}
if [ -z "$KVER" ]; then
	step "apt-cache knows no $META: apt-get update"
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	KVER=$(kver)
fi
[ -n "$KVER" ] || die "cannot find KVER from 'apt-cache depends $META'"
step "kernel $KVER"

mkdir -p "$OUT"
KDIR=$OUT/kernel/$KVER
if [ ! -e "$KDIR/.done" ]; then
	rm -rf "$KDIR"
	mkdir -p "$KDIR/dl"
	step "downloading linux-image-$KVER"
	(cd "$KDIR/dl" && apt-get -o DPkg::Lock::Timeout=600 download -q "linux-image-$KVER" 2>&1 |
		grep -v 'unsandboxed' || true)
	deb=$(ls "$KDIR"/dl/linux-image-"$KVER"_*.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || die "download of linux-image-$KVER failed"
	step "unpacking $(basename "$deb") ($(du -h "$deb" | cut -f1))"
	dpkg-deb -x "$deb" "$KDIR/root"
	rm -rf "$KDIR/dl"
	touch "$KDIR/.done"
	# Older kernels (the archive moved on) are not needed any more.
	for old in "$OUT"/kernel/*/; do
		[ "$(basename "$old")" = "$KVER" ] && continue
		step "removing old kernel $(basename "$old")"
		rm -rf "$old" "$OUT"/base-"$(basename "$old")"-*.cpio "$OUT"/*-"$(basename "$old")".img*
	done
fi
KROOT=$KDIR/root
if [ -d "$KROOT/lib/modules/$KVER" ]; then MODREL=lib/modules/$KVER
elif [ -d "$KROOT/usr/lib/modules/$KVER" ]; then MODREL=usr/lib/modules/$KVER
else die "no modules directory for $KVER in the package"; fi
MODDIR=$KROOT/$MODREL
if [ ! -s "$MODDIR/modules.dep" ]; then
	step "depmod (full tree)"
	if [ "$MODREL" = "usr/lib/modules/$KVER" ]; then
		mkdir -p "$KROOT/lib" && ln -sfn ../usr/lib/modules "$KROOT/lib/modules"
	fi
	depmod -b "$KROOT" "$KVER"
fi
VMLINUZ=$KROOT/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "no $VMLINUZ"

# ---------------------------------------------------------------- helpers
# Compressor of the initramfs layers (the guest unpacks them under TCG).
COMP=${VSN_TESTBED_COMPRESS:-lz4}
compress() {
	case $COMP in
	gzip) gzip -1 -n ;;
	zstd) zstd -q -3 -T0 ;;
	lz4) lz4 -q -l -9 ;;
	none) cat ;;
	*) die "unknown compressor $COMP" ;;
	esac
}
mkcpio() { # DIR -> stdout
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | compress
}
# Stage layout like Debian's merged /usr, so paths that ldd prints work as they are.
mkstage() {
	rm -rf "$1"
	mkdir -p "$1"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,dev,proc,sys,tmp,run,mnt,share,root,var/tmp}
	ln -s usr/bin "$1/bin"
	ln -s usr/sbin "$1/sbin"
	ln -s usr/lib "$1/lib"
	ln -s usr/lib64 "$1/lib64"
}
copy_file() { # STAGE FILE: copy FILE (dereferenced) to the same path in STAGE
	local dst=$1$2
	[ -e "$dst" ] && return 0
	mkdir -p "$(dirname "$dst")"
	cp -L "$2" "$dst"
}
copy_libs() { # STAGE FILE: the libraries FILE needs
	local lib
	if ldd "$2" 2>/dev/null | grep -q 'not found'; then
		die "$2: $(ldd "$2" | grep 'not found' | head -1)"
	fi
	for lib in $(ldd "$2" 2>/dev/null | awk '/=> \// {print $3} /^[ \t]*\// {print $1}'); do
		copy_file "$1" "$lib"
	done
}
copy_bin() { # STAGE NAME|PATH
	local p
	p=$(command -v "$2" 2>/dev/null || true)
	[ -n "$p" ] && [ -x "$p" ] || die "host binary $2 not found"
	p=$(readlink -f "$p")
	copy_file "$1" "$p"
	copy_libs "$1" "$p"
}
hash_of() { sha256sum | cut -c1-16; }

# ---------------------------------------------------------------- base layer
BASE_KEY=$({
	echo "$KVER $COMP"
	cat "$0"
	dpkg-query -W -f='${Package} ${Version}\n' "${PKGS[@]}" 2>/dev/null
} | hash_of)
BASE=$OUT/base-$KVER-$BASE_KEY.cpio
if [ "$FORCE" = 1 ] || [ ! -s "$BASE" ]; then
	step "building base layer (modules, busybox, ${#BINS[@]} host tools)"
	rm -f "$OUT"/base-*.cpio
	ST=$OUT/stage-base
	mkstage "$ST"

	# Modules: dependency closure from modules.dep.
	declare -A want=()
	resolve() { # module name -> relative path (from modules.dep)
		local n=${1//-/_}
		awk -F: -v n="$n" '{ f=$1; sub(/.*\//, "", f); sub(/\.ko(\.[a-z]+)?$/, "", f);
			gsub(/-/, "_", f); if (f == n) { print $1; exit } }' "$MODDIR/modules.dep"
	}
	add_mod() { # relative path
		local d
		[ -n "${want[$1]:-}" ] && return
		want[$1]=1
		for d in $(awk -F: -v m="$1" '$1 == m { print $2; exit }' "$MODDIR/modules.dep"); do
			add_mod "$d"
		done
	}
	for m in "${MODULES[@]}"; do
		rel=$(resolve "$m")
		if [ -z "$rel" ]; then
			grep -qE "/${m//_/[-_]}\.ko" "$MODDIR/modules.builtin" 2>/dev/null && continue
			die "module $m not in $KVER"
		fi
		add_mod "$rel"
	done
	mkdir -p "$ST/$MODREL"
	# Compressed modules (Debian's 6.12 ships .ko.xz) unpacked: busybox
	# modprobe hands the kernel the file as it is.
	for rel in "${!want[@]}"; do
		mkdir -p "$ST/$MODREL/$(dirname "$rel")"
		case $rel in
		*.ko.xz) xz -dc "$MODDIR/$rel" >"$ST/$MODREL/${rel%.xz}" ;;
		*.ko.zst) zstd -qdc "$MODDIR/$rel" >"$ST/$MODREL/${rel%.zst}" ;;
		*) cp "$MODDIR/$rel" "$ST/$MODREL/$rel" ;;
		esac
	done
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[ -f "$MODDIR/$f" ] && cp "$MODDIR/$f" "$ST/$MODREL/"
	done
	depmod -b "$ST" "$KVER"
	step "  ${#want[@]} modules"

	# Host tools with their libraries; dlopen'ed rxe verbs provider.
	for b in "${BINS[@]}"; do copy_bin "$ST" "$b"; done
	for f in /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so; do
		copy_file "$ST" "$f"
		copy_libs "$ST" "$f"
	done
	mkdir -p "$ST/etc/libibverbs.d"
	cp /etc/libibverbs.d/rxe.driver "$ST/etc/libibverbs.d/"
	# libxdp (vsn, xdp-loader) loads its multi-program dispatcher from a file;
	# without it libxdp attaches programs alone (no coexistence).
	for f in /usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o; do
		copy_file "$ST" "$f"
	done
	# bash at /bin/bash for the #! lines
	[ -e "$ST/usr/bin/bash" ] || die "no bash in the stage"

	# busybox for everything else; real binaries win over applets.
	cp /bin/busybox "$ST/usr/bin/busybox"
	for a in $(/bin/busybox --list); do
		case $a in busybox) continue ;; esac
		[ -e "$ST/usr/bin/$a" ] || [ -e "$ST/usr/sbin/$a" ] || ln -s busybox "$ST/usr/bin/$a"
	done
	# nvmet autoloads its transports through /sbin/modprobe.
	[ -L "$ST/usr/sbin/modprobe" ] || ln -sf ../bin/busybox "$ST/usr/sbin/modprobe"

	cat >"$ST/etc/passwd" <<-'EOF'
	root:x:0:0:root:/root:/bin/bash
	tcpdump:x:104:110::/nonexistent:/usr/sbin/nologin
	nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
	EOF
	cat >"$ST/etc/group" <<-'EOF'
	root:x:0:
	tcpdump:x:110:
	nogroup:x:65534:
	EOF
	echo "hosts: files" >"$ST/etc/nsswitch.conf"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$ST/etc/hosts"
	mkdir -p "$ST/etc/nvme"
	mknod -m 600 "$ST/dev/console" c 5 1
	mknod -m 666 "$ST/dev/null" c 1 3

	step "  packing base ($(du -sh "$ST" | cut -f1) unpacked, $COMP)"
	mkcpio "$ST" >"$BASE.tmp"
	mv "$BASE.tmp" "$BASE"
	rm -rf "$ST"
	step "  base layer $(du -h "$BASE" | cut -f1)"
else
	step "base layer cached ($(basename "$BASE"))"
fi

# ---------------------------------------------------------------- overlay
ST=$OUT/stage-overlay
mkstage "$ST"
install -m 755 "$HERE/guest/init" "$ST/init"
mkdir -p "$ST/usr/local/bin"
for f in "$HERE"/guest/vsn-*; do
	install -m 755 "$f" "$ST/usr/local/bin/$(basename "$f")"
done
if [ -x "$ROOT/build/vsn" ]; then
	install -m 755 "$ROOT/build/vsn" "$ST/usr/local/bin/vsn"
	copy_libs "$ST" "$ROOT/build/vsn"
fi
mkdir -p "$ST/opt/vsn"
for f in "$ROOT"/build/*.bpf.o; do
	[ -f "$f" ] && cp "$f" "$ST/opt/vsn/"
done
# The base has the top-level links already; the kernel would not replace them.
rm -f "$ST/bin" "$ST/sbin" "$ST/lib" "$ST/lib64"
OV_KEY=$({
	echo "$COMP $BASE"
	(cd "$ST" && find . -type f | LC_ALL=C sort | xargs -r sha256sum)
} | hash_of)
OVERLAY=$OUT/overlay-$OV_KEY.cpio
if [ "$FORCE" = 1 ] || [ ! -s "$OVERLAY" ]; then
	rm -f "$OUT"/overlay-*.cpio
	mkcpio "$ST" >"$OVERLAY.tmp"
	mv "$OVERLAY.tmp" "$OVERLAY"
	step "overlay layer $(du -h "$OVERLAY" | cut -f1) (guest scripts$([ -x "$ROOT/build/vsn" ] && echo ", vsn"))"
else
	step "overlay layer cached"
fi
rm -rf "$ST"

# ---------------------------------------------------------------- result
INITRD=$OUT/initrd-$KVER.img
KEY="$(basename "$BASE") $(basename "$OVERLAY")"
if [ "$FORCE" = 1 ] || [ ! -s "$INITRD" ] || [ "$(cat "$INITRD.key" 2>/dev/null)" != "$KEY" ]; then
	cat "$BASE" "$OVERLAY" >"$INITRD.tmp"
	mv "$INITRD.tmp" "$INITRD"
	echo "$KEY" >"$INITRD.key"
fi
cp -u "$VMLINUZ" "$OUT/vmlinuz-$KVER"
cat >"$OUT/testbed.env.tmp" <<EOF
KVER=$KVER
KERNEL=$OUT/vmlinuz-$KVER
INITRD=$INITRD
EOF
mv "$OUT/testbed.env.tmp" "$OUT/testbed.env"
step "ready: $OUT/testbed.env (initrd $(du -h "$INITRD" | cut -f1))"
