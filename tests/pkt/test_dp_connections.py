#!/usr/bin/python3
"""Datapath packet tests (BPF_PROG_TEST_RUN, harness: datapath.py).

NAT and connections: only VM interfaces steer, volumes are per VM, IPv4 and IPv6
connections (SYN, data, replies through XDP and TC, VLAN tags), SNAT and
SNAT port clashes between VMs, and `vsn -j show connections` against the map.

Run as root from the repository root:  /usr/bin/python3 tests/pkt/test_dp_connections.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datapath import *  # noqa: E402,F401,F403  (the harness: check, tcp, conn, ...)
from datapath import CASES, case, run_cases  # noqa: E402


@case
def only_vm_interfaces_steer():
    """Frames on an interface vsn knows as no VM's pass untouched,
    counted not_vm (the VM is identified by the ingress interface only)."""
    syn = tcp(VM2_MAC, GW_MAC, VM2, VIP, 41200, 4420, flags="S")
    # vmif6 is attached but config A has no VM on it yet.
    check("SYN on unconfigured vmif6", "vsn_vm_ingress", syn, TC_ACT_OK,
          ifname="vmif6", cdelta=fwd_delta(len(syn), reason="not_vm"))
    syn1 = tcp(VM1_MAC, GW_MAC, VM1, VIP, 41201, 4420, flags="S")
    # A VM1 storage SYN presented on up0 (not a VM interface at all).
    check("SYN with ifindex of up0", "vsn_vm_ingress", syn1, TC_ACT_OK,
          ifname="up0", cdelta=fwd_delta(len(syn1), reason="not_vm"))
    T.ok(conn(1, VM1, 41201) is None and conn(2, VM2, 41200) is None,
         "no connection created for not_vm frames")

@case
def volumes_are_per_vm():
    """Re-apply with vm2 on vmif6: the same frame is now VM 2's, and is
    steered by VM 2's own volume (volumes are per VM)."""
    apply(config_yaml(True))
    syn = tcp(VM2_MAC, GW_MAC, VM2, VIP, 41200, 4420, flags="S")
    check("vm2 SYN after apply", "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
          ifname="vmif6",
          exp=tcp(*path_macs(1), VM2, BE[1], 41200, BE_PORT, flags="S"),
          fields=to_storage_fields(1, BE[1], BE_PORT, VM2, 41200),
          cdelta=fwd_delta(len(syn), path=1, be=1, vm=2))
    c = conn(2, VM2, 41200)
    T.ok(c and c["volume"] == 6 and c["backend"] == 1 and
         c["vm_ifindex"] == IFINDEX["vmif6"],
         "vm2 connection on its own volume 6, backend 1, replies to "
         "vmif6", c)
    # VM 2 has no IPv6 volume: VM 1's volume must not serve it.
    syn6 = tcp(VM2_MAC, GW_MAC, "2001:db8:6::2", VIP6, 41200, 4420, flags="S")
    check("vm2 SYN to vm1-only IPv6 volume", "vsn_vm_ingress", syn6,
          TC_ACT_OK, ifname="vmif6",
          cdelta=fwd_delta(len(syn6), reason="not_storage"))

