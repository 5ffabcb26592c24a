#!/usr/bin/python3
"""sha256 of every key and value of a pinned BPF map, read with batched
lookups (BPF_MAP_LOOKUP_BATCH): a 2-million-entry array such as vsn_chash
takes well under a second, where `bpftool -j map dump` takes several.

  maphash.py PINNED_MAP_PATH...   ->   one line per map: "SHA256 ENTRIES PATH"

Exits 1 if a map cannot be read.
"""
import ctypes
import hashlib
import os
import sys

NR_BPF = 321  # x86_64
BPF_OBJ_GET = 7
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_MAP_LOOKUP_BATCH = 24
BPF_MAP_TYPE_ARRAY = 2
BATCH = 65536

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    r = libc.syscall(NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


class ObjGet(ctypes.Structure):
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32),
                ("file_flags", ctypes.c_uint32), ("path_fd", ctypes.c_int32),
                ("pad", ctypes.c_uint32)]


class MapInfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32),
                ("key_size", ctypes.c_uint32), ("value_size", ctypes.c_uint32),
                ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32),
                ("name", ctypes.c_char * 16), ("rest", ctypes.c_uint8 * 128)]


class InfoByFd(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32),
                ("info", ctypes.c_uint64)]


class Batch(ctypes.Structure):
    _fields_ = [("in_batch", ctypes.c_uint64), ("out_batch", ctypes.c_uint64),
                ("keys", ctypes.c_uint64), ("values", ctypes.c_uint64),
                ("count", ctypes.c_uint32), ("map_fd", ctypes.c_uint32),
                ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def map_hash(path):
    p = ctypes.create_string_buffer(path.encode())
    fd = bpf(BPF_OBJ_GET, ObjGet(pathname=ctypes.addressof(p)))
    try:
        info = MapInfo()
        bpf(BPF_OBJ_GET_INFO_BY_FD,
            InfoByFd(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info)))
        ks, vs = info.key_size, info.value_size
        # Hash maps want a batch token as large as the key; 8 bytes at least.
        tok_in = ctypes.create_string_buffer(max(ks, 8))
        tok_out = ctypes.create_string_buffer(max(ks, 8))
        keys = ctypes.create_string_buffer(ks * BATCH)
        vals = ctypes.create_string_buffer(vs * BATCH)
        h = hashlib.sha256()
        entries = []
        count = 0
        first = True
        while True:
            a = Batch(in_batch=0 if first else ctypes.addressof(tok_in),
                      out_batch=ctypes.addressof(tok_out), keys=ctypes.addressof(keys),
                      values=ctypes.addressof(vals), count=BATCH, map_fd=fd)
            done = False
            try:
                bpf(BPF_MAP_LOOKUP_BATCH, a)
            except OSError as e:
                if e.errno != 2:  # ENOENT: this was the last batch
                    raise
                done = True
            n = a.count
            if info.type == BPF_MAP_TYPE_ARRAY:
                # Arrays come back in index order: hash the buffers whole.
                h.update(keys.raw[:n * ks])
                h.update(vals.raw[:n * vs])
                count += n
            else:
                kr, vr = keys.raw, vals.raw
                for i in range(n):
                    entries.append((kr[i * ks:(i + 1) * ks], vr[i * vs:(i + 1) * vs]))
            if done:
                break
            ctypes.memmove(tok_in, tok_out, len(tok_out.raw))
            first = False
        # Hash maps iterate in no particular order: sort for a stable digest.
        entries.sort()
        for k, v in entries:
            h.update(k)
            h.update(v)
        return h.hexdigest(), count + len(entries)
    finally:
        os.close(fd)


def main():
    rc = 0
    for path in sys.argv[1:]:
        try:
            digest, n = map_hash(path)
            print("%s %d %s" % (digest, n, path))
        except OSError as e:
            print("maphash: %s: %s" % (path, e), file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
