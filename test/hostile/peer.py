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
import random
import select
import socket
import struct
import sys
import threading
import time

HELLO_MAGIC = 0x31485258
ACCEPT_MAGIC = 0x31415258
REGION_MAGIC = 0x31525258  # regions on demand (lib/transports/local_regions.ts)
SRV_POOL = 3079  # the server's pool byte (lib/pool/lazy_open.ts)
POOL_ANNOUNCES, POOL_OPENED = 1, 2


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


KEEP = []  # our read ends of wake-up pipes, held for the life of the process


def wake_pair():
    """(our wait end, the end for the peer) as a version-3 peer makes them: a pipe."""
    ours, theirs = os.pipe2(os.O_NONBLOCK)
    KEEP.append(ours)
    return ours, theirs


def send_hello(s, opts, order=0, extra=()):
    """A HELLO with the fds its version carries (v3: a wake-up pipe's write end), plus `extra`."""
    fds = list(extra)
    if opts["version"] >= 2:
        _, theirs = wake_pair()
        fds.insert(0, theirs)
    socket.send_fds(s, [hello(opts, order)], fds)


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
        send_hello(s, opts, 0, extra)
        data, fds = recv_reply(s)
        close_all(fds)
        if data:
            accepted += 1
        else:
            refused += 1
        s.close()
    out({"accepted": accepted, "refused": refused})


def mode_break_live(opts):
    """`count` connections, each honest up to the ACCEPT; then, before
    anything else, its client live byte (offset 20 of the control page) set
    to no state at all, and hang up. The server binds the ring a moment after
    its ACCEPT: this races that first look."""
    broke = 0
    for _ in range(opts["count"]):
        s = seqpacket()
        s.connect(opts["path"])
        send_hello(s, opts, 12)
        data, fds = recv_reply(s)
        if data and fds:
            mem = mmap.mmap(fds[0], 4096)
            mem[20] = 0x57
            mem.close()
            broke += 1
            time.sleep(0.002)  # the server takes the connection in before the hang-up
        close_all(fds)
        s.close()
    out({"broke": broke})


def mode_ask(opts):
    """Ask for ring order `order`; report what the server granted."""
    s = seqpacket()
    try:
        s.connect(opts["path"])
    except PermissionError:
        out({"replied": False, "denied": True})
        return
    try:
        send_hello(s, opts, opts["order"])
    except (BrokenPipeError, ConnectionResetError):  # refused at accept
        out({"replied": False})
        return
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
    elif kind == "bad-live":
        # An honest layout whose server live byte (offset 21) is no state at all.
        mem = memfd(size, 0)
        os.pwrite(mem, bytes([0x57]), 21)
        fcntl.fcntl(mem, fcntl.F_ADD_SEALS, RESIZE_SEALS)
    else:
        mem = memfd(size, RESIZE_SEALS)
    if opts["version"] < 2:  # wake-ups over two eventfds
        c2s = os.eventfd(0, os.EFD_NONBLOCK)
        if kind == "semaphore":
            s2c = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_SEMAPHORE)
            os.eventfd_write(s2c, 0xFFFFFFFFFFFFFFF0)
        elif kind == "same-fd":
            s2c = c2s
        else:
            s2c = os.eventfd(0, os.EFD_NONBLOCK)
        fds = [mem, c2s, s2c]
    else:  # the write end of our wake-up pipe
        if kind == "semaphore":
            wake = os.eventfd(0xFFFFFFF0, os.EFD_NONBLOCK | os.EFD_SEMAPHORE)
        elif kind == "same-fd":
            wake = mem
        elif kind == "stream-socket":
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            KEEP.append(a)
            wake = b.detach()
        elif kind == "connected-elsewhere":
            # A datagram socket connected to someone else's socket: kicks
            # would go there, sent with the victim's credentials.
            sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sink.bind("\0xenring-hostile-sink-%d" % os.getpid())
            KEEP.append(sink)
            d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            d.connect("\0xenring-hostile-sink-%d" % os.getpid())
            wake = d.detach()
        elif kind == "pipe-read-end":
            wake, w = os.pipe2(os.O_NONBLOCK)
            KEEP.append(w)
        elif kind == "fifo":
            # A named FIFO (fstat on one could block on FUSE): refused unread.
            path = "/tmp/xenring-hostile-fifo-%d" % os.getpid()
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            os.mkfifo(path)
            KEEP.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            wake = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.unlink(path)
        else:
            ours, theirs = wake_pair()
            opts["_wait"] = ours
            wake = theirs
        fds = [mem, wake]
    if kind == "extra-fds":
        fds += [os.eventfd(0) for _ in range(4)]
    opts["_fds"] = fds
    return fds


