#!/usr/bin/python3
"""make bench, part tput: throughput across namespaces, three ways.

  vbn-tvm [vm0 10.0.0.2] -- [vmif 10.0.0.1] vbn-thv [up0 10.1.0.1] -- [f0 10.1.0.2] vbn-tbe
                                                    [up1 10.2.0.1] -- [f1 10.2.0.2]
  the backend: 10.3.1.2 on vbn-tbe's loopback, iperf3 and vbn-rr on port 4420.

Setups, interleaved in every round (the same namespaces and links):
  plain      the VM connects to 10.3.1.2 itself; vbn-thv routes (no vsn)
  vsn        the VM connects to the volume address 192.168.100.10; vsn maps
             it to 10.3.1.2 and chooses path 1 (up0): TC on vmif, XDP on
             up0/up1 (vsn attach's default)
  nft        the same mapping the way an operator would without vsn:
             nftables DNAT of 192.168.100.10:4420 to 10.3.1.2, and policy
             routing (packets marked before the DNAT, an ip rule sending the
             mark to a table whose route goes through up0)
  vsn-tc     vsn with --xdp-mode tc (TC ingress on the uplinks, no XDP)
  plain-xdp  plain routing with an XDP program that passes everything on
             up0/up1: what any XDP program on a veth costs (the veth then
             receives through a NAPI instance of its own), apart from vsn
The targets compare vsn with plain and nft; the last two explain.
Tests per setup and round: bulk towards the backend (iperf3 -P 4, "write"),
bulk from it (iperf3 -R -P 4, "read"), request/response (vbn-rr: 128-byte
requests, 4 KiB answers, 8 connections).  f0/f1 send with checksum offload
off (complete checksums, as from a NIC: what vsn's XDP needs on veth), in
every setup.

CPU per GB moved, two ways.  "cpu": the CPU time of the test's own
processes (client, from wait4; server, from /proc/PID/stat) and of the
ksoftirqd threads, over the test: with tick accounting, packet processing in
softirq context is charged to whichever of these it interrupted, so this
counts the datapath's work, all namespaces sharing the one kernel, and
leaves out other load on the machine.  "cpu_machine": the whole machine's
busy time from /proc/stat (user, nice, system, irq, softirq, steal) minus
the busy rate of an idle window just before the test (noisy when other
work runs on the machine).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

VM, HV, BE = "vbn-tvm", "vbn-thv", "vbn-tbe"
PIN = "/sys/fs/bpf/vbn-tput"
VIP, BACKEND = "192.168.100.10", "10.3.1.2"
RR = os.path.join(B.OUT, "vbn-rr")
ROUNDS = int(os.environ.get("BENCH_TPUT_ROUNDS", "3"))
SECS = float(os.environ.get("BENCH_TPUT_SECONDS", "4"))
IDLE = 1.5
SETUPS = ("plain", "vsn", "nft", "vsn-tc", "plain-xdp")
XDP_PASS = os.path.join(B.OUT, "xdp_pass.bpf.o")
TESTS = ("write", "read", "rr")
NFT = """table ip vbn {
	chain vbnmark {
		type filter hook prerouting priority mangle; policy accept;
		ip daddr %(vip)s tcp dport 4420 meta mark set 0x42
	}
	chain vbndnat {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %(vip)s tcp dport 4420 dnat to %(be)s
	}
}
""" % {"vip": VIP, "be": BACKEND}


def nsx(ns, *cmd, check=True, timeout=120):
    return B.sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)


def topo():
    B.netns_add(VM, HV, BE)
    for a, an, b, bn in ((VM, "vm0", HV, "vmif"), (HV, "up0", BE, "f0"), (HV, "up1", BE, "f1")):
        B.sh("ip", "link", "add", an, "netns", a, "type", "veth", "peer", "name", bn,
             "netns", b)
        B.sh("ip", "-n", a, "link", "set", an, "up")
        B.sh("ip", "-n", b, "link", "set", bn, "up")
    for ns, dev, a in ((VM, "vm0", "10.0.0.2/24"), (HV, "vmif", "10.0.0.1/24"),
                       (HV, "up0", "10.1.0.1/24"), (BE, "f0", "10.1.0.2/24"),
                       (HV, "up1", "10.2.0.1/24"), (BE, "f1", "10.2.0.2/24"),
                       (BE, "lo", BACKEND + "/32")):
        B.sh("ip", "-n", ns, "addr", "add", a, "dev", dev)
    B.sh("ip", "-n", VM, "route", "add", "default", "via", "10.0.0.1")
    B.sh("ip", "-n", BE, "route", "add", "10.0.0.0/24", "via", "10.1.0.1", "dev", "f0")
    B.sh("ip", "-n", HV, "route", "add", BACKEND, "via", "10.1.0.2", "dev", "up0")
    nsx(HV, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for ns in (VM, HV, BE):
        nsx(ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0")
    # XDP_REDIRECT into a veth needs NAPI on its peer; the "wire" side
    # hands XDP complete checksums (tests/lib/topo.sh does the same).
    nsx(VM, "ethtool", "-K", "vm0", "gro", "on")
    for d in ("f0", "f1"):
        nsx(BE, "ethtool", "-K", d, "tx", "off")


def teardown():
    if os.path.exists("/run/netns/" + HV) and os.path.isdir(PIN):
        B.vsn(PIN, "detach", ns=HV, check=False)
    B.netns_del(VM, HV, BE)
    if os.path.isdir(PIN):
        B.unpin(PIN)


class Setups:
    def __init__(self, tmp):
        self.cfg = os.path.join(tmp, "vsn.yaml")
        self.nft = os.path.join(tmp, "vbn.nft")
        f0 = B.macaddr(BE, "f0")
        f1 = B.macaddr(BE, "f1")
        with open(self.cfg, "w") as f:
            f.write("vms:\n  - {name: vm1, id: 1, interface: vmif, addresses: [10.0.0.2, '2001:db8::2'],"
                    "    max_connections: 0, connection_rate: 0}\n"
                    "uplinks:\n  - {interface: up0}\n  - {interface: up1}\n"
                    'paths:\n  - {id: 1, uplink: up0, next_hop: "%s"}\n'
                    '  - {id: 2, uplink: up1, next_hop: "%s"}\n'
                    "backends:\n  - {id: 1, address: %s, port: 4420, paths: [1, 2]}\n"
                    "volumes:\n  - {id: 1, vm: vm1, address: %s, port: 4420, backends: [1]}\n"
                    % (f0, f1, BACKEND, VIP))
        with open(self.nft, "w") as f:
            f.write(NFT)

    def on(self, setup):
        if setup in ("vsn", "vsn-tc"):
            # vm0 has GRO on: its replies may be redirected by XDP itself.
            mode = ["--xdp-mode", "tc"] if setup == "vsn-tc" else ["--veth-replies", "xdp"]
            B.vsn(PIN, "attach", "--vm", "vmif", "--uplink", "up0,up1", *mode, ns=HV)
            B.vsn(PIN, "apply", self.cfg, ns=HV)
            return VIP
        if setup == "plain-xdp":
            for d in ("up0", "up1"):
                B.sh("ip", "-n", HV, "link", "set", "dev", d, "xdpdrv", "obj", XDP_PASS, "sec",
                     "xdp")
            return BACKEND
        if setup == "nft":
            nsx(HV, "nft", "-f", self.nft)
            B.sh("ip", "-n", HV, "rule", "add", "fwmark", "0x42", "table", "101")
            B.sh("ip", "-n", HV, "route", "add", BACKEND, "via", "10.1.0.2", "dev", "up0",
                 "table", "101")
            return VIP
        return BACKEND

    def off(self, setup):
        if setup in ("vsn", "vsn-tc"):
            B.vsn(PIN, "detach", ns=HV)
        elif setup == "plain-xdp":
            for d in ("up0", "up1"):
                B.sh("ip", "-n", HV, "link", "set", "dev", d, "xdpdrv", "off")
        elif setup == "nft":
            nsx(HV, "nft", "delete", "table", "ip", "vbn")
            B.sh("ip", "-n", HV, "rule", "del", "fwmark", "0x42", "table", "101")
            B.sh("ip", "-n", HV, "route", "flush", "table", "101")


def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return int(v[11]) + int(v[12])              # utime + stime
    except OSError:
        return 0


def ksoftirqd():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if open("/proc/%s/comm" % d).read().startswith("ksoftirqd/"):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


KSOFTIRQD = ksoftirqd()


def measured(client, server_pid):
    """Run the client command (in the VM namespace) with an idle window
    before it: (its JSON, our CPU seconds, the machine's CPU seconds above
    its idle rate)."""
    b0, t0 = B.cpu_ticks()
    time.sleep(IDLE)
    b1, t1 = B.cpu_ticks()
    idle_rate = (b1 - b0) / max(1, t1 - t0)     # busy share of all CPU time
    k0 = sum(proc_ticks(p) for p in KSOFTIRQD) + proc_ticks(server_pid)
    # ip netns exec execs the client: wait4 on it gives the client's rusage.
    p = subprocess.Popen(["ip", "netns", "exec", VM] + client, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stdout.close()
    k1 = sum(proc_ticks(x) for x in KSOFTIRQD) + proc_ticks(server_pid)
    b2, t2 = B.cpu_ticks()
    if p.returncode:
        raise RuntimeError("%s: exit %d" % (" ".join(client), p.returncode))
    ours = (k1 - k0) / B.hz() + ru.ru_utime + ru.ru_stime
    machine = max(0.0, ((b2 - b1) - idle_rate * (t2 - t1)) / B.hz())
    return json.loads(out), ours, machine


def iperf_args(dst, reverse):
    args = ["iperf3", "-c", dst, "-p", "4420", "-t", str(SECS), "-P", "4", "-J"]
    return args + (["-R"] if reverse else [])


def iperf_res(j):
    s = j["end"]["sum_received"]
    return {"bytes": s["bytes"], "gbit_s": s["bits_per_second"] / 1e9,
            "retransmits": j["end"].get("sum_sent", {}).get("retransmits")}


def rr_args(dst):
    return [RR, "client", dst, "4420", "128", "4096", "8", str(SECS)]


def rr_res(j):
    j["gbit_s"] = j["bytes"] * 8 / j["seconds"] / 1e9
    return j


def server(cmd, wait=False):
    """A server in the backend namespace (ip netns exec execs it: the pid is
    the server's)."""
    p = subprocess.Popen(["ip", "netns", "exec", BE] + cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    if wait:
        p.stdout.readline()                      # "listening"
    else:
        time.sleep(0.3)
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
    p.wait()
    if p.stdout:
        p.stdout.close()


def main():
    B.start("tput")
    teardown()
    tmp = tempfile.mkdtemp(prefix="vbn-tput.")
    servers = []
    raw = {s: {t: [] for t in TESTS} for s in SETUPS}
    errors = []
    try:
        B.progress("namespaces %s, %s, %s; iperf3 and vbn-rr servers" % (VM, HV, BE))
        topo()
        st = Setups(tmp)
        servers.append(server(["iperf3", "-s", "-p", "4420"]))
        for rnd in range(ROUNDS):
            for setup in SETUPS:
                try:
                    dst = st.on(setup)
                    for test in TESTS:
                        if test == "rr":
                            # iperf3 holds port 4420 between its tests: the
                            # RR server takes over for this one.
                            stop(servers[0])
                            srv = server([RR, "server", "4420", "128", "4096"], wait=True)
                            try:
                                j, cpu, mcpu = measured(rr_args(dst), srv.pid)
                                res = rr_res(j)
                            finally:
                                stop(srv)
                                servers[0] = server(["iperf3", "-s", "-p", "4420"])
                        else:
                            j, cpu, mcpu = measured(iperf_args(dst, test == "read"),
                                                    servers[0].pid)
                            res = iperf_res(j)
                        gb = res["bytes"] / 1e9
                        res["cpu_s"], res["cpu_machine_s"] = cpu, mcpu
                        res["cpu_s_per_gb"] = cpu / gb if gb else None
                        res["cpu_machine_s_per_gb"] = mcpu / gb if gb else None
                        raw[setup][test].append(res)
                        B.progress("  round %d/%d %-9s %-5s %6.2f Gbit/s%s, %.2f CPU s/GB "
                                   "(machine %.2f)"
                                   % (rnd + 1, ROUNDS, setup, test, res["gbit_s"],
                                      (", %.0f transactions/s" % res["per_s"])
                                      if test == "rr" else "", res["cpu_s_per_gb"] or 0,
                                      res["cpu_machine_s_per_gb"] or 0))
                except (RuntimeError, ValueError, KeyError) as e:
                    errors.append("%s round %d: %s" % (setup, rnd + 1, str(e)[-300:]))
                    B.progress("ERROR " + errors[-1])
                finally:
                    st.off(setup)
    finally:
        for s in servers:
            stop(s)
        teardown()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {}
    for s in SETUPS:
        med[s] = {}
        for t in TESTS:
            xs = raw[s][t]
            med[s][t] = {
                "gbit_s": B.median([x["gbit_s"] for x in xs]) if xs else None,
                "cpu_s_per_gb": B.median([x["cpu_s_per_gb"] for x in xs
                                          if x["cpu_s_per_gb"] is not None]) if xs else None,
                "cpu_machine_s_per_gb": B.median([x["cpu_machine_s_per_gb"] for x in xs
                                                  if x["cpu_machine_s_per_gb"] is not None])
                if xs else None}
            if t == "rr" and xs:
                med[s][t]["per_s"] = B.median([x["per_s"] for x in xs])
                med[s][t]["p99_us"] = B.median([x["p99_us"] for x in xs])
    B.save("tput", {"raw": raw, "median": med, "errors": errors,
                    "config": {"rounds": ROUNDS, "seconds": SECS, "streams": 4,
                               "rr": "128 B request, 4096 B answer, 8 connections",
                               "idle_window_s": IDLE}})
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
