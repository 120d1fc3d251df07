"""A process that connects to a xenring server and lets its pid go before it
says HELLO (test/pool/pid_reuse.test.js):

    python3 pid_reuse_peer.py <json: {path, order, pidFile?}>

A child connects (so SO_PEERCRED names the child's pid), hands the connected
socket to this process over a socketpair and exits; this process reaps it and
prints {"pid": <the child's pid>} (and writes it to pidFile, if given). On a line on stdin it sends the HELLO in
that pid's name (version 3, no pool fields: an older xenring), maps the ring
the ACCEPT carries and prints {"marker": <times b"VICTIMSECRET" is in it>,
"ringIno": <the ring memfd's inode>}. Standard library only.
"""
import json
import mmap
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile"))
from peer import HELLO_MAGIC, out  # noqa: E402 (the hostile peer's wire constants and output)

PAGE = 4096


def main():
    opts = json.loads(sys.argv[1])
    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = os.fork()
    if child == 0:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(opts["path"])
            socket.send_fds(there, [b"s"], [s.fileno()])
        finally:
            os._exit(0)
    _, fds, _, _ = socket.recv_fds(here, 16, 1)
    os.waitpid(child, 0)  # the pid is free for the next process
    conn = socket.socket(fileno=fds[0])
    if opts.get("pidFile"):  # for a test that waits without running its event loop
        with open(opts["pidFile"] + ".tmp", "w") as f:
            f.write(str(child))
        os.rename(opts["pidFile"] + ".tmp", opts["pidFile"])
    out({"pid": child})
    sys.stdin.readline()
    wait_end, wake_end = os.pipe2(os.O_NONBLOCK)
    order = opts["order"]
    socket.send_fds(conn, [struct.pack("<IIII", HELLO_MAGIC, 3, order, child)], [wake_end])
    conn.settimeout(5)
    try:
        data, rfds = socket.recv_fds(conn, 4096, 16)[:2]
    except OSError as e:
        out({"error": str(e)})
        return
    if len(rfds) < 1:
        out({"error": "no ACCEPT (%d bytes)" % len(data)})
        return
    size = PAGE + 2 * (1 << struct.unpack_from("<I", data, 8)[0])
    ring = mmap.mmap(rfds[0], size, mmap.MAP_SHARED, mmap.PROT_READ)
    out({"marker": ring[:].count(b"VICTIMSECRET"), "ringIno": os.fstat(rfds[0]).st_ino})


main()
