#!/usr/bin/env python3
"""A hostile peer of xenring's local transport, in Python's standard library.

    python3 peer.py <mode> <json options>

It speaks the rendezvous protocol (a SOCK_SEQPACKET socket that passes fds with
SCM_RIGHTS) but breaks it on purpose. Results go to stdout as one JSON line;
"ready" lines tell the test when to act. Modes are listed in MODES below.
"""
import fcntl
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
    try:
        s.connect(opts["path"])
    except PermissionError:
        out({"replied": False, "denied": True})
        return
    s.send(hello(opts, opts["order"]))
    data, fds = recv_reply(s)
    res = {"replied": bool(data), "nfds": len(fds)}
    if len(data) >= 16:
        _, _, left, right = struct.unpack("<IIII", data[:16])
        res.update(left=left, right=right, memfdSize=os.fstat(fds[0]).st_size)
    close_all(fds)
    s.close()
    out(res)


EXT_MAGIC = 0x31585258


def memfd(size, seals, order=12):
    """A memfd with a vchan control page as a xenring server writes it."""
    fd = os.memfd_create("hostile", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    os.pwrite(fd, struct.pack("<HHBBBB", order, order, 2, 1, 1, 0), 16)
    os.pwrite(fd, struct.pack("<I", EXT_MAGIC), 3072)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


RESIZE_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


def accept_fds(opts, order):
    """The fds of an ACCEPT, honest or not as opts["reply"] says."""
    size = 4096 + 2 * (1 << order)
    kind = opts["reply"]
    if kind == "write-sealed":
        mem = memfd(size, RESIZE_SEALS | fcntl.F_SEAL_WRITE)
    elif kind == "not-memfd":
        mem = os.open("/dev/null", os.O_RDWR)  # F_GET_SEALS: EINVAL
    elif kind == "wrong-size":
        mem = memfd(size + 4096, RESIZE_SEALS)
    else:
        mem = memfd(size, RESIZE_SEALS)
    c2s = os.eventfd(0, os.EFD_NONBLOCK)
    if kind == "semaphore":
        s2c = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_SEMAPHORE)
        os.eventfd_write(s2c, 0xFFFFFFFFFFFFFFF0)
    elif kind == "same-eventfd":
        s2c = c2s
    else:
        s2c = os.eventfd(0, os.EFD_NONBLOCK)
    fds = [mem, c2s, s2c]
    if kind == "extra-fds":
        fds += [os.eventfd(0) for _ in range(4)]
    return fds


def drop_to(uid, gid):
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def listen(path, opts):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = seqpacket()
    srv.bind(path)
    if "listenUid" in opts:
        # SO_PEERCRED of a listener is taken at listen(): bind in the
        # victim's directory, then listen as another user.
        drop_to(opts["listenUid"], opts["listenUid"])
    srv.listen(64)
    return srv


def mode_server(opts):
    """Accept `count` clients (default 1) and answer each as opts["reply"] says."""
    srv = listen(opts["path"], opts)
    out("ready")
    conns = []
    for _ in range(opts.get("count", 1)):
        conn, _ = srv.accept()
        data, fds = recv_reply(conn)
        close_all(fds)
        if not data:  # the client hung up on us
            conn.close()
            continue
        order = 12
        socket.send_fds(conn, [struct.pack("<IIII", ACCEPT_MAGIC, opts["version"], order, order)], accept_fds(opts, order))
        conns.append(conn)
    wait_stdin_closed()


def mode_plant(opts):
    """Plant a directory (with opts["mode"]) or a symlink at opts["path"]."""
    if "symlinkTo" in opts:
        os.symlink(opts["symlinkTo"], opts["path"])
    else:
        os.mkdir(opts["path"])
        os.chmod(opts["path"], opts["mode"])
    out("planted")


def mode_flood(opts):
    """Open up to `count` connections that never say HELLO and hold them."""
    held = []
    for _ in range(opts["count"]):
        s = seqpacket()
        s.setblocking(False)
        try:
            s.connect(opts["path"])
        except BlockingIOError:  # the listener's backlog is full
            s.close()
            break
        held.append(s)
    out({"connected": len(held)})
    wait_stdin_closed()


MODES = {
    "flood": mode_flood,
    "plant": mode_plant,
    "server": mode_server,
    "hello-fds": mode_hello_fds,
    "ask": mode_ask,
}

if __name__ == "__main__":
    options = json.loads(sys.argv[2])
    if "uid" in options:  # become another user (the test runs as root)
        drop_to(options["uid"], options["gid"])
    MODES[sys.argv[1]](options)
