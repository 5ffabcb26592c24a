"""bpf(2) through ctypes, for the packet suites: pinned objects, map info,
BPF_PROG_TEST_RUN one packet at a time, and setns(2) into a test's network
namespace.  Independent of the project's own code on purpose: what the
tests read back is not read by the code under test."""
import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine, 321)
BPF_OBJ_GET, BPF_PROG_TEST_RUN = 7, 10
BPF_MAP_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD = 14, 15
CLONE_NEWNET = 0x40000000
ATTR_SIZE = 128


def bpf(cmd, attr):
    """bpf(cmd, attr): (return value, the attribute bytes after the call)."""
    buf = ctypes.create_string_buffer(bytes(attr), ATTR_SIZE)
    r = _libc.syscall(_SYS_BPF, cmd, buf, ATTR_SIZE)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r, buf.raw


def obj_get(path):
    """A file descriptor of a pinned map or program."""
    p = ctypes.create_string_buffer(path.encode())
    return bpf(BPF_OBJ_GET, struct.pack("=QII", ctypes.addressof(p), 0, 0))[0]


def map_fd_by_id(map_id):
    return bpf(BPF_MAP_GET_FD_BY_ID, struct.pack("=III", map_id, 0, 0))[0]


def map_info(fd):
    info = ctypes.create_string_buffer(80)
    bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack("=IIQ", fd, 80, ctypes.addressof(info)))
    t, mid, ks, vs, me = struct.unpack_from("=5I", info.raw, 0)
    name = info.raw[24:40].split(b"\0")[0].decode()
    return dict(type=t, id=mid, key_size=ks, value_size=vs, max_entries=me, name=name)


class TestRun:
    """One pinned program, run once per packet (struct bpf_attr test:
    prog_fd, retval, data_size_in, data_size_out, data_in, data_out,
    repeat, duration, ctx_size_in, ctx_size_out, ctx_in, ctx_out, flags,
    cpu, batch_size)."""

    OUT = 16384

    def __init__(self, path):
        self.fd = obj_get(path)
        self.out = ctypes.create_string_buffer(self.OUT)
        self.ctx_out = ctypes.create_string_buffer(256)

    def run(self, data, ctx):
        """(return value, output bytes) of one run on data with ctx."""
        din = ctypes.create_string_buffer(bytes(data), len(data))
        cin = ctypes.create_string_buffer(bytes(ctx), len(ctx))
        attr = struct.pack("=IIIIQQIIIIQQIII", self.fd, 0, len(data), self.OUT,
                           ctypes.addressof(din), ctypes.addressof(self.out),
                           1, 0, len(ctx), len(ctx),
                           ctypes.addressof(cin), ctypes.addressof(self.ctx_out), 0, 0, 0)
        _, raw = bpf(BPF_PROG_TEST_RUN, attr)
        _, retval, _, size_out = struct.unpack_from("=IIII", raw, 0)
        return retval, self.out.raw[:size_out]

    def close(self):
        os.close(self.fd)


class InNetns:
    """setns(2) this thread into /run/netns/NAME (test-run resolves ctx
    ifindexes in the caller's netns), back again on exit."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.orig = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET):
                e = ctypes.get_errno()
                raise OSError(e, "setns %s: %s" % (self.name, os.strerror(e)))
        finally:
            os.close(fd)
        return self

    def __exit__(self, *a):
        if _libc.setns(self.orig, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns back failed")
        os.close(self.orig)
