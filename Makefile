# vsn: adaptive storage networking datapath (eBPF) and controller.
# `make` builds into build/; `make test` installs what it needs and runs
# every test; `make demo` runs the end-to-end demo; `make lint` checks style.

BUILD    ?= build
CLANG    ?= clang
CC       ?= gcc
BPFTOOL  ?= bpftool
PYTHON   ?= /usr/bin/python3

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_HDRS  := $(wildcard bpf/lib/*.h bpf/lib/*/*.h) $(wildcard include/*.h)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

# Userspace: lib (uses nothing of ours), config (uses lib), cluster (etcd
# and the hosts' shared view: uses config and lib), daemon (uses cluster,
# config and lib) and cli (uses all of them); everything but cli/main.c is
# libvsn.a, which the vsn binary and every unit test link.
USER_DIRS := user/lib user/lib/health user/config user/cluster user/daemon user/cli
USER_SRCS := $(foreach d,$(USER_DIRS),$(wildcard $(d)/*.c))
USER_HDRS := $(foreach d,$(USER_DIRS),$(wildcard $(d)/*.h)) $(wildcard include/*.h)
LIB_SRCS  := $(filter-out user/cli/main.c,$(USER_SRCS))
LIB_OBJS  := $(patsubst user/%.c,$(BUILD)/user/%.o,$(LIB_SRCS))
SAN_OBJS  := $(patsubst user/%.c,$(BUILD)/san/%.o,$(LIB_SRCS))

PKGS      := libbpf libxdp libelf zlib libcyaml yaml-0.1 libmnl libnvme json-c libcurl
CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	     -Iinclude -Iuser -isystem $(BUILD) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lxdp -lelf -lz -lcyaml -lyaml -lmnl -lnvme -ljson-c -lcurl) -lpthread -lm
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -fno-strict-aliasing \
	      -I$(BUILD) -Iinclude -Ibpf $(BPF_EXTRA)

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer

.PHONY: all deps test lint format clean demo demo-netns demo-cluster testbed e2e bench verify

all: $(BUILD)/vsn

deps:
	@bash scripts/deps.sh

$(BUILD)/vmlinux.h:
	@mkdir -p $(BUILD)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst .bpf.o,,$(notdir $<)) > $@.tmp && mv $@.tmp $@

$(BUILD)/user/%.o: user/%.c $(USER_HDRS) $(SKELS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libvsn.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/vsn: $(BUILD)/user/cli/main.o $(BUILD)/libvsn.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Userspace unit tests, built with AddressSanitizer and UBSan, library too.
$(BUILD)/san/%.o: user/%.c $(USER_HDRS) $(SKELS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/san/libvsn.a: $(SAN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/san/libvsn.a $(USER_HDRS) $(SKELS)
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS) $(SAN_FLAGS) $< $(BUILD)/san/libvsn.a -o $@ $(LDLIBS) -lcmocka

# The etcd client against a real etcd (tests/cluster/test_etcd.sh).
$(BUILD)/cluster/etcd-client-test: tests/cluster/etcd_client_test.c $(BUILD)/san/libvsn.a \
				   $(USER_HDRS)
	@mkdir -p $(BUILD)/cluster
	$(CC) $(CFLAGS) $(SAN_FLAGS) $< $(BUILD)/san/libvsn.a -o $@ $(LDLIBS)

# Test-only: vsn with a datapath program every verifier refuses, to check
# how attach reports it (tests/cli/test_refused.sh).
$(BUILD)/refuse/vsn: $(USER_SRCS) $(USER_HDRS) $(BPF_SRCS) $(BPF_HDRS)
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/refuse BPF_EXTRA=-DVSN_SELFTEST_REFUSE all

# Test-only BPF harness (ring-buffer overload): maps come from vsn's pins.
$(BUILD)/ring_flood.bpf.o: tests/pkt/ring_flood.bpf.c $(BPF_HDRS) $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -DVSN_PINNING=0 -c $< -o $@

# make bench: its BPF wrappers and its tools (tests/bench/), and every part
# of it, or one: make bench PART=pkt|tput|react|scale|guest|cluster.  Not
# part of make test.
BENCH_DEPS := $(BUILD)/bench/pkt_bench_tc.bpf.o $(BUILD)/bench/pkt_bench_xdp.bpf.o \
	      $(BUILD)/bench/xdp_pass.bpf.o $(BUILD)/bench/vbn-tool $(BUILD)/bench/vbn-rr \
	      $(BUILD)/ring_flood.bpf.o $(BUILD)/bench/cluster-sim
$(BUILD)/bench/%.bpf.o: tests/bench/%.bpf.c $(wildcard tests/bench/*.h) $(BPF_HDRS) \
			$(BUILD)/vmlinux.h
	@mkdir -p $(BUILD)/bench
	$(CLANG) $(BPF_CFLAGS) -DVSN_PINNING=0 -Itests/bench -c $< -o $@

$(BUILD)/bench/vbn-tool: tests/bench/vbn_tool.c tests/bench/pkt_bench.h $(wildcard include/*.h)
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS) -Itests/bench $< -o $@ -lbpf -lpthread

$(BUILD)/bench/vbn-rr: tests/bench/vbn_rr.c
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS) $< -o $@ -lpthread

# Many simulated hosts' cluster threads in one process (part cluster): the
# cluster code of libvsn.a, linked as the vsn binary is.
$(BUILD)/bench/cluster-sim: tests/bench/cluster_sim.c $(BUILD)/libvsn.a $(USER_HDRS)
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS) $< $(BUILD)/libvsn.a -o $@ $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_DEPS)
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	@bash scripts/bench.sh $(PART)

# The verifier budget: every program loaded alone, processed instructions
# against a quarter of the verifier's limit.  KERNELS="host 6.1 6.12" (or
# all) also boots the testbed's Debian kernels under QEMU.
KERNELS ?= host
verify: all
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	@bash scripts/verify.sh --kernels "$(KERNELS)"

# The bench programs are built too (not run): they include the datapath's
# headers, and must not fall behind a change to them unnoticed.
test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(BUILD)/cluster/etcd-client-test \
		$(BENCH_DEPS) $(BUILD)/refuse/vsn
	@bash tests/run.sh

lint: $(SKELS)
	@bash scripts/lint.sh

format:
	clang-format -i $(USER_SRCS) $(USER_HDRS) $(BPF_SRCS) $(BPF_HDRS)

clean:
	rm -rf $(BUILD)

# The QEMU testbed (kernel, initramfs) alone, and the end-to-end suite alone.
testbed: deps
	@bash scripts/testbed/build.sh

e2e: deps
	@$(MAKE) --no-print-directory all
	@bash tests/run.sh e2e

# The demo on real kernels (QEMU guests: scripts/demo.sh), the older one in
# network namespaces with iperf3 (scripts/demo_netns.sh), and three hosts'
# daemons coordinating through etcd, in namespaces (scripts/demo_cluster.sh).
demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/testbed/build.sh
	@bash scripts/demo.sh

demo-netns: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo_netns.sh

demo-cluster: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo_cluster.sh
