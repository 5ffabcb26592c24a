#!/usr/bin/python3
"""make bench, part pkt: the datapath's cost per packet.

BPF_PROG_TEST_RUN, R interleaved rounds (every case once per round, in the
same order), the median of the kernel's mean duration per run.  A program
that rewrites the packet is run inside a wrapper (pkt_bench_wrap.h) that
puts the packet back after each repetition and chooses the connection of
each repetition; the wrapper alone is measured in the same rounds and
subtracted: cost(X) = T(wrapper + X) - T(wrapper).  The last repetition is
not put back: its output and return value are checked.

References, same rounds, same wrapper: "empty" (returns at once: the
test-run floor of the hook) and "floor" (parses Ethernet/IPv4/TCP and does
one hash lookup in a table holding the same entries as vsn's).

Tables: S connections (two entries each in vsn_conns), S in BENCH_SIZES
(default 1000 and 500000: 1,000,000 entries, vsn_conns holds 2^20); "same"
runs one connection on every packet, "diff" a different one on every packet
(round robin over all S).

Cross-checks: one packet per call (the kernel's duration of each call, no
wrapper, vsn's real attached programs), and NVMe/TCP parsing of a 64 KiB
GSO super-frame with 16 PDUs, which BPF_PROG_TEST_RUN cannot build (its skb
is at most a page): those frames are written into the VM interface's veth
peer (AF_PACKET with a virtio-net header) and vsn_vm_ingress's own run time
is read from the kernel's BPF statistics (BPF_ENABLE_STATS).
"""
import json
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "pkt"))
import benchlib as B  # noqa: E402
import pktlib as P  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

NS = "vbn-pkt"
PIN = "/sys/fs/bpf/vbn-pkt"
BPIN = "/sys/fs/bpf/vbn-pktb"
OBJ_TC = os.path.join(B.OUT, "pkt_bench_tc.bpf.o")
OBJ_XDP = os.path.join(B.OUT, "pkt_bench_xdp.bpf.o")
VSN_MAPS = ("vsn_vm_if vsn_volumes vsn_backends vsn_chash vsn_paths vsn_routes vsn_conns "
            "vsn_ifaces vsn_path_stats vsn_be_stats vsn_vm_stats vsn_reasons vsn_events "
            "vsn_tel_cfg vsn_tel_stats vsn_cmds vsn_lat_hist vsn_roce_path vsn_roce_qp "
            "vsn_path_live vsn_gen").split()
BENCH_MAPS = ("bench_cfg", "bench_save", "bench_floor")
VIP, BE1, BE_PORT, ROCE_BE = "192.168.100.10", "10.3.1.2", 4421, "10.3.2.2"
VM0, SYN0, CALL_VM, SUPER_VM = "10.64.0.0", "10.96.0.0", "10.63.0.1", "10.63.0.2"
SPORT, RSPORT, SEQ0 = 40000, 49152, 1000000
VM_MAC, GW_MAC, NH_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"
F_RESTORE, F_DELETE, F_SEQ = 1, 2, 4
SADDR, DADDR = 26, 30                      # IPv4 address offsets in the frame
TC_OK, TC_SHOT, TC_REDIRECT = 0, 2, 7
XDP_DROP, XDP_PASS, XDP_REDIRECT = 1, 2, 4
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "100000"))
SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "1000,500000").split(",")]
CALLS = int(os.environ.get("BENCH_CALLS", "20000"))


def ip_add(a, i):
    v = struct.unpack("!I", bytes(int(x) for x in a.split(".")))[0] + i
    return ".".join(str(b) for b in struct.pack("!I", v))


def capsule(opc=0x02, cid=7, slba=1000, nlb=0, data=b""):
    """One NVMe/TCP CapsuleCmd PDU (hlen 72, no digests), data in capsule."""
    sqe = bytearray(64)
    sqe[0] = opc
    sqe[2:4] = cid.to_bytes(2, "little")
    sqe[4:8] = (1).to_bytes(4, "little")           # nsid
    sqe[40:48] = slba.to_bytes(8, "little")
    sqe[48:50] = nlb.to_bytes(2, "little")
    pdo = 72 if data else 0
    return bytes([0x04, 0, 72, pdo]) + (72 + len(data)).to_bytes(4, "little") + bytes(sqe) + data


