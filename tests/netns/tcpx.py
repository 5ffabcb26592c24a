#!/usr/bin/python3
"""TCP transfer helper for the netns tests: both directions, sha256 on both ends.

  tcpx.py server --port P --log FILE
      Accepts any number of connections (threaded, IPv4 and IPv6).  Each
      connection starts with a 16-byte header (n_up, n_down: u64 network
      order); the server reads n_up bytes while sending n_down random bytes.
      One JSON line per event goes to FILE: {"event": "accept", ...} when a
      connection arrives and {"event": "done", ...} with byte counts and
      digests of both directions when it ends.

  tcpx.py client --dst ADDR --port P --up N --down M [--rate BYTES_PER_S]
      Connects, sends N random bytes (at most RATE bytes/s) while receiving
      M bytes; prints one JSON line: local/peer address, counts and digests.
      Exits 1 if the transfer did not complete.

  tcpx.py verify CLIENT_JSON NAME=LOG [NAME=LOG ...]
      Finds the server connection matching the client's local port, checks
      that each side received exactly what the other sent, and prints the
      NAME of the server that had the connection.  Exits 1 on a mismatch.
"""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

CHUNK = 64 * 1024
HDR = struct.Struct("!QQ")


def norm_addr(a):
    """Socket address tuple -> (host, port), IPv4-mapped folded to IPv4."""
    host, port = a[0], a[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, port


def fmt_addr(a):
    host, port = norm_addr(a)
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def recv_exact(sock, n, h, prog=None):
    """Read n bytes into hash h; returns the number read (short on EOF);
    the count so far is kept in prog["rx_bytes"] if given."""
    got = 0
    while got < n:
        b = sock.recv(min(CHUNK * 4, n - got))
        if not b:
            break
        h.update(b)
        got += len(b)
        if prog is not None:
            prog["rx_bytes"] = got
    return got


def send_random(sock, n, h, rate=0.0, prog=None):
    """Send n random bytes (throttled to rate bytes/s if rate > 0); the
    count so far is kept in prog["tx_bytes"] if given."""
    sent = 0
    start = time.monotonic()
    while sent < n:
        b = os.urandom(min(CHUNK, n - sent))
        sock.sendall(b)
        h.update(b)
        sent += len(b)
        if prog is not None:
            prog["tx_bytes"] = sent
        if rate > 0:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    return sent


# ---------------------------------------------------------------- server

class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, **kw):
        kw["time"] = time.time()
        with self.lock:
            self.f.write(json.dumps(kw, sort_keys=True) + "\n")
            self.f.flush()


def serve_one(conn, peer, local, log):
    res = {"rx_bytes": 0, "rx_sha": "", "tx_bytes": 0, "tx_sha": "", "error": ""}
    try:
        conn.settimeout(60)
        hdr = b""
        while len(hdr) < HDR.size:
            b = conn.recv(HDR.size - len(hdr))
            if not b:
                raise IOError("EOF in header")
            hdr += b
        n_up, n_down = HDR.unpack(hdr)
        rh = hashlib.sha256()

        def rx():
            try:
                res["rx_bytes"] = recv_exact(conn, n_up, rh, res)
            except OSError as e:
                res["error"] = "rx: %s" % e

        t = threading.Thread(target=rx, daemon=True)
        t.start()
        th = hashlib.sha256()
        res["tx_bytes"] = send_random(conn, n_down, th, 0.0, res)
        res["tx_sha"] = th.hexdigest()
        t.join(120)
        res["rx_sha"] = rh.hexdigest()
        res["n_up"], res["n_down"] = n_up, n_down
    except OSError as e:
        res["error"] = res["error"] or str(e)
    finally:
        log.write(event="done", peer=fmt_addr(peer), local=fmt_addr(local), **res)
        try:
            conn.close()
        except OSError:
            pass


