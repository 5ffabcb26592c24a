#!/usr/bin/python3
"""NVMe/TCP over a real TCP connection whose target stops answering commands.

  nvme_stall.py server --port P --answer N
      Speaks just enough NVMe/TCP: answers the ICReq and the I/O queue's
      Fabrics Connect, then the first N Read commands (a response capsule
      each), then goes quiet while keeping the connection open: the TCP
      stack still acknowledges every segment, no NVMe response comes.
  nvme_stall.py client --dst ADDR --port P --reads M [--gap-ms G]
      Connects (ICReq, Connect qid 1) and sends M Reads, one at a time,
      waiting up to 10 s for each response; prints one JSON line with the
      number answered and the local port.
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pkt"))
import nvme_pdus as N  # noqa: E402


def recv_pdu(s):
    """One PDU: the 8-byte common header gives its length."""
    hdr = b""
    while len(hdr) < 8:
        b = s.recv(8 - len(hdr))
        if not b:
            return None
        hdr += b
    plen = struct.unpack_from("<I", hdr, 4)[0]
    body = b""
    while len(hdr) + len(body) < plen:
        b = s.recv(plen - len(hdr) - len(body))
        if not b:
            return None
        body += b
    return hdr + body


def cid_of(capsule):
    return struct.unpack_from("<H", capsule, 8 + 2)[0]


def serve(conn, answer):
    recv_pdu(conn)  # ICReq
    conn.sendall(N.icresp())
    c = recv_pdu(conn)  # Connect
    conn.sendall(N.capsule_resp(cid_of(c)))
    n = 0
    while True:
        c = recv_pdu(conn)
        if c is None:
            return
        if n < answer:
            conn.sendall(N.capsule_resp(cid_of(c), sqid=1))
        n += 1


def server(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", a.port))
    ls.listen(8)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, a.answer), daemon=True).start()


def client(a):
    s = socket.create_connection((a.dst, a.port), timeout=10)
    s.sendall(N.icreq())
    recv_pdu(s)
    s.sendall(N.connect_cmd(1, qid=1))
    recv_pdu(s)
    answered = 0
    try:
        for i in range(a.reads):
            s.sendall(N.read_cmd(100 + i, slba=i * 8, nlb=7))
            if recv_pdu(s) is None:
                break
            answered += 1
            time.sleep(a.gap_ms / 1000)
    except socket.timeout:
        pass
    print(json.dumps({"answered": answered, "sport": s.getsockname()[1]}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("server")
    sv.add_argument("--port", type=int, default=4420)
    sv.add_argument("--answer", type=int, default=5)
    cl = sub.add_parser("client")
    cl.add_argument("--dst", required=True)
    cl.add_argument("--port", type=int, default=4420)
    cl.add_argument("--reads", type=int, default=10)
    cl.add_argument("--gap-ms", type=int, default=20)
    a = ap.parse_args()
    server(a) if a.cmd == "server" else client(a)


if __name__ == "__main__":
    main()
