#!/usr/bin/python3
"""Hostile and sloppy clients of the daemon's API socket (tests/netns/test_api_slow.sh).

Each mode prints one JSON line with what it saw.

  api_clients.py trickle SOCK --seconds S [--gap-ms G]
      For S seconds: connect, send a request one byte every G ms and never
      its newline; when the daemon closes, connect again.  Reports the
      connections made and the replies got.
  api_clients.py idle SOCK --n N --seconds S
      Opens N connections at once and sends nothing; waits up to S s for
      each to be answered and closed.  Reports the replies and when each
      connection ended.
  api_clients.py burst SOCK --n N
      N connections at once, each sends a status request; reports how many
      got ok, busy or something else, and the slowest reply.
  api_clients.py big SOCK --bytes B
      Sends B bytes without a newline; reports the reply and its time.
  api_clients.py noread SOCK --n N --seconds S
      N connections send a status request and read nothing for S s, then
      read what is there: reports the bytes got and whether the daemon had
      closed (a reply it gave up on is short of its newline).
  api_clients.py requests SOCK FILE
      Each line of FILE as a request on a connection of its own; reports
      how many were answered ok.
  api_clients.py request SOCK LINE
      Sends LINE as it is (escape sequences decoded) and prints the reply.
"""
import argparse
import json
import selectors
import socket
import sys
import time


def connect(path, timeout=5):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)  # blocking: waits for room in the listen backlog
    s.settimeout(timeout)
    return s


def read_all(s, limit=1 << 24):
    data = b""
    while len(data) < limit:
        try:
            b = s.recv(65536)
        except socket.timeout:
            return data, "timeout"
        except OSError as e:
            return data, e.strerror or str(e)
        if not b:
            return data, "eof"
        data += b
    return data, "limit"


def first_line(data):
    return data.split(b"\n", 1)[0].decode(errors="replace")


def trickle(a):
    end = time.monotonic() + a.seconds
    body = b'{"cmd":"status","pad":"' + b"x" * 100000
    conns, replies = 0, []
    while time.monotonic() < end:
        try:
            s = connect(a.sock)
        except OSError as e:
            replies.append("connect: " + str(e))
            time.sleep(a.gap_ms / 1000)
            continue
        conns += 1
        s.setblocking(False)
        t0 = time.monotonic()
        closed = False
        for b in body:
            if time.monotonic() >= end:
                break
            try:
                s.send(bytes([b]))
            except OSError:
                closed = True
            try:
                got = s.recv(65536)
                if got:
                    replies.append("%.1fs: %s" % (time.monotonic() - t0, first_line(got)))
                closed = True  # answered, or closed without a word
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            if closed:
                break
            time.sleep(a.gap_ms / 1000)
        s.close()
    print(json.dumps({"connections": conns, "replies": replies[:5], "n_replies": len(replies)}))


def idle(a):
    """Every connection watched at once: when each ends is its own time."""
    socks = [connect(a.sock, a.seconds) for _ in range(a.n)]
    t0 = time.monotonic()
    sel = selectors.DefaultSelector()
    data = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        data[s] = b""
    out = []
    while len(out) < len(socks) and time.monotonic() - t0 < a.seconds:
        for key, _ in sel.select(0.05):
            s = key.fileobj
            try:
                b = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                b = b""
            if b:
                data[s] += b
                continue
            sel.unregister(s)
            out.append({"t": round(time.monotonic() - t0, 2), "end": "eof",
                        "reply": first_line(data[s])})
    for s in sel.get_map().values():
        out.append({"t": a.seconds, "end": "open", "reply": first_line(data[s.fileobj])})
    print(json.dumps({"clients": out}))


def burst(a):
    socks = []
    for _ in range(a.n):
        try:
            socks.append(connect(a.sock))
        except OSError as e:
            print(json.dumps({"error": "connect: " + str(e)}))
            return
    t0 = time.monotonic()
    for s in socks:
        try:
            s.sendall(b'{"cmd":"status"}\n')
        except OSError:
            pass  # refused already; its answer is queued
    res = {"ok": 0, "busy": 0, "other": [], "slowest": 0.0}
    for s in socks:
        data, _ = read_all(s)
        res["slowest"] = max(res["slowest"], round(time.monotonic() - t0, 2))
        try:
            r = json.loads(first_line(data))
        except ValueError:
            res["other"].append(first_line(data)[:100])
            continue
        if r.get("ok"):
            res["ok"] += 1
        elif "busy" in r.get("error", ""):
            res["busy"] += 1
        else:
            res["other"].append(r.get("error", ""))
    print(json.dumps(res))


def big(a):
    s = connect(a.sock)
    t0 = time.monotonic()
    chunk = b'{"cmd":"status","pad":"' + b"y" * (a.bytes - 24)
    try:
        s.sendall(chunk)
    except OSError:
        pass
    data, how = read_all(s)
    print(json.dumps({"t": round(time.monotonic() - t0, 2), "end": how, "reply": first_line(data)}))


def noread(a):
    socks = [connect(a.sock, 1) for _ in range(a.n)]
    for s in socks:
        s.sendall(b'{"cmd":"status"}\n')
    time.sleep(a.seconds)
    out = []
    for s in socks:
        data, how = read_all(s)
        out.append({"bytes": len(data), "complete": data.endswith(b"\n"), "end": how})
    print(json.dumps({"clients": out}))


def requests(a):
    """Each line of FILE as a request of its own, one after the other."""
    ok, errors = 0, []
    with open(a.file) as f:
        for line in f:
            s = connect(a.sock)
            s.sendall(line.encode())
            data, _ = read_all(s)
            s.close()
            try:
                r = json.loads(first_line(data))
            except ValueError:
                r = {"error": first_line(data)}
            if r.get("ok"):
                ok += 1
            elif len(errors) < 3:
                errors.append(r.get("error"))
    print(json.dumps({"ok": ok, "errors": errors}))


def request(a):
    s = connect(a.sock)
    s.sendall(a.line.encode().decode("unicode_escape").encode("latin-1"))
    data, _ = read_all(s)
    sys.stdout.write(first_line(data) + "\n")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("trickle")
    p.add_argument("sock")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--gap-ms", type=int, default=300)
    p.set_defaults(fn=trickle)
    p = sub.add_parser("idle")
    p.add_argument("sock")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--seconds", type=float, default=6)
    p.set_defaults(fn=idle)
    p = sub.add_parser("burst")
    p.add_argument("sock")
    p.add_argument("--n", type=int, default=40)
    p.set_defaults(fn=burst)
    p = sub.add_parser("big")
    p.add_argument("sock")
    p.add_argument("--bytes", type=int, default=200000)
    p.set_defaults(fn=big)
    p = sub.add_parser("noread")
    p.add_argument("sock")
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--seconds", type=float, default=4)
    p.set_defaults(fn=noread)
    p = sub.add_parser("requests")
    p.add_argument("sock")
    p.add_argument("file")
    p.set_defaults(fn=requests)
    p = sub.add_parser("request")
    p.add_argument("sock")
    p.add_argument("line")
    p.set_defaults(fn=request)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