def server(args):
    log = Log(args.log)
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", args.port))
    s.listen(64)
    log.write(event="listening", port=args.port)
    while True:
        conn, peer = s.accept()
        local = conn.getsockname()
        log.write(event="accept", peer=fmt_addr(peer), local=fmt_addr(local))
        threading.Thread(target=serve_one, args=(conn, peer, local, log), daemon=True).start()


# ---------------------------------------------------------------- client

def client(args):
    out = {"tx_bytes": 0, "tx_sha": "", "rx_bytes": 0, "rx_sha": "", "error": ""}
    rh = hashlib.sha256()
    try:
        s = socket.create_connection((args.dst, args.port), timeout=args.connect_timeout)
        s.settimeout(args.timeout)
        out["local"] = fmt_addr(s.getsockname())
        out["peer"] = fmt_addr(s.getpeername())
        out["sport"] = norm_addr(s.getsockname())[1]
        s.sendall(HDR.pack(args.up, args.down))

        def rx():
            try:
                out["rx_bytes"] = recv_exact(s, args.down, rh, out)
            except OSError as e:
                out["error"] = "rx: %s" % e

        t = threading.Thread(target=rx, daemon=True)
        t.start()
        th = hashlib.sha256()
        t0 = time.monotonic()
        out["tx_bytes"] = send_random(s, args.up, th, args.rate, out)
        out["tx_sha"] = th.hexdigest()
        t.join(args.timeout)
        out["seconds"] = round(time.monotonic() - t0, 3)
        out["rx_sha"] = rh.hexdigest()
        s.close()
    except OSError as e:
        out["error"] = out["error"] or str(e)
    print(json.dumps(out, sort_keys=True), flush=True)
    ok = not out["error"] and out["tx_bytes"] == args.up and out["rx_bytes"] == args.down
    return 0 if ok else 1


# ---------------------------------------------------------------- verify

def verify(args):
    try:
        with open(args.client) as f:
            c = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError) as e:
        print("# verify: no client result: %s" % e)
        return 1
    if "sport" not in c:
        print("# verify: client never connected: %s" % c.get("error"))
        return 1
    logs = [a.split("=", 1) for a in args.logs]
    deadline = time.time() + args.wait
    found = []
    while True:
        found = []
        for name, path in logs:
            try:
                with open(path) as f:
                    for line in f:
                        e = json.loads(line)
                        if e.get("event") == "done" and \
                                e["peer"].rsplit(":", 1)[1] == str(c["sport"]):
                            found.append((name, e))
            except OSError:
                pass
        if found or time.time() > deadline:
            break
        time.sleep(0.1)
    if len(found) != 1:
        print("# verify: %d server records for client port %s" % (len(found), c["sport"]))
        return 1
    name, e = found[0]
    bad = []
    if c.get("error") or e.get("error"):
        bad.append("errors: client '%s' server '%s'" % (c.get("error"), e.get("error")))
    if (c["tx_bytes"], c["tx_sha"]) != (e["rx_bytes"], e["rx_sha"]):
        bad.append("VM->backend: client sent %d %s, server got %d %s" %
                   (c["tx_bytes"], c["tx_sha"][:16], e["rx_bytes"], e["rx_sha"][:16]))
    if (e["tx_bytes"], e["tx_sha"]) != (c["rx_bytes"], c["rx_sha"]):
        bad.append("backend->VM: server sent %d %s, client got %d %s" %
                   (e["tx_bytes"], e["tx_sha"][:16], c["rx_bytes"], c["rx_sha"][:16]))
    for b in bad:
        print("# verify: " + b)
    print(name)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p = sub.add_parser("client")
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--up", type=int, required=True)
    p.add_argument("--down", type=int, required=True)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--connect-timeout", type=float, default=5.0)
    p = sub.add_parser("verify")
    p.add_argument("client")
    p.add_argument("logs", nargs="+")
    p.add_argument("--wait", type=float, default=5.0)
    args = ap.parse_args()
    return {"server": server, "client": client, "verify": verify}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