def basic_flow(tag, v6, sport):
    """Cases 1-3 (v4) and 4 (v6): SYN creating the connection, a data
    segment hitting it, replies through XDP and TC, a VLAN-tagged reply."""
    vm, vip = (VM1_6, VIP6) if v6 else (VM1, VIP)
    be, vol = (3, 2) if v6 else (1, 1)
    route(1, vol, be, 1)
    fam = "IPv6" if v6 else "IPv4"
    # -- SYN: creates both connection entries, DNAT VIP:4420 -> BE:4421.
    syn = tcp(VM1_MAC, GW_MAC, vm, vip, sport, 4420, flags="S", seq=5000,
              ack=0, tos=0x02, fl=0x54321 if v6 else 0)
    exp = tcp(*path_macs(1), vm, BE[be], sport, BE_PORT, flags="S", seq=5000,
              ack=0, tos=0x02, fl=0x54321 if v6 else 0)
    check("%s %s SYN VM->storage" % (tag, fam), "vsn_vm_ingress", syn,
          TC_ACT_REDIRECT, exp=exp,
          # src unchanged, TTL/hop limit unchanged (L2 forwarding, no decrement),
          # traffic class and flow label untouched on a plain path.
          fields=dict(to_storage_fields(1, BE[be], BE_PORT, vm, sport),
                      **{"ip.ttl": 64, "ip.tos": 0x02, "l4.flags": "S",
                         "l4.seq": 5000, "l4.options": bytes(TCP(
                             options=SYN_OPTS))[20:]}),
          cdelta=fwd_delta(len(syn), path=1, be=be, vm=1))
    c = conn(1, vm, sport)
    # Both entries exist; the VM-side one remembers what replies need
    # (VIP:port, VM MAC, gateway MAC, VM ifindex).
    T.ok(c is not None and c["backend"] == be and c["last_path"] == 1 and
         c["backend_port"] == BE_PORT and c["vip_port"] == 4420 and
         c["dst"] == canon(vip) and c["vip"] == canon(vip) and
         c["tx_packets"] == 1 and c["rx_packets"] == 0 and c["reverse"] and
         c["flags"] == (CONN_FLAGS["dnat"] | (CONN_FLAGS["v6"] if v6 else 0))
         and c["vm_mac"] == VM1_MAC and c["gw_mac"] == GW_MAC and
         c["vm_ifindex"] == IFINDEX["vmif"],
         "%s %s: connection recorded (backend %d, path 1, DNAT, both "
         "entries, MACs, tx 1)" % (tag, fam, be), c)
    # -- Data on the same connection: hits the existing entry.
    data = bytes(range(256)) * 3 + b"nvme"
    pkt = tcp(VM1_MAC, GW_MAC, vm, vip, sport, 4420, flags="PA", seq=5001,
              ack=777, payload=data)
    exp = tcp(*path_macs(1), vm, BE[be], sport, BE_PORT, flags="PA",
              seq=5001, ack=777, payload=data)
    check("%s %s data VM->storage" % (tag, fam), "vsn_vm_ingress", pkt,
          TC_ACT_REDIRECT, exp=exp,
          fields=dict(to_storage_fields(1, BE[be], BE_PORT, vm, sport),
                      payload=data, **{"ip.ttl": 64}),
          cdelta=fwd_delta(len(pkt), path=1, be=be, vm=1))
    c = conn(1, vm, sport)
    T.ok(c is not None and c["tx_packets"] == 2 and
         c["tx_bytes"] == len(syn) + len(pkt),
         "%s %s: data hit the existing entry (tx 2 packets)" % (tag, fam), c)
    # -- Reply through XDP: reverse NAT to VIP:4420, MACs gw -> vm.
    rdata = b"\x07" * 100
    rep = tcp(FAB_MAC, IFMAC["up0"], BE[be], vm, BE_PORT, sport, flags="PA",
              seq=9000, ack=5001 + len(data), payload=rdata, ttl=61)
    rexp = tcp(GW_MAC, VM1_MAC, vip, vm, 4420, sport, flags="PA", seq=9000,
               ack=5001 + len(data), payload=rdata, ttl=61)
    rfields = {"eth.src": GW_MAC, "eth.dst": VM1_MAC, "eth.vlan": None,
               "ip.src": canon(vip), "ip.dst": canon(vm), "l4.sport": 4420,
               "l4.dport": sport, "payload": rdata, "ip.ttl": 61}
    check("%s %s reply XDP" % (tag, fam), "vsn_up_xdp", rep, XDP_REDIRECT,
          exp=rexp, fields=rfields,
          cdelta=fwd_delta(len(rep), be=be, vm=1))
    check("%s %s reply TC" % (tag, fam), "vsn_up_ingress", rep,
          TC_ACT_REDIRECT, exp=rexp, fields=rfields,
          cdelta=fwd_delta(len(rep), be=be, vm=1))
    c = conn(1, vm, sport)
    T.ok(c is not None and c["rx_packets"] == 2 and
         c["rx_bytes"] == 2 * len(rep),
         "%s %s: replies counted on the connection (rx 2)" % (tag, fam), c)
    # -- Reply carrying an 802.1Q tag: comes out untagged, 4 bytes shorter.
    vrep = tcp(FAB_MAC, IFMAC["up0"], BE[be], vm, BE_PORT, sport, flags="A",
               seq=9100, ack=6000, vlan=100, ttl=61)
    vexp = tcp(GW_MAC, VM1_MAC, vip, vm, 4420, sport, flags="A", seq=9100,
               ack=6000, ttl=61)
    check("%s %s VLAN-tagged reply XDP" % (tag, fam), "vsn_up_xdp", vrep,
          XDP_REDIRECT, exp=vexp, fields=dict(rfields, payload=b""),
          cdelta=fwd_delta(len(vrep), be=be, vm=1))
    check("%s %s VLAN-tagged reply TC" % (tag, fam), "vsn_up_ingress", vrep,
          TC_ACT_REDIRECT, exp=vexp, fields=dict(rfields, payload=b""),
          cdelta=fwd_delta(len(vrep), be=be, vm=1))
    if not v6:
        # A minimum-size frame: 54 bytes of ACK + 6 bytes Ethernet padding.
        # The padding is not part of the datagram and must not be summed.
        prep = tcp(FAB_MAC, IFMAC["up0"], BE[be], vm, BE_PORT, sport, flags="A",
                   seq=9200, ack=6000, pad_to=60)
        pexp = tcp(GW_MAC, VM1_MAC, vip, vm, 4420, sport, flags="A",
                   seq=9200, ack=6000, pad_to=60)
        check("%s %s padded 60-byte reply XDP" % (tag, fam), "vsn_up_xdp",
              prep, XDP_REDIRECT, exp=pexp,
              cdelta=fwd_delta(len(prep), be=be, vm=1))
        # A VM frame with its own 802.1Q tag: parsed, tag removed.
        tpk = tcp(VM1_MAC, GW_MAC, vm, vip, sport, 4420, flags="A",
                  seq=6000, ack=9300, vlan=5)
        texp = tcp(*path_macs(1), vm, BE[be], sport, BE_PORT, flags="A",
                   seq=6000, ack=9300)
        check("%s %s VLAN-tagged VM frame" % (tag, fam), "vsn_vm_ingress",
              tpk, TC_ACT_REDIRECT, exp=texp,
              fields=to_storage_fields(1, BE[be], BE_PORT, vm, sport),
              cdelta=fwd_delta(len(tpk), path=1, be=be, vm=1))

