#!/usr/bin/python3
"""Long-lived TCP connections for the cluster tests (tests/cluster/, tests/lib/hosts.sh).

  hold.py server --port P --name NAME [--status FILE]
      Accepts any number of connections.  On accept it sends "NAME\\n", then
      holds the connection and echoes whatever the client sends, until the
      client closes it.  With --status, writes every ~200 ms (atomically)
      {"name", "open", "by_peer": {client address: open connections},
      "accepted", "ts"}.

  hold.py client --dst ADDR --port P --n N --status FILE [--src A.B.C.D]
                 [--retry-s S]
      Keeps N connections open to ADDR:P; with --src, connection i (from
      0) always leaves from the address --src plus i: N initiators, each
      with its own address, as N VMs' NVMe hosts would be.  A connection that closes or is
      reset is opened again at once; a connect that fails (refused, no
      answer within 1 s) is tried again after S seconds (default 0.05).
      Writes every ~200 ms (atomically) {"open": established connections
      that told their backend's name, "per_backend": {NAME: open},
      "lost": established connections that ended (closed or reset),
      "resets": those of them that were reset, "failed": connects that
      failed, "connects": connections opened, "poked": lines sent on SIGUSR1,
      "echoed": of them echoed back, "ts"}.  SIGUSR1: one line is sent on
      every open connection, which the server echoes: "echoed" catches up
      with "poked" when vsn still forwards them all.  SIGTERM ends it.

  hold.py ping --dst ADDR --port P [--timeout S]
      One connection: reads the backend's name, sends a line and reads it
      back; prints {"backend": NAME, "echo": true, "ms": ...}; exit 0 when
      the echo came back intact.
"""
import argparse
import errno
import ipaddress
import json
import os
import selectors
import signal
import socket
import sys
import time

TICK = 0.2
CONNECT_TIMEOUT = 1.0


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, sort_keys=True)
    os.replace(tmp, path)


def peer_host(a):
    host = a[0]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return host


def server(args):
    sel = selectors.DefaultSelector()
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::", args.port))
    ls.listen(1024)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
    conns = {}  # socket -> peer host
    accepted = 0
    hello = (args.name + "\n").encode()
    next_status = 0.0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def status():
        by_peer = {}
        for h in conns.values():
            by_peer[h] = by_peer.get(h, 0) + 1
        write_json(args.status, {"name": args.name, "open": len(conns), "by_peer": by_peer,
                                 "accepted": accepted, "ts": time.time()})

    while not stop:
        now = time.monotonic()
        if args.status and now >= next_status:
            status()
            next_status = now + TICK
        for key, _ in sel.select(timeout=TICK):
            s = key.fileobj
            if s is ls:
                try:
                    c, a = ls.accept()
                except OSError:
                    continue
                accepted += 1
                c.setblocking(False)
                try:
                    c.send(hello)
                except OSError:
                    c.close()
                    continue
                conns[c] = peer_host(a)
                sel.register(c, selectors.EVENT_READ, None)
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                try:
                    s.send(data)  # small lines: the echo fits the buffer
                except OSError:
                    pass
                continue
            sel.unregister(s)
            conns.pop(s, None)
            s.close()
    if args.status:
        conns.clear()
        status()


class Slot:
    def __init__(self):
        self.sock = None
        self.state = "idle"  # idle, connecting, naming, up
        self.since = 0.0
        self.retry_at = 0.0
        self.buf = b""
        self.name = None
        self.src = None