def freeze(opts, hello_fds):
    """Try to block the client's event loop through the wake-up fds.

    v1 (eventfds): the eventfd the client kicks is one open file description
    on both sides, so clear O_NONBLOCK on it and preload it to its maximum;
    the client's next kick write() then blocks. v3 (pipes): fill the pipe
    the client kicks and clear O_NONBLOCK on the write end it shares with us;
    flood the client's wake-up pipe too. Meanwhile keep asking the
    client to notify us on every read and write (control page byte 22).
    """
    fds = opts["_fds"]
    time.sleep(0.3)  # let the client finish its checks and connect
    mem = fds[0]
    if opts["version"] < 2:
        kick = fds[1]  # the client writes c2s
        try:
            os.eventfd_read(kick)  # still non-blocking: empty it first
        except BlockingIOError:
            pass
        os.eventfd_write(kick, 0xFFFFFFFFFFFFFFFE)
        fcntl.fcntl(kick, fcntl.F_SETFL, fcntl.fcntl(kick, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        client_wake = None
    else:
        # v3 (pipes): fill the pipe the client kicks (we never drain our
        # read end), then clear O_NONBLOCK on the write end we share with
        # it: a plain write() would now block; its vmsplice must not.
        kick = fds[1]
        try:
            while True:
                os.write(kick, b"x" * 4096)
        except BlockingIOError:
            pass
        fcntl.fcntl(kick, fcntl.F_SETFL, fcntl.fcntl(kick, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        client_wake = hello_fds[0] if hello_fds else None
        if client_wake is not None:
            os.set_blocking(client_wake, False)
    out("attacking")
    while not select.select([sys.stdin], [], [], 0.005)[0]:
        os.pwrite(mem, b"\x03", 22)  # client: notify us of every write and read
        if client_wake is not None:
            try:
                os.write(client_wake, b"x")
            except OSError:
                pass


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
        if opts.get("sockError"):
            sock_error(conn, opts)
            return
        data, fds = recv_reply(conn)
        if not data:  # the client hung up on us
            close_all(fds)
            conn.close()
            continue
        order = 12
        socket.send_fds(conn, [struct.pack("<IIII", ACCEPT_MAGIC, opts["version"], order, order)], accept_fds(opts, order))
        if opts.get("hangupAfterAccept"):
            # Gone right behind the ACCEPT: the hang-up reaches the client
            # while its handshake watcher passes to the connection.
            conn.close()
            close_all(fds)
            continue
        conns.append(conn)
        if opts.get("freeze"):
            freeze(opts, fds)
            return
        close_all(fds)
    wait_stdin_closed()


def sock_error(conn, opts):
    """Leave the client's rendezvous socket with a pending error (POLLERR).

    Reads the HELLO with MSG_PEEK (it stays queued), answers honestly, lets
    the client connect, then closes the socket with the HELLO still unread:
    the kernel then sets ECONNRESET on the client's end, which poll reports
    as POLLERR (libuv: UV_EBADF). The ring stays mapped and our live byte
    says connected, so only that error can tell the client.
    """
    conn.settimeout(5.0)
    conn.recv(4096, socket.MSG_PEEK)  # (recv_fds drops its flags on Python 3.11)
    order = 12
    socket.send_fds(conn, [struct.pack("<IIII", ACCEPT_MAGIC, opts["version"], order, order)], accept_fds(opts, order))
    time.sleep(0.5)  # the client maps the ring and connects
    conn.close()
    out("closed")
    wait_stdin_closed()  # the memfd and our wake-up end stay open meanwhile


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


# --- A peer that attacks a sleeping client's reader (issue 12: the wake-up read) ---

PROD, CONS, SRV_NOTIFY, SRV_FIN = 12, 8, 23, 3077  # the right ring: we produce, the client consumes


def pattern(n):
    """The bytes the "stream" attacks send (the test computes the same)."""
    return bytes((i * 7 + (i >> 9)) & 0xFF for i in range(n))


class RightRing:
    """The server-to-client ring of an accepted client, and the client's wake-up pipe."""

    def __init__(self, mem, order, kick_fd):
        self.mem, self.size, self.kick_fd = mem, 1 << order, kick_fd
        self.base = 4096 + self.size
        # Indices as whole aligned words: struct's "<I" packs and unpacks a
        # byte at a time, so the client could see (and we could read) a torn
        # index, which is corrupt: an honest peer must not write one.
        self.words = memoryview(mem).cast("I")
        self.prod = self.u32(PROD)

    def u32(self, off):
        return self.words[off // 4]

    def set_prod(self, v):
        self.words[PROD // 4] = v & 0xFFFFFFFF

    def kick(self, times=1):
        # As an honest writer does before it kicks: the client's request is answered.
        self.mem[SRV_NOTIFY] &= ~1
        for _ in range(times):
            try:
                os.write(self.kick_fd, b"x")
            except BlockingIOError:  # the client's pipe is full: it is awake anyway
                return
            except BrokenPipeError:  # the client closed the ring (it failed it)
                return

    def wait_asleep(self, timeout=10.0):
        """Until the client read all we wrote and asked to hear of our next
        write (it armed its read and sleeps)."""
        end = time.monotonic() + timeout
        while not self.mem[SRV_NOTIFY] & 1 or self.u32(CONS) != self.prod:
            if time.monotonic() > end:
                raise TimeoutError("the client never went to sleep")
            time.sleep(0.001)
        time.sleep(0.05)  # past its arming, in the same JS turn as the request

    def send(self, data, storm, chunk):
        """Writes `data` honestly (never past the client's consumer index), kicking
        `storm` extra times per chunk and while waiting for room."""
        pos = 0
        while pos < len(data):
            used = (self.prod - self.u32(CONS)) & 0xFFFFFFFF
            room = self.size - used
            if room <= 0:
                self.kick(storm)
                time.sleep(0.0002)
                continue
            n = min(room, len(data) - pos, chunk)
            at = self.prod & (self.size - 1)
            first = min(n, self.size - at)
            self.mem[self.base + at:self.base + at + first] = data[pos:pos + first]
            if n > first:
                self.mem[self.base:self.base + n - first] = data[pos + first:pos + n]
            self.prod = (self.prod + n) & 0xFFFFFFFF
            self.set_prod(self.prod)
            pos += n
            self.kick(1 + storm)


def attack_stream(ring, opts):
    """Every byte of a pattern, in uneven chunks, with a kick storm throughout; then fin."""
    ring.send(pattern(opts["total"]), opts.get("storm", 0), opts.get("chunk", 1000))
    ring.mem[SRV_FIN] = 1
    ring.kick()
    out({"sent": opts["total"]})


def attack_storm(ring, opts):
    """Kicks with nothing written for `seconds` while the client sleeps, then streams."""
    ring.wait_asleep()
    kicks = 0
    end = time.monotonic() + opts["seconds"]
    while time.monotonic() < end:
        ring.kick(64)
        kicks += 64
    out({"kicks": kicks})
    attack_stream(ring, opts)


def attack_garbage(ring, opts):
    """While the client sleeps (its read armed), a producer index it cannot
    accept (opts["index"]: "over" the ring, "behind" its consumer index, or
    "huge"), with some honest bytes first (opts["first"]); then kicks."""
    if opts.get("first"):
        ring.send(pattern(opts["first"]), 0, 1000)
    ring.wait_asleep()
    cons = ring.u32(CONS)
    bad = {"over": cons + ring.size + 1, "behind": cons - 1, "huge": cons + 0x80000000}[opts["index"]]
    ring.set_prod(bad)
    ring.kick(opts.get("storm", 1))
    out("attacked")


def attack_later(ring, opts):
    """Sends `first` bytes, says "asleep" once the client sleeps with its read
    armed, then on a "go" line from the test sends `total` more with `storm`
    extra kicks per chunk and while the ring is full, and fin (the test acts
    on the client in between)."""
    ring.send(pattern(opts["first"]), 0, 1000)
    ring.wait_asleep()
    out("asleep")
    sys.stdin.readline()
    ring.send(pattern(opts["total"]), opts.get("storm", 0), 1000)
    ring.mem[SRV_FIN] = 1
    ring.kick()
    out({"sent": opts["total"]})


def mode_ring(opts):
    """Accept one client honestly, then attack the reader of its ring as opts["attack"] says."""
    srv = listen(opts["path"], opts)
    out("ready")
    conn, _ = srv.accept()
    data, hello_fds = recv_reply(conn)
    order = 12
    socket.send_fds(conn, [struct.pack("<IIII", ACCEPT_MAGIC, opts["version"], order, order)], accept_fds(opts, order))
    fds = opts["_fds"]
    mem = mmap.mmap(fds[0], 4096 + 2 * (1 << order))
    os.set_blocking(hello_fds[0], False)
    ring = RightRing(mem, order, hello_fds[0])
    {"stream": attack_stream, "storm": attack_storm, "garbage": attack_garbage, "later": attack_later}[opts["attack"]](ring, opts)
    wait_stdin_closed()


SENT_INODES = []  # of the region memfds sent, for the test to look for in its mappings


def sealed_memfd(size, seals=True):
    fd = os.memfd_create("xenring-pool-hostile", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    if seals:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, RESIZE_SEALS)
    SENT_INODES.append(os.fstat(fd).st_ino)
    return fd


def mode_regions(opts):
    """A server with regions on demand (the client's 24-byte HELLO): an
    honest ring in a 28-byte ACCEPT (the pool agreed both ways), then, once
    the client is live, its own REGION as opts["region"] says:
      honest       a sealed memfd of the agreed size, then OPENED (no payload)
      wrong-size   half the agreed size, announced as such
      twice        two good REGION messages
      two-fds      the region and a pipe end in one message
      not-memfd    a pipe end instead of a memfd
      unsealed     a memfd of the right size without its seals
      garbage      16 random bytes, no fd
      opened-without  OPENED and 4 ring bytes, no REGION ever
    Each ends with a kick; reports {"helloBytes", "sent", "inodes" (of the
    memfds it sent)}, holds until stdin closes."""
    srv = listen(opts["path"], opts)
    out("ready")
    conn, _ = srv.accept()
    data, hfds = recv_reply(conn)
    res = {"helloBytes": len(data)}
    pool = struct.unpack_from("<I", data, 16)[0] if len(data) >= 20 else 0
    order = 12
    ring_fd, wake = accept_fds(dict(opts, reply="honest", version=3), order)
    socket.send_fds(conn, [struct.pack("<IIIIIII", ACCEPT_MAGIC, 3, order, order, pool, pool, 1)], [ring_fd, wake])
    kick_fd = hfds[0]
    ring = mmap.mmap(ring_fd, 4096 + 2 * (1 << order), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    ring[SRV_POOL] = POOL_ANNOUNCES
    deadline = time.time() + 5
    while ring[20] != 1 and time.time() < deadline:  # the client live (1: connected)
        time.sleep(0.002)
    mode = opts["region"]
    msg = struct.pack("<IIII", REGION_MAGIC, 3, pool, 0)
    if mode in ("honest", "twice", "two-fds"):
        extra = []
        if mode == "two-fds":
            r, w = os.pipe()
            KEEP.extend([r, w])
            extra = [r]
        socket.send_fds(conn, [msg], [sealed_memfd(4096 + pool)] + extra)
        if mode == "twice":
            socket.send_fds(conn, [msg], [sealed_memfd(4096 + pool)])
        ring[SRV_POOL] = POOL_ANNOUNCES | POOL_OPENED
    elif mode == "wrong-size":
        socket.send_fds(conn, [struct.pack("<IIII", REGION_MAGIC, 3, pool // 2, 0)], [sealed_memfd(4096 + pool // 2)])
    elif mode == "not-memfd":
        r, w = os.pipe()
        KEEP.extend([r, w])
        socket.send_fds(conn, [msg], [r])
    elif mode == "unsealed":
        socket.send_fds(conn, [msg], [sealed_memfd(4096 + pool, seals=False)])
    elif mode == "garbage":
        conn.send(os.urandom(16))
    elif mode == "opened-without":
        ring[SRV_POOL] = POOL_ANNOUNCES | POOL_OPENED
        right = 4096 + (1 << order)  # the server-to-client ring
        ring[right:right + 4] = b"ring"
        struct.pack_into("<I", ring, 12, 4)  # its producer index
    try:
        os.write(kick_fd, b"k")
    except OSError:
        pass
    res["sent"] = mode
    res["inodes"] = SENT_INODES
    out(res)
    wait_stdin_closed()


# --- A server that recycles ring memfds (issue 14: the client's ring cache) ---

RING = 1 << 12  # both rings, order 12
RING_FILE = 4096 + 2 * RING
LEFT, RIGHT, CLI_FIN = 4096, 4096 + RING, 3076  # client->server data, server->client data
OUT_LOCK = threading.Lock()


def say(obj):
    with OUT_LOCK:
        out(obj)


class Ring:
    """A ring memfd ("memfd:recycler" in the client's maps) and our mapping of it."""

    def __init__(self):
        self.fd = os.memfd_create("recycler", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
        os.ftruncate(self.fd, RING_FILE)
        fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, RESIZE_SEALS)
        self.mem = mmap.mmap(self.fd, RING_FILE)
        self.words = memoryview(self.mem).cast("I")  # aligned u32 stores: no torn index

    def init(self):
        """As a recycling xenring server: the control page zeroed, then initialised."""
        os.pwrite(self.fd, bytes(4096), 0)
        self.header()

    def header(self):
        struct.pack_into("<HHBBBB", self.mem, 16, 12, 12, 2, 1, 1, 0)  # orders, client waiting, we live
        struct.pack_into("<II", self.mem, 3072, EXT_MAGIC, 0)  # no fin, no pool bytes

    def scribble(self, how, seed):
        """Garbage everywhere (seeded: the same bytes on any ring). "page": the
        whole control page too; otherwise a header that passes the client's
        first look, with garbage indices: "over" the ring, or "readable"
        (1000 garbage bytes to read, then our fin). Returns what the client may read."""
        rnd = random.Random(seed)
        self.mem[:] = rnd.randbytes(RING_FILE)
        if how == "page":
            return b""
        self.header()
        w = self.words
        w[2] = rnd.getrandbits(32)  # right cons (the client's)
        if how == "over":
            w[3] = (w[2] + RING + 1) & 0xFFFFFFFF
            return b""
        w[3] = (w[2] + 1000) & 0xFFFFFFFF
        w[0] = w[1]  # left ring: garbage but empty
        self.mem[SRV_FIN] = 1
        return bytes(self.mem[RIGHT + ((w[2] + i) & (RING - 1))] for i in range(1000))

    def copy(self, base, at, n):
        return bytes(self.mem[base + ((at + i) & (RING - 1))] for i in range(n))

    def echo(self, kick, wait, limit):
        """Echoes the left ring into the right one, `limit` bytes (None: up to
        the client's fin, then ours). Returns the count, or "bad-index"."""
        w, total, deadline = self.words, 0, time.monotonic() + 30
        while (limit is None or total < limit) and time.monotonic() < deadline:
            try:
                os.read(wait, 4096)  # the client's kicks: we poll instead
            except BlockingIOError:
                pass
            fin = self.mem[CLI_FIN]
            cons, prod = w[0], w[1]
            n = (prod - cons) & 0xFFFFFFFF
            if n > RING:
                return "bad-index"
            n = min(n, RING - ((w[3] - w[2]) & 0xFFFFFFFF))
            if n == 0:
                if fin and prod == cons:
                    break
                time.sleep(0.0005)
                continue
            data = self.copy(LEFT, cons, n)
            for i, b in enumerate(data):
                self.mem[RIGHT + ((w[3] + i) & (RING - 1))] = b
            w[3] = (w[3] + n) & 0xFFFFFFFF
            w[0] = (cons + n) & 0xFFFFFFFF
            total += n
            wake(kick)
        if limit is None:
            self.mem[SRV_FIN] = 1
            wake(kick)
        return total


def wake(fd):
    try:
        os.write(fd, b"k")
    except (BlockingIOError, BrokenPipeError):
        pass


def serve_recycled(srv, rings, cmd, version):
    """One connection on ring cmd["ring"] (a new memfd if "fresh"): cleared or
    scribbled, ACCEPTed, echoed; then held, kicking the client every 100 ms
    (it looks at the ring again), until it hangs up."""
    conn, _ = srv.accept()
    _, hfds = recv_reply(conn)
    if cmd.get("fresh") or cmd["ring"] not in rings:
        rings[cmd["ring"]] = Ring()  # the old file lives on in our mapping
    ring = rings[cmd["ring"]]
    expect = ring.scribble(cmd["scribble"], cmd["seed"]) if "scribble" in cmd else ring.init()
    ours, theirs = os.pipe2(os.O_NONBLOCK)
    # "readonly": the ring memfd reopened read-only (through /proc): refused as any bad fd.
    mfd = os.open("/proc/self/fd/%d" % ring.fd, os.O_RDONLY) if cmd.get("readonly") else ring.fd
    socket.send_fds(conn, [struct.pack("<IIII", ACCEPT_MAGIC, version, 12, 12)], [mfd, theirs])
    if mfd != ring.fd:
        os.close(mfd)
    os.close(theirs)
    say({"id": cmd["id"], "event": "accepted", "ino": os.fstat(ring.fd).st_ino, "expect": (expect or b"").hex()})
    kick = hfds[0]
    os.set_blocking(kick, False)
    # (A client refused at connect never writes: nothing to echo.)
    echoed = ring.echo(kick, ours, cmd.get("echo")) if "scribble" not in cmd and not cmd.get("readonly") else 0
    conn.settimeout(0.1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the client hangs up, kicking it now and then
        try:
            if not conn.recv(4096):
                break
        except socket.timeout:
            wake(kick)
        except OSError:
            break
    conn.close()
    close_all(hfds + [ours])
    say({"id": cmd["id"], "event": "closed", "echoed": echoed})


def mode_recycle(opts):
    """A server that serves each {"id", "ring", ...} line on stdin with one
    connection (serve_recycled, in a thread: connections may overlap)."""
    srv = listen(opts["path"], opts)
    rings = {}
    out("ready")

    def run(cmd):
        try:
            serve_recycled(srv, rings, cmd, opts["version"])
        except Exception as e:  # reported, so that the test fails with it
            say({"id": cmd["id"], "event": "error", "error": repr(e)})

    for line in sys.stdin:
        threading.Thread(target=run, args=(json.loads(line),), daemon=True).start()


REOPEN_MAGIC = 0x314F5258  # kept links (lib/transports/local_reuse.ts)
REOPENED_MAGIC = 0x314B5258
REUSABLE = 2
SRV_LIVE, CLI_LIVE = 21, 20
# The kept link's reuse byte and its values (lib/transports/local_reuse.ts).
REUSE_BYTE = 3080
REUSE_INITIALISING, REUSE_READY, REUSE_CLAIMED = 1, 2, 3
REOPEN_CLAIMED = 1


def reopened_reply(how, version):
    """What a hostile server answers a REOPEN with: (bytes, fds)."""
    if how == "garbage":
        return b"garbage-garbage!", []
    if how == "orders":
        return struct.pack("<IIII", REOPENED_MAGIC, version, 13, 12), []
    if how == "fds":
        r, w = os.pipe()
        os.close(w)
        return struct.pack("<IIII", REOPENED_MAGIC, version, 12, 12), [r]
    return struct.pack("<IIII", REOPENED_MAGIC, version, 12, 12), []


def serve_kept(conn, opts, n):
    """One client's rendezvous connection, kept: ACCEPTed as reusable, echoed
    to its fin; then each REOPEN answered as opts["reopen"] says ("honest":
    the control page zeroed, the ring initialised again, echoed again; a
    claimed REOPEN: the ring the client prepared and claimed, echoed as it
    is, no answer). The other ways hold the reuse byte at "initialising", so
    that the client never prepares the ring and always asks; "ready-garbage"
    instead scribbles over the page and marks it ready for the client to take."""
    version = opts["version"]
    _, hfds = recv_reply(conn)
    kick = hfds[0]
    os.set_blocking(kick, False)
    ring = Ring()
    ring.init()
    ours, theirs = os.pipe2(os.O_NONBLOCK)
    # Pool fields (none agreed) and flags: REUSABLE only.
    accept = struct.pack("<IIIIIII", ACCEPT_MAGIC, version, 12, 12, 0, 0, REUSABLE)
    socket.send_fds(conn, [accept], [ring.fd, theirs])
    os.close(theirs)
    conn.settimeout(None)
    rounds = 0
    how = opts.get("reopen", "honest")
    while True:
        echoed = ring.echo(kick, ours, None)  # to the client's fin, then ours
        if how not in ("honest", "ready-garbage"):
            ring.mem[REUSE_BYTE] = REUSE_INITIALISING
        ring.mem[SRV_LIVE] = 0  # our side closed: the client may ask for the link again
        if how == "ready-garbage":
            time.sleep(0.05)  # the client closed too (and may have prepared the ring): now ours
            ring.scribble("over", n)
            ring.mem[REUSE_BYTE] = REUSE_READY
        wake(kick)
        say({"event": "served", "conn": n, "round": rounds, "echoed": echoed})
        rounds += 1
        try:
            data, fds = socket.recv_fds(conn, 4096, 4)[:2]
        except OSError:
            data, fds = b"", []
        close_all(fds)
        if not data:
            say({"event": "closed", "conn": n})
            break
        magic, _, flags = struct.unpack_from("<III", data) if len(data) >= 12 else (0, 0, 0)
        claimed = flags == REOPEN_CLAIMED
        say({"event": "reopen", "conn": n, "ok": magic == REOPEN_MAGIC and len(data) == 16, "claimed": claimed})
        if how == "ready-garbage":
            conn.recv(4096)  # until the client gives up on the ring and closes
            say({"event": "closed", "conn": n})
            break
        if how == "close":
            break
        if how == "honest" and claimed:
            if ring.mem[REUSE_BYTE] != REUSE_CLAIMED:
                raise RuntimeError("a claimed REOPEN of a ring not claimed")
            ring.mem[REUSE_BYTE] = 0  # we are on it: the next close prepares it again
            continue
        if how == "silent":
            conn.recv(4096)  # until the client gives up on it and closes
            say({"event": "closed", "conn": n})
            break
        if how == "honest":
            ring.init()
        msg, rfds = reopened_reply(how, version)
        socket.send_fds(conn, [msg], rfds)
        close_all(rfds)
        if how != "honest":
            conn.recv(4096)
            say({"event": "closed", "conn": n})
            break
    conn.close()
    close_all(hfds + [ours])


def mode_reuse_server(opts):
    """A server that agrees to keep links, serving every connection (fresh
    ones too) in its own thread: serve_kept."""
    srv = listen(opts["path"], opts)
    out("ready")
    n = 0
    while True:
        conn, _ = srv.accept()

        def run(c, i):
            try:
                serve_kept(c, opts, i)
            except Exception as e:  # reported, so that the test fails with it
                say({"event": "error", "error": repr(e)})

        threading.Thread(target=run, args=(conn, n), daemon=True).start()
        n += 1


def mode_reuse_client(opts):
    """A client that asks to keep its link, closes its one connection in
    order, waits until the server closed its side, then attacks the kept
    socket as opts["attack"] says and reports what came back."""
    version = opts["version"]
    s = seqpacket()
    s.connect(opts["path"])
    ours, theirs = os.pipe2(os.O_NONBLOCK)
    hello = struct.pack("<IIIIII", HELLO_MAGIC, version, 0, os.getpid(), 0, REUSABLE)
    reopen = struct.pack("<IIII", REOPEN_MAGIC, version, 0, 0)
    attack = opts["attack"]
    socket.send_fds(s, [hello], [theirs])
    os.close(theirs)
    data, fds = recv_reply(s)
    flags = struct.unpack_from("<I", data, 24)[0] if len(data) == 28 else 0
    memfd, kick = fds[0], fds[1]
    os.set_blocking(kick, False)
    order = struct.unpack_from("<I", data, 8)[0]
    size = 4096 + 2 * (1 << order)
    mem = mmap.mmap(memfd, size)
    mem[CLI_LIVE] = 1
    claimed = struct.pack("<IIII", REOPEN_MAGIC, version, REOPEN_CLAIMED, 0)
    if attack == "live":
        s.send(reopen)  # before our side closed
    elif attack == "claim-live":
        # A claimed REOPEN before the server's side closed (an honest client
        # that closes last, prepares the ring and claims it may send one
        # while the server is still closing): held for the server's close,
        # where this ring, which nobody prepared, is refused.
        mem[REUSE_BYTE] = REUSE_CLAIMED
        s.send(claimed)
    mem[CLI_FIN] = 1  # we write nothing: fin, then gone
    mem[CLI_LIVE] = 0
    wake(kick)
    deadline = time.monotonic() + 10
    # ("live": the server answers our early REOPEN as soon as it closed, and
    # its next connection makes it live again: nothing to wait for.)
    # Closed: its live byte gone, or (it closed last) the ring already
    # prepared for our next connection, which makes it live again.
    while attack not in ("live", "claim-live") and mem[SRV_LIVE] != 0 and mem[REUSE_BYTE] != REUSE_READY and time.monotonic() < deadline:
        time.sleep(0.001)
    out({"event": "server-closed", "agreed": bool(flags & REUSABLE), "closed": mem[SRV_LIVE] == 0 or mem[REUSE_BYTE] == REUSE_READY})
    ready = mem[REUSE_BYTE] == REUSE_READY
    try:
        if attack == "fds":
            r, w = os.pipe()
            socket.send_fds(s, [reopen], [r, w])
            os.close(r)
            os.close(w)
        elif attack == "garbage":
            s.send(b"garbage-garbage!")
        elif attack == "flood":
            for _ in range(5):
                s.send(reopen)
        elif attack == "reopen":
            s.send(reopen)
        elif attack == "claim":
            # Takes the ring as prepared (a plain store: we are its only
            # other user) and says so: the server attaches, answers nothing.
            mem[REUSE_BYTE] = REUSE_CLAIMED
            s.send(claimed)
        elif attack == "claim-late":
            # Claims, then sends the REOPEN only after the server's idle
            # time: its cache frees the link meanwhile, and must not.
            mem[REUSE_BYTE] = REUSE_CLAIMED
            time.sleep(opts["late"])
            s.send(claimed)
        elif attack == "claim-unclaimed":
            s.send(claimed)  # a claim the reuse byte does not show
    except OSError:
        pass  # the server closed the socket on us meanwhile: read what it said
    replies = []
    s.settimeout(2.0)
    errors = 0
    while True:
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        except OSError:
            # A server that closed with our messages unread leaves ECONNRESET
            # pending, returned once before what it sent us: read on.
            errors += 1
            if errors < 2:
                continue
            d = b""
        if not d:
            replies.append("closed")
            break
        magic = struct.unpack_from("<I", d)[0] if len(d) >= 4 else 0
        replies.append("reopened" if magic == REOPENED_MAGIC else d.hex())
        if attack in ("live", "reopen"):
            break
    out({"event": "replies", "replies": replies, "ready": ready})
    wait_stdin_closed()
    close_all([memfd, kick, ours])


MODES = {
    "reuse-server": mode_reuse_server,
    "reuse-client": mode_reuse_client,
    "recycle": mode_recycle,
    "regions": mode_regions,
    "flood": mode_flood,
    "plant": mode_plant,
    "server": mode_server,
    "hello-fds": mode_hello_fds,
    "ask": mode_ask,
    "break-live": mode_break_live,
    "ring": mode_ring,
}

if __name__ == "__main__":
    options = json.loads(sys.argv[2])
    if "uid" in options:  # become another user (the test runs as root)
        drop_to(options["uid"], options["gid"])
    MODES[sys.argv[1]](options)