@case
def ipv4_connection():
    """1-3: IPv4 SYN, data, replies (XDP and TC), tagged reply."""
    basic_flow("flow", False, 41000)

@case
def ipv6_connection():
    """the same over IPv6."""
    basic_flow("flow", True, 41000)

@case
def snat():
    """SNAT path: VM address -> path source_address on the way out, the
    reply to that address translated back to the VM."""
    for v6 in (False, True):
        vm, vip, be, vol, path, sa = ((VM1_6, VIP6, 3, 2, 9, SNAT6) if v6 else
                                      (VM1, VIP, 1, 1, 6, SNAT4))
        fam = "IPv6" if v6 else "IPv4"
        route(1, vol, be, path)
        syn = tcp(VM1_MAC, GW_MAC, vm, vip, 41600, 4420, flags="S")
        check("%s SNAT SYN" % fam, "vsn_vm_ingress", syn, TC_ACT_REDIRECT,
              exp=tcp(*path_macs(path), sa, BE[be], 41600, BE_PORT, flags="S"),
              fields=to_storage_fields(path, BE[be], BE_PORT, sa, 41600),
              cdelta=fwd_delta(len(syn), path=path, be=be, vm=1))
        rep = tcp(FAB_MAC, IFMAC["up0"], BE[be], sa, BE_PORT, 41600, flags="SA",
                  seq=1, ack=1001, payload=b"icresp")
        rexp = tcp(GW_MAC, VM1_MAC, vip, vm, 4420, 41600, flags="SA", seq=1,
                   ack=1001, payload=b"icresp")
        rf = {"ip.src": canon(vip), "ip.dst": canon(vm), "l4.sport": 4420,
              "l4.dport": 41600, "eth.dst": VM1_MAC}
        c = conn(1, vm, 41600)
        T.ok(c and c["flags"] & CONN_FLAGS["snat"] and c["snat"] == canon(sa)
             and c["reverse"],
             "%s: connection has SNAT %s and a fabric-side entry for it"
             % (fam, sa), c)
        check("%s SNAT reply XDP" % fam, "vsn_up_xdp", rep, XDP_REDIRECT,
              exp=rexp, fields=rf, cdelta=fwd_delta(len(rep), be=be, vm=1))
        check("%s SNAT reply TC" % fam, "vsn_up_ingress", rep,
              TC_ACT_REDIRECT, exp=rexp, fields=rf,
              cdelta=fwd_delta(len(rep), be=be, vm=1))
        # A reply to the VM's own address has no entry: SNAT connections
        # are only reachable through the SNAT address.
        rep2 = tcp(FAB_MAC, IFMAC["up0"], BE[be], vm, BE_PORT, 41600, flags="A")
        check("%s reply to pre-SNAT address" % fam, "vsn_up_xdp", rep2,
              XDP_PASS, cdelta=fwd_delta(len(rep2), reason="not_storage"))
        route(1, vol, be, 1)

