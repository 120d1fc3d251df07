#!/usr/bin/env python3
"""A hostile peer of xenring's local transport, in Python's standard library.

    python3 peer.py <mode> <json options>

It speaks the rendezvous protocol (a SOCK_SEQPACKET socket that passes fds with
SCM_RIGHTS) but breaks it on purpose. Results go to stdout as one JSON line;
"ready" lines tell the test when to act. Modes are listed in MODES below.
"""
import json
import mmap
import os
import select
import socket
import struct
import sys
import time

HELLO_MAGIC = 0x31485258
ACCEPT_MAGIC = 0x31415258


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def wait_stdin_closed():
    """Hold everything open until the test closes our stdin."""
    try:
        sys.stdin.read()
    except Exception:
        pass


def seqpacket():
    return socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def hello(opts, order=0):
    return struct.pack("<IIII", HELLO_MAGIC, opts["version"], order, os.getpid())


def recv_reply(s, timeout=5.0):
    """(data, fds) of the server's reply; data is b"" when it closed on us."""
    s.settimeout(timeout)
    try:
        return socket.recv_fds(s, 4096, 16)[:2]
    except (ConnectionResetError, socket.timeout) as e:
        return b"", []


def close_all(fds):
    for fd in fds:
        os.close(fd)


def mode_hello_fds(opts):
    """Send `count` HELLOs, each carrying `nfds` eventfds; count the replies."""
    extra = [os.eventfd(0) for _ in range(opts["nfds"])]
    accepted = refused = 0
    for _ in range(opts["count"]):
        s = seqpacket()
        s.connect(opts["path"])
        socket.send_fds(s, [hello(opts)], extra)
        data, fds = recv_reply(s)
        close_all(fds)
        if data:
            accepted += 1
        else:
            refused += 1
        s.close()
    out({"accepted": accepted, "refused": refused})


def mode_ask(opts):
    """Ask for ring order `order`; report what the server granted."""
    s = seqpacket()
    s.connect(opts["path"])
    s.send(hello(opts, opts["order"]))
    data, fds = recv_reply(s)
    res = {"replied": bool(data), "nfds": len(fds)}
    if len(data) >= 16:
        _, _, left, right = struct.unpack("<IIII", data[:16])
        res.update(left=left, right=right, memfdSize=os.fstat(fds[0]).st_size)
    close_all(fds)
    s.close()
    out(res)


MODES = {
    "hello-fds": mode_hello_fds,
    "ask": mode_ask,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](json.loads(sys.argv[2]))
