#!/usr/bin/python3
"""What the datapath balances with, independent of which half is live.

Each volume has two consistent-hash tables in vsn_chash and chash_gen says
which one the datapath reads; every apply writes the other one and flips
it.  So a daemon restart that re-applies the same config changes the bytes
of vsn_volumes and vsn_chash while nothing changes for a packet.  This
prints, per volume entry, its key, id and backends and the sha256 of its
live table only:

  chash_live.py PIN_DIR   ->   "KEYHEX volume ID backends A,B live SHA256" per line

Exits 1 if a map cannot be read.
"""
import ctypes
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from maphash import BPF_OBJ_GET, ObjGet, bpf  # noqa: E402

BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_GET_NEXT_KEY = 4
VOL_KEY_SIZE = 24  # struct vsn_volume_key
VOL_VALUE_SIZE = 76  # struct vsn_volume: id, gen, n, backends[16]
CHASH_SIZE = 1021  # VSN_CHASH_SIZE
CHASH_VALUE_SIZE = 4


class Elem(ctypes.Structure):
    _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32),
                ("key", ctypes.c_uint64), ("value", ctypes.c_uint64),
                ("flags", ctypes.c_uint64)]


def obj_get(path):
    p = ctypes.create_string_buffer(path.encode())
    return bpf(BPF_OBJ_GET, ObjGet(pathname=ctypes.addressof(p)))


def lookup(fd, key, vsize):
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(vsize)
    bpf(BPF_MAP_LOOKUP_ELEM, Elem(map_fd=fd, key=ctypes.addressof(k), value=ctypes.addressof(v)))
    return v.raw


def keys(fd, ksize):
    cur = None
    nxt = ctypes.create_string_buffer(ksize)
    while True:
        k = ctypes.create_string_buffer(cur, ksize) if cur else None
        try:
            bpf(BPF_MAP_GET_NEXT_KEY, Elem(map_fd=fd, key=ctypes.addressof(k) if k else 0,
                                           value=ctypes.addressof(nxt)))
        except OSError as e:
            if e.errno == 2:  # ENOENT: no more keys
                return
            raise
        cur = nxt.raw
        yield cur


def main():
    pin = sys.argv[1]
    vfd = obj_get(os.path.join(pin, "vsn_volumes"))
    cfd = obj_get(os.path.join(pin, "vsn_chash"))
    lines = []
    for k in keys(vfd, VOL_KEY_SIZE):
        v = lookup(vfd, k, VOL_VALUE_SIZE)
        vol, gen, n = struct.unpack_from("<III", v)
        bes = struct.unpack_from("<%dI" % min(n, 16), v, 12)
        h = hashlib.sha256()
        base = (vol * 2 + gen) * CHASH_SIZE
        for i in range(CHASH_SIZE):
            h.update(lookup(cfd, struct.pack("<I", base + i), CHASH_VALUE_SIZE))
        lines.append("%s volume %u backends %s live %s" %
                     (k.hex(), vol, ",".join(map(str, bes)), h.hexdigest()))
    for line in sorted(lines):
        print(line)
    os.close(vfd)
    os.close(cfd)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, IndexError) as e:
        print("chash_live: %s" % e, file=sys.stderr)
        sys.exit(1)