@case
def snat_port_clash_between_vms():
    """two VMs share a SNAT address: the second connection with the same
    source port to the same backend gets another port on the wire, and the
    replies to each port reach the right VM, translated back."""
    route(1, 1, 1, 6)
    route(2, 6, 1, 6)
    sport = 41750  # used by no other case
    syn1 = tcp(VM1_MAC, GW_MAC, VM1, VIP, sport, 4420, flags="S")
    check("vm1 SYN via SNAT", "vsn_vm_ingress", syn1, TC_ACT_REDIRECT,
          exp=tcp(*path_macs(6), SNAT4, BE[1], sport, BE_PORT, flags="S"),
          fields=to_storage_fields(6, BE[1], BE_PORT, SNAT4, sport),
          cdelta=fwd_delta(len(syn1), path=6, be=1, vm=1))
    syn2 = tcp(VM2_MAC, GW_MAC, VM2, VIP, sport, 4420, flags="S")
    r, out2 = run("vsn_vm_ingress", syn2, ctx_for("vsn_vm_ingress", "vmif6"))
    p2 = P.parse(out2) if out2 else None
    port2 = p2["l4"]["sport"] if p2 else None
    T.ok(r == TC_ACT_REDIRECT and p2 and p2["ip"]["src"] == canon(SNAT4)
         and port2 != sport and P.ipv4_csum_ok(out2) and P.l4_csum_ok(out2),
         "vm2 SYN with the same port leaves from %s with another port "
         "(%s), checksums valid" % (SNAT4, port2), (r, p2))
    for vm, vm_mac, port, ifn in ((VM1, VM1_MAC, sport, "vmif"),
                                  (VM2, VM2_MAC, port2, "vmif6")):
        rep = tcp(FAB_MAC, IFMAC["up0"], BE[1], SNAT4, BE_PORT, port or 1,
                  flags="SA", seq=1, ack=1001)
        check("reply to %s:%s reaches %s" % (SNAT4, port, vm), "vsn_up_xdp",
              rep, XDP_REDIRECT,
              exp=tcp(GW_MAC, vm_mac, VIP, vm, 4420, sport, flags="SA", seq=1,
                      ack=1001),
              fields={"ip.dst": canon(vm), "l4.dport": sport, "eth.dst": vm_mac},
              cdelta=fwd_delta(len(rep), be=1, vm=1 if vm == VM1 else 2))
    c2 = conn(2, VM2, sport)
    T.ok(c2 and c2["vm_ifindex"] == IFINDEX["vmif6"],
         "vm2's connection replies to vmif6", c2)
    route(1, 1, 1, 1)
    route(2, 6, 1, 1)

@case
def show_connections_json_matches_map():
    """`vsn -j show connections` must be valid JSON agreeing with the map in
    every state the cases above looked at (conn() checks it each time)."""
    T.ok(CLI_JSON["states"] > 0 and not CLI_JSON["bad"],
         "vsn -j show connections valid and matching the map in all "
         "%d states checked" % CLI_JSON["states"],
         "%d bad states; first: %s" % (len(CLI_JSON["bad"]),
                                       (CLI_JSON["bad"] or [""])[0]))


if __name__ == "__main__":
    sys.exit(run_cases(CASES, with_vm2=False))
