#!/bin/bash
# Install every Debian package that building, testing and the demo of vsn need.
# Idempotent: packages already present are skipped without touching apt.
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm libbpf-dev libxdp-dev xdp-tools bpftool libelf-dev zlib1g-dev
	libcyaml-dev libyaml-dev libmnl-dev libnvme-dev libjson-c-dev libcurl4-openssl-dev pkg-config
	# tests
	# (prometheus: for promtool, which checks the metrics text vsn writes)
	libcmocka-dev python3 python3-scapy iproute2 iperf3 tshark nftables prometheus
	bridge-utils procps psmisc util-linux kmod iputils-ping ethtool tcpdump socat jq
	# the etcd client's tests (etcdctl; openssl makes their TLS certificates)
	etcd-server etcd-client openssl
	# real-kernel testbed (QEMU guests with nvmet, nvme-tcp, rdma_rxe)
	qemu-system-x86 busybox-static nvme-cli fio ibverbs-utils ibverbs-providers cpio lz4 zstd
	# lint
	cppcheck clang-tidy clang-format
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer once, quietly.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