def c2h_data(cid=7, datao=0, n=1424):
    """One NVMe/TCP C2HData PDU (hlen 24, no digests) with n data bytes: a
    1448-byte segment of a read's data, the header at its start."""
    hdr = bytes([0x07, 0, 24, 24]) + (24 + n).to_bytes(4, "little")
    hdr += cid.to_bytes(2, "little") + bytes(2) + datao.to_bytes(4, "little")
    hdr += n.to_bytes(4, "little") + bytes(4)
    return hdr + bytes(n)


def pad(frame):
    """Ethernet padding up to the wrapper's head (IP lengths unchanged)."""
    return frame + bytes(max(0, 64 - len(frame)))


def to_storage(payload=b"", flags="PA", dport=4420, src=VM0, seq=SEQ0):
    return pad(bytes(Ether(src=VM_MAC, dst=GW_MAC) / IP(src=src, dst=VIP) /
                     TCP(sport=SPORT, dport=dport, flags=flags, seq=seq, ack=1) / Raw(payload)))


class Bench:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="vbn-pkt.")
        self.files = {}
        self.ctr = {}          # run counter per case (continues across rounds)
        self.parse = None
        self.result = {"config": {"rounds": ROUNDS, "repeat": REPEAT, "sizes": SIZES,
                                  "calls": CALLS}, "sizes": {}, "checks": []}

    # -- setup ---------------------------------------------------------------
    def setup(self):
        B.progress("namespace %s, vsn attach, bench programs" % NS)
        B.netns_add(NS)
        for a, b in (("vmif", "vmp"), ("up0", "upp")):
            B.sh("ip", "-n", NS, "link", "add", a, "type", "veth", "peer", "name", b)
            for d in (a, b):
                B.sh("ip", "netns", "exec", NS, "sysctl", "-qw",
                     "net.ipv6.conf.%s.disable_ipv6=1" % d, check=False)
                B.sh("ip", "-n", NS, "link", "set", d, "up")
        B.vsn(PIN, "attach", "--vm", "vmif", "--uplink", "up0", ns=NS)
        # The veth vmif stands in for a tap: XDP redirects its replies itself
        # (attach leaves a veth's to TC, lib/xfer.h).
        idx = json.loads(B.sh("ip", "-n", NS, "-j", "link", "show", "vmif").stdout)[0]["ifindex"]
        B.sh("bpftool", "map", "update", "pinned", PIN + "/vsn_reply_tc", "key",
             *["%d" % x for x in struct.pack("=I", idx)], "value", "0", "0", "0", "0")
        cfg = os.path.join(self.tmp, "vsn.yaml")
        with open(cfg, "w") as f:
            f.write("vms:\n  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, '2001:db8::2', 10.63.0.0/16, 10.64.0.0/10],"
                    "    max_connections: 0, connection_rate: 0}\n"
                    "uplinks:\n  - {interface: up0}\n"
                    'paths:\n  - {id: 1, uplink: up0, next_hop: "%s"}\n'
                    "backends:\n  - {id: 1, address: %s, port: %d, paths: [1]}\n"
                    "  - {id: 2, address: %s, port: 4791, paths: [1]}\n"
                    "volumes:\n  - {id: 1, vm: vm1, address: %s, port: 4420, backends: [1]}\n"
                    "  - {id: 2, vm: vm1, address: %s, protocol: roce, backends: [2]}\n"
                    % (NH_MAC, BE1, BE_PORT, ROCE_BE, VIP, ROCE_BE))
        B.vsn(PIN, "apply", cfg, ns=NS)
        self.up0_mac = B.macaddr(NS, "up0")
        self.vmif = B.ifindex(NS, "vmif")
        self.up0 = B.ifindex(NS, "up0")
        os.makedirs(BPIN)
        args = []
        for m in VSN_MAPS:
            args += ["map", "name", m, "pinned", "%s/%s" % (PIN, m)]
        B.sh("bpftool", "prog", "loadall", OBJ_TC, BPIN + "/tc", *args, "pinmaps",
             BPIN + "/maps")
        for m in BENCH_MAPS:
            args += ["map", "name", m, "pinned", "%s/maps/%s" % (BPIN, m)]
        B.sh("bpftool", "prog", "loadall", OBJ_XDP, BPIN + "/xdp", *args, "pinmaps",
             BPIN + "/xmaps")
        self.ctx_vm = self.file("ctx_vm", P.skb_ctx(self.vmif))
        self.ctx_up = self.file("ctx_up", P.skb_ctx(self.up0))
        self.ctx_xdp = self.file("ctx_xdp", P.xdp_ctx(self.up0))
        self.pk = {
            "data": to_storage(b"x" * 72),
            "capsule": to_storage(capsule()),
            "syn": to_storage(flags="S", src=SYN0, seq=SEQ0 - 1),
            "pass": to_storage(b"x" * 72, dport=22),
            "reply": bytes(Ether(src=NH_MAC, dst=self.up0_mac) / IP(src=BE1, dst=VM0) /
                           TCP(sport=BE_PORT, dport=SPORT, flags="PA", seq=5000, ack=SEQ0) /
                           Raw(b"y" * 72)),
            "roce": P.roce_v4(VM_MAC, GW_MAC, VM0, ROCE_BE, RSPORT, payload=bytes(48)),
            # A read's data towards the VM, one C2HData PDU per segment.
            "c2h": bytes(Ether(src=NH_MAC, dst=self.up0_mac) / IP(src=BE1, dst=VM0) /
                         TCP(sport=BE_PORT, dport=SPORT, flags="PA", seq=SEQ0, ack=SEQ0) /
                         Raw(c2h_data())),
        }
        for k, v in self.pk.items():
            self.file("pkt_" + k, v)

    def file(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        self.files[name] = path
        return path

    def teardown(self):
        if os.path.isdir(BPIN):
            B.unpin(BPIN)
        if os.path.exists("/run/netns/" + NS) and os.path.isdir(PIN):
            B.vsn(PIN, "detach", ns=NS, check=False)
        B.netns_del(NS)
        if os.path.isdir(PIN):
            B.unpin(PIN)

    def set_parse(self, mode):
        """False: parsing off; True: on, every event (vsn's default);
        an integer N: on, one command/response event in N."""
        if self.parse != mode:
            sample = 1 if mode is True or mode is False else mode
            B.vsn(PIN, "telemetry", "--parse", "on" if mode is not False else "off",
                  "--sample", sample, ns=NS)
            self.parse = mode

    # -- tables --------------------------------------------------------------
    def fill(self, proto, n, addr0=VM0, floor=True, seq0=SEQ0):
        args = ["fill", "--map", PIN + "/vsn_conns", "--n", n, "--addr0", addr0,
                "--vm_ifindex", self.vmif, "--vm_mac", VM_MAC, "--gw_mac", GW_MAC,
                "--path", 1, "--seq0", seq0]
        if proto == "tcp":
            args += ["--vip", VIP, "--vport", 4420, "--be", BE1, "--bport", BE_PORT,
                     "--sport", SPORT, "--volume", 1, "--backend", 1]
        else:
            args += ["--proto", "udp", "--vip", ROCE_BE, "--vport", 4791, "--be", ROCE_BE,
                     "--bport", 4791, "--sport", RSPORT, "--volume", 2, "--backend", 2]
        if floor:
            args += ["--floor", BPIN + "/maps/bench_floor"]
        return B.tool(*args, ns=NS)

    def tel(self):
        return json.loads(B.vsn(PIN, "-j", "show", "telemetry", ns=NS).stdout)["stats"]

    def clear(self):
        B.tool("clear", "--map", PIN + "/vsn_conns", ns=NS)
        B.tool("clear", "--map", BPIN + "/maps/bench_floor", ns=NS)

    # -- one measurement -----------------------------------------------------
    def run(self, key, prog, pkt, ctx, n=1, field=SADDR, addr0=VM0, flags=F_RESTORE,
            seq_step=0, repeat=REPEAT, drain=False, stage=0):
        ctr = self.ctr.get(key, 0)
        out = os.path.join(self.tmp, "out")
        args = ["run", "--prog", prog, "--data", self.files["pkt_" + pkt], "--ctx", ctx,
                "--repeat", repeat, "--out", out, "--cfg", BPIN + "/maps/bench_cfg",
                "--n", n, "--field", field, "--addr0", addr0, "--flags", flags,
                "--seq0", SEQ0, "--seq_step", seq_step, "--ctr", ctr, "--stage", stage]
        if drain:
            args += ["--drain", PIN + "/vsn_events"]
        r = B.tool(*args, ns=NS)
        self.ctr[key] = ctr + repeat
        with open(out, "rb") as f:
            r["out"] = f.read()
        r["last_conn"] = (ctr + repeat - 1) % n
        return r


# What each case runs: (program, packet, context, field, addr0, flags,
# seq_step, parse, expected return value, output check, repeat factor, drain).
def cases(b, group):
    tc, xdp = BPIN + "/tc/", BPIN + "/xdp/"
    vm, up, xc = b.ctx_vm, b.ctx_up, b.ctx_xdp
    fwd = ("fwd", None)
    if group == "tcp":
        return {
            "hit": (tc + "b_w_vm", "data", vm, SADDR, VM0, F_RESTORE, 0, False, TC_REDIRECT,
                    fwd, 1, False),
            "syn": (tc + "b_w_vm", "syn", vm, SADDR, SYN0, F_RESTORE | F_DELETE, 0, False,
                    TC_REDIRECT, ("fwd", "syn"), 0.05, True),
            "reply_xdp": (xdp + "bx_w_up", "reply", xc, DADDR, VM0, F_RESTORE, 0, False,
                          XDP_REDIRECT, ("rev", None), 1, False),
            "reply_tc": (tc + "b_w_up", "reply", up, DADDR, VM0, F_RESTORE, 0, False,
                         TC_REDIRECT, ("rev", None), 1, False),
            "parse_on": (tc + "b_w_vm", "capsule", vm, SADDR, VM0, F_RESTORE | F_SEQ, 72, True,
                         TC_REDIRECT, fwd, 0.4, True),
            "parse_off": (tc + "b_w_vm", "capsule", vm, SADDR, VM0, F_RESTORE | F_SEQ, 72,
                          False, TC_REDIRECT, fwd, 0.4, True),
            "parse_on_s64": (tc + "b_w_vm", "capsule", vm, SADDR, VM0, F_RESTORE | F_SEQ, 72,
                             64, TC_REDIRECT, fwd, 0.4, True),
            "c2h_on": (xdp + "bx_w_up", "c2h", xc, DADDR, VM0, F_RESTORE | F_SEQ, 1448, True,
                       XDP_REDIRECT, ("rev", None), 1, False),
            "c2h_off": (xdp + "bx_w_up", "c2h", xc, DADDR, VM0, F_RESTORE | F_SEQ, 1448,
                        False, XDP_REDIRECT, ("rev", None), 1, False),
            "pass": (tc + "b_w_vm", "pass", vm, SADDR, VM0, F_RESTORE, 0, False, TC_OK,
                     ("same", None), 1, False),
            # references
            "empty": (tc + "b_empty", "data", vm, 0, VM0, 0, 0, None, TC_OK, None, 1, False),
            "w_none": (tc + "b_w_none", "data", vm, SADDR, VM0, F_RESTORE, 0, None, TC_OK,
                       None, 1, False),
            "w_none_del": (tc + "b_w_none", "syn", vm, SADDR, SYN0, F_RESTORE | F_DELETE, 0,
                           None, TC_OK, None, 0.05, False),
            "floor": (tc + "b_w_floor", "data", vm, SADDR, VM0, F_RESTORE, 0, None, TC_SHOT,
                      None, 1, False),
            "cal_ktime": (tc + "b_cal_ktime", "data", vm, 0, VM0, 0, 0, None, TC_OK, None, 1,
                          False),
            "cal_coarse": (tc + "b_cal_coarse", "data", vm, 0, VM0, 0, 0, None, TC_OK, None, 1,
                           False),
            "cal_csum_diff": (tc + "b_cal_csum_diff", "data", vm, 0, VM0, 0, 0, None, TC_OK,
                              None, 1, False),
            # Discarded records hold their space until read: at most 40 %
            # of the repetitions fit the ring.
            "cal_ringbuf": (tc + "b_cal_ringbuf", "data", vm, 0, VM0, 0, 0, None, TC_OK, None,
                            0.4, True),
            "x_empty": (xdp + "bx_empty", "reply", xc, 0, VM0, 0, 0, None, XDP_PASS, None, 1,
                        False),
            "x_w_none": (xdp + "bx_w_none", "reply", xc, DADDR, VM0, F_RESTORE, 0, None,
                         XDP_PASS, None, 1, False),
            "x_floor": (xdp + "bx_w_floor", "data", xc, SADDR, VM0, F_RESTORE, 0, None,
                        XDP_DROP, None, 1, False),
        }
    return {
        "roce": (tc + "b_w_vm", "roce", vm, SADDR, VM0, F_RESTORE, 0, False, TC_REDIRECT,
                 ("roce", None), 1, False),
        "empty": (tc + "b_empty", "roce", vm, 0, VM0, 0, 0, None, TC_OK, None, 1, False),
        "w_none": (tc + "b_w_none", "roce", vm, SADDR, VM0, F_RESTORE, 0, None, TC_OK, None, 1,
                   False),
        "floor": (tc + "b_w_floor", "roce", vm, SADDR, VM0, F_RESTORE, 0, None, TC_SHOT, None,
                  1, False),
    }


def stage_cases(b):
    """b_w_stage 1..8: vsn's hit path cut after each step (ablation)."""
    return {"stage%d" % i: (BPIN + "/tc/b_w_stage", "data", b.ctx_vm, SADDR, VM0, F_RESTORE, 0,
                            False, TC_REDIRECT if i >= 7 else TC_OK,
                            ("fwd", None) if i == 8 else None, 1, False)
            for i in range(1, 9)}


def check_out(b, kind, r, n, addr0):
    """The last repetition's output: what vsn must have written."""
    if kind is None:
        return None
    what, sub = kind
    vm = ip_add(addr0, r["last_conn"])
    try:
        p = Ether(r["out"])
        ip = p[IP]
        if what == "fwd":
            ok = (p.dst == NH_MAC and p.src == b.up0_mac and ip.dst == BE1 and ip.src == vm and
                  ip[TCP].dport == BE_PORT and ip[TCP].sport == SPORT)
            if sub == "syn":
                ok = ok and ip[TCP].flags == "S"
        elif what == "rev":
            ok = (p.dst == VM_MAC and p.src == GW_MAC and ip.src == VIP and ip.dst == vm and
                  ip[TCP].sport == 4420 and ip[TCP].dport == SPORT)
        elif what == "roce":
            ok = (p.dst == NH_MAC and p.src == b.up0_mac and ip.dst == ROCE_BE and ip.src == vm
                  and ip[UDP].dport == 4791)
        else:  # passed untouched
            ok = p.dst == GW_MAC and ip.src == vm and ip.dst == VIP and ip[TCP].dport == 22
    except (IndexError, AttributeError) as e:
        return "unparsable output: %s" % e
    return None if ok else "unexpected output: %s" % Ether(r["out"]).summary()


def measure_group(b, size, group, res):
    cs = cases(b, group)
    if group == "tcp":
        cs.update(stage_cases(b))
    variants = ("same", "diff")
    raw = {v: {k: [] for k in cs} for v in variants}
    errors = []
    # Parsing toggles as rarely as possible: the cases that need it on run
    # last in each variant.
    order = sorted(cs, key=lambda k: (cs[k][7] not in (None, False), str(cs[k][7])))
    for rnd in range(ROUNDS):
        for var in variants:
            # "same": connection number size, which "diff" never visits.
            n, base = (1, size) if var == "same" else (size, 0)
            t0 = b.tel()
            for name in order:
                (prog, pkt, ctx, field, addr0, flags, step, parse, ret, kind, rf,
                 drain) = cs[name]
                if parse is not None:
                    b.set_parse(parse)
                nn = 1 if field == 0 else n
                addr0 = ip_add(addr0, base)
                rep = max(1000, int(REPEAT * rf))
                stage = int(name[5:]) if name.startswith("stage") else 0
                # The parser's state follows the sequence numbers of the runs
                # with parsing on: those on one packet kind (one direction's
                # entries) share one count; parsing off its own.
                key = "%d/%s/%s/%s" % (size, group, var,
                                       "parse:" + pkt if step and parse else name)
                if key not in b.ctr and not (step and parse):
                    # Each case starts its round robin elsewhere: a run never
                    # visits the connections the run before it just warmed.
                    b.ctr[key] = order.index(name) * rep
                r = b.run(key, prog, pkt, ctx, n=nn, field=field,
                          addr0=addr0, flags=flags, seq_step=step, repeat=rep, drain=drain,
                          stage=stage)
                raw[var][name].append(r["duration"])
                if r["retval"] != ret:
                    errors.append("%s %s %s: returned %d, expected %d"
                                  % (size, var, name, r["retval"], ret))
                elif rnd == ROUNDS - 1:
                    e = check_out(b, kind, r, nn, addr0)
                    if e:
                        errors.append("%s %s %s: %s" % (size, var, name, e))
            b.set_parse(False)
            # The parser must have stayed in step, and no event been lost.
            t1 = b.tel()
            for k in ("resyncs", "events_dropped", "capped"):
                if t1[k] != t0[k]:
                    errors.append("%s %s round %d: %s grew by %d"
                                  % (size, var, rnd + 1, k, t1[k] - t0[k]))
        B.progress("  %s connections, %s cases: round %d/%d" % (size, group, rnd + 1, ROUNDS))
    for var in variants:
        res[var][group] = {k: {"median": B.median(v), "raw": v} for k, v in raw[var].items()}
    return errors


def derive(groups):
    """Costs from the medians of one (size, variant): X_above_empty =
    T(wrapper + X) - T(wrapper), X_equiv = that + T(empty) (X as if run
    alone)."""
    d = {}
    for group, m in groups.items():
        g = lambda k: m[k]["median"]  # noqa: E731
        e, w = g("empty"), g("w_none")
        pre = "" if group == "tcp" else group + "_"
        d[pre + "empty"] = e
        d[pre + "floor_above_empty"] = g("floor") - w
        d[pre + "floor_equiv"] = g("floor") - w + e
        for k in m:
            if k in ("hit", "reply_tc", "pass", "roce") or k.startswith(("parse_", "stage")):
                d[k + "_above_empty"] = g(k) - w
                d[k + "_equiv"] = g(k) - w + e
        for k in m:
            if k.startswith("cal_"):
                d[k] = g(k) - e  # one helper call
        if "syn" in m:
            d["syn_above_empty"] = g("syn") - g("w_none_del")
            d["syn_equiv"] = d["syn_above_empty"] + e
        if "x_w_none" in m:
            xw = g("x_w_none")
            d["x_empty"] = g("x_empty")
            d["x_floor_above_empty"] = g("x_floor") - xw
            d["reply_xdp_above_empty"] = g("reply_xdp") - xw
            d["reply_xdp_equiv"] = g("reply_xdp") - xw + g("x_empty")
            for k in m:
                if k.startswith("c2h_"):
                    d[k + "_above_empty"] = g(k) - xw
                    d[k + "_equiv"] = g(k) - xw + g("x_empty")
    return d


def per_call(b):
    """One packet per call, vsn's real programs, the kernel's duration per
    call: hit, parse on/off (a connection of its own, sequence advancing),
    reply through XDP, against the empty program the same way."""
    b.fill("tcp", 1, addr0=CALL_VM, floor=False, seq0=SEQ0)
    pk = {"hit": to_storage(b"x" * 72, src=CALL_VM),
          "capsule": to_storage(capsule(), src=CALL_VM, seq=SEQ0),
          "reply": bytes(Ether(src=NH_MAC, dst=b.up0_mac) / IP(src=BE1, dst=CALL_VM) /
                         TCP(sport=BE_PORT, dport=SPORT, flags="PA", seq=5000, ack=SEQ0) /
                         Raw(b"y" * 72))}
    for k, v in pk.items():
        b.file("call_" + k, v)
    runs = [("empty", BPIN + "/tc/b_empty", "hit", b.ctx_vm, None, TC_OK),
            ("hit", PIN + "/vsn_vm_ingress", "hit", b.ctx_vm, False, TC_REDIRECT),
            ("parse_off", PIN + "/vsn_vm_ingress", "capsule", b.ctx_vm, False, TC_REDIRECT),
            ("parse_on", PIN + "/vsn_vm_ingress", "capsule", b.ctx_vm, True, TC_REDIRECT),
            ("x_empty", BPIN + "/xdp/bx_empty", "reply", b.ctx_xdp, None, XDP_PASS),
            ("reply_xdp", PIN + "/vsn_up_xdp", "reply", b.ctx_xdp, False, XDP_REDIRECT)]
    raw = {r[0]: [] for r in runs}
    seq, errors = SEQ0, []
    for rnd in range(3):
        for name, prog, pkt, ctx, parse, ret in runs:
            if parse is not None:
                b.set_parse(parse)
            data = b.files["call_" + pkt]
            if pkt == "capsule":
                raw_pkt = bytearray(pk["capsule"])
                raw_pkt[38:42] = struct.pack("!I", seq)
                data = b.file("call_capsule_now", bytes(raw_pkt))
            r = B.tool("run", "--prog", prog, "--data", data, "--ctx", ctx, "--calls", CALLS,
                       "--call_seq_step", 72 if pkt == "capsule" else 0,
                       "--drain", PIN + "/vsn_events", ns=NS)
            if pkt == "capsule" and parse:
                seq += 72 * CALLS
            raw[name].append(r["median"])
            if r["retval"] != ret or not r["same_retval"]:
                errors.append("per call %s: returned %d, expected %d" % (name, r["retval"], ret))
    b.set_parse(False)
    med = {k: B.median(v) for k, v in raw.items()}
    B.progress("  per call (median ns): " + ", ".join("%s %s" % kv for kv in med.items()))
    return {"median": med, "raw": raw}, errors


def superframe(b):
    """The parser on a 64 KiB GSO frame of 16 capsules, and on one capsule,
    through the real hook (tests/bench/inject.py)."""
    b.fill("tcp", 1, addr0=SUPER_VM, floor=False, seq0=SEQ0)
    r = B.sh(B.PY, os.path.join(os.path.dirname(os.path.abspath(__file__)), "inject.py"),
             "--ifname", "vmp", "--prog", PIN + "/vsn_vm_ingress", "--pin", PIN,
             "--src", SUPER_VM, "--dst", VIP, "--sport", SPORT, "--seq", SEQ0,
             "--smac", VM_MAC, "--dmac", GW_MAC, "--rounds", max(3, ROUNDS // 2),
             ns=NS, timeout=600)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    b.parse = None  # inject.py toggled it
    b.set_parse(False)
    return out


def main():
    B.start("pkt")
    b = Bench()
    b.teardown()
    errors = []
    try:
        b.setup()
        for size in SIZES:
            res = {"same": {}, "diff": {}}
            b.clear()
            r = b.fill("tcp", size + 1)
            B.progress("%d TCP connections (%d entries) in vsn_conns and the floor's table, "
                       "%.1f s" % (size, r["entries"], r["seconds"]))
            res["fill_tcp"] = r
            errors += measure_group(b, size, "tcp", res)
            b.clear()
            r = b.fill("udp", size + 1)
            B.progress("%d RoCEv2 connections in vsn_conns and the floor's table, %.1f s"
                       % (size, r["seconds"]))
            res["fill_roce"] = r
            errors += measure_group(b, size, "roce", res)
            for var in ("same", "diff"):
                res[var]["derived"] = derive({g: res[var][g] for g in ("tcp", "roce")})
            b.result["sizes"][str(size)] = res
            if size == SIZES[0]:
                b.clear()
                b.result["per_call"], e = per_call(b)
                errors += e
                b.clear()
                b.result["superframe"] = superframe(b)
        tel = json.loads(B.vsn(PIN, "-j", "show", "telemetry", ns=NS).stdout)["stats"]
        b.result["telemetry"] = tel
    finally:
        b.teardown()
        shutil.rmtree(b.tmp, ignore_errors=True)
    b.result["errors"] = errors
    for e in errors:
        B.progress("ERROR " + e)
    B.save("pkt", b.result)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