def client(args):
    sel = selectors.DefaultSelector()
    slots = [Slot() for _ in range(args.n)]
    if args.src:
        base = int(ipaddress.IPv4Address(args.src))
        for i, sl in enumerate(slots):
            sl.src = str(ipaddress.IPv4Address(base + i))
    st = {"lost": 0, "resets": 0, "failed": 0, "connects": 0, "poked": 0, "echoed": 0}
    stop = []
    poke = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGUSR1, lambda *_: poke.append(1))
    next_status = 0.0

    def close(sl, retry):
        if sl.sock is not None:
            try:
                sel.unregister(sl.sock)
            except (KeyError, ValueError):
                pass
            sl.sock.close()
        sl.sock = None
        sl.state = "idle"
        sl.name = None
        sl.buf = b""
        sl.retry_at = time.monotonic() + retry

    def start(sl):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if sl.src:
            s.bind((sl.src, 0))
        err = s.connect_ex((args.dst, args.port))
        sl.sock = s
        sl.since = time.monotonic()
        if err not in (0, errno.EINPROGRESS):
            st["failed"] += 1
            close(sl, args.retry_s)
            return
        sl.state = "connecting"
        sel.register(s, selectors.EVENT_WRITE, sl)

    def status():
        per = {}
        up = 0
        for sl in slots:
            if sl.state == "up":
                up += 1
                per[sl.name] = per.get(sl.name, 0) + 1
        d = dict(st)
        d.update({"open": up, "per_backend": per, "n": args.n, "ts": time.time()})
        write_json(args.status, d)

    while not stop:
        if poke:
            poke.clear()
            for sl in slots:
                if sl.state != "up":
                    continue
                try:
                    sl.sock.send(b"poke\n")
                    st["poked"] += 1
                except OSError as e:
                    st["lost"] += 1
                    st["resets"] += isinstance(e, ConnectionResetError)
                    close(sl, 0)
        now = time.monotonic()
        for sl in slots:
            if sl.state == "idle" and now >= sl.retry_at:
                start(sl)
            elif sl.state in ("connecting", "naming") and now - sl.since > CONNECT_TIMEOUT:
                st["failed"] += 1
                close(sl, args.retry_s)
        if now >= next_status:
            status()
            next_status = now + TICK
        for key, ev in sel.select(timeout=0.05):
            sl = key.data
            s = sl.sock
            if sl.state == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    st["failed"] += 1
                    close(sl, args.retry_s)
                    continue
                st["connects"] += 1
                sl.state = "naming"
                sel.modify(s, selectors.EVENT_READ, sl)
                continue
            try:
                data = s.recv(4096)
                reset = False
            except ConnectionResetError:
                data, reset = b"", True
            except OSError:
                data, reset = b"", False
            if not data:
                if sl.state == "up":
                    st["lost"] += 1
                    st["resets"] += reset
                    close(sl, 0)  # at once
                else:
                    st["failed"] += 1
                    close(sl, args.retry_s)
                continue
            if sl.state == "naming":
                sl.buf += data
                if b"\n" in sl.buf:
                    sl.name = sl.buf.split(b"\n", 1)[0].decode(errors="replace")
                    sl.state = "up"
            else:
                st["echoed"] += data.count(b"\n")
    for sl in slots:
        close(sl, 0)
    status()


def ping(args):
    t0 = time.monotonic()
    out = {"backend": None, "echo": False}
    try:
        s = socket.create_connection((args.dst, args.port), timeout=args.timeout)
        s.settimeout(args.timeout)
        buf = b""
        while b"\n" not in buf:
            b = s.recv(4096)
            if not b:
                raise OSError("closed before the backend's name")
            buf += b
        name, rest = buf.split(b"\n", 1)
        out["backend"] = name.decode(errors="replace")
        msg = b"ping %d\n" % os.getpid()
        s.sendall(msg)
        got = rest
        while len(got) < len(msg):
            b = s.recv(4096)
            if not b:
                break
            got += b
        out["echo"] = got == msg
        s.close()
    except OSError as e:
        out["error"] = str(e)
    out["ms"] = round((time.monotonic() - t0) * 1000, 1)
    print(json.dumps(out))
    return 0 if out["echo"] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--status")
    c = sub.add_parser("client")
    c.add_argument("--dst", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--n", type=int, required=True)
    c.add_argument("--status", required=True)
    c.add_argument("--src")
    c.add_argument("--retry-s", type=float, default=0.05)
    p = sub.add_parser("ping")
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()
    if args.cmd == "server":
        server(args)
    elif args.cmd == "client":
        client(args)
    else:
        sys.exit(ping(args))


if __name__ == "__main__":
    main()
