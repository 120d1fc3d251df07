"""A hostile pool peer in its own process, in Python's standard library.

    python3 hostile_peer.py <size>          (fd 3: a pool region to scribble on)
    python3 hostile_peer.py client <json>   (a xenring client of the local transport)
    python3 hostile_peer.py recycle <json>  (two connections, then scribbles on rings and regions; see recycle())

The first form maps the pool region it is given as fd 3 and writes whatever
the test tells it, as a corrupt or malicious xenring peer could. Commands on
stdin, one per line:
  w32 <offset> <value>        store a little-endian u32
  fill <offset> <len> <byte>  fill bytes
  rand <offset> <len> <n>     n random u32 stores in [offset, offset+len)
  sync                        answer "ok" once everything above is stored

The second form connects to a xenring server over the real rendezvous socket
(handshake version 3 with the pool fields, or without them as an older
xenring), maps the ring and both pool regions, then plays one scenario
(see SCENARIOS in client()) and reports one JSON line; it holds the
connection until its stdin closes. With "lazy" it speaks the lazy opening
(lib/pool/lazy_open.ts): announces in its pool byte before going live, sets
OPENED before its first descriptor, and reports how many blocks of its
region the server touched before that ("regionBlocks", after one ring
message the server has read, told by a line on stdin).
"""
import fcntl
import json
import os
import select
import socket
import time
import mmap
import random
import struct
import sys
import threading


HELLO_MAGIC = 0x31485258
ACCEPT_MAGIC = 0x31415258
REGION_MAGIC = 0x31525258  # regions on demand (lib/transports/local_regions.ts)
PAGE = 4096
SLOTS = 128
DESC_PROD, DESC_CONS, DESC_ENTRIES = 0, 64, 128
COMP_PROD, COMP_CONS, COMP_ENTRIES = 2176, 2240, 2304
READER_FLAGS = COMP_PROD + 128 + SLOTS * 8  # lib/pool/layout.ts READER_FLAGS_OFFSET
CLI_LIVE, SRV_LIVE = 20, 21
CLI_FIN = 3076  # the xenring extension's client fin byte
CLI_POOL, SRV_POOL = 3078, 3079  # pool bytes (lib/pool/lazy_open.ts)
POOL_ANNOUNCES, POOL_OPENED = 1, 2


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def u32(mem, at):
    return struct.unpack_from("<I", mem, at)[0]


def push_descriptor(region, position, offset, length):
    prod = u32(region, DESC_PROD)
    at = DESC_ENTRIES + (prod % SLOTS) * 16
    struct.pack_into("<IIII", region, at, position & 0xFFFFFFFF, position >> 32, offset, length)
    struct.pack_into("<I", region, DESC_PROD, (prod + 1) & 0xFFFFFFFF)  # x86: stores stay in order


def push_completion(region, offset, length):
    prod = u32(region, COMP_PROD)
    at = COMP_ENTRIES + (prod % SLOTS) * 8
    struct.pack_into("<II", region, at, offset, length)
    struct.pack_into("<I", region, COMP_PROD, (prod + 1) & 0xFFFFFFFF)


def wait_for(pred, timeout=5.0):
    end = time.time() + timeout
    while not pred():
        if time.time() > end:
            return False
        time.sleep(0.002)
    return True


def sealed_region(size, seals=True):
    rfd = os.memfd_create("xenring-pool-hostile", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    os.ftruncate(rfd, PAGE + size)
    if seals:
        fcntl.fcntl(rfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return rfd


def report_and_hold(res):
    """Reports, then holds the connection until stdin closes."""
    out(res)
    try:
        sys.stdin.read()
    except Exception:
        pass


def regions_client(opts):
    """Regions on demand (opts["regions"] names what it does): the HELLO with
    the flags field and no region fd; then, after going live, its region in a
    REGION message on the rendezvous socket, honest or not:
      honest       a sealed memfd of the agreed size, then OPENED and one
                   descriptor of the pattern (opts["length"] bytes)
      wrong-size   announces and sends half the agreed size
      twice        two good REGION messages
      two-fds      the region and a pipe end in one message
      not-memfd    a pipe end instead of a memfd
      unsealed     a memfd of the right size without its seals
      garbage      16 random bytes, no fd
      opened-without  OPENED and a descriptor's ring bytes, no REGION ever
    Reports the ACCEPT it got, then holds until stdin closes."""
    pool = opts["poolSize"]
    mode = opts["regions"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(opts["path"])
    _, wake_end = os.pipe2(os.O_NONBLOCK)
    socket.send_fds(s, [struct.pack("<IIIIII", HELLO_MAGIC, 3, 0, os.getpid(), pool, 1)], [wake_end])
    s.settimeout(5)
    data, rfds = socket.recv_fds(s, 4096, 16)[:2]
    res = {"replyBytes": len(data), "nfds": len(rfds)}
    if len(data) == 28:
        res["toServer"], res["toClient"], res["flags"] = struct.unpack_from("<III", data, 16)
    order = struct.unpack_from("<I", data, 8)[0]
    ring = mmap.mmap(rfds[0], PAGE + 2 * (1 << order), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    kick_fd = rfds[1]

    def kick():
        try:
            os.write(kick_fd, b"k")
        except (BlockingIOError, BrokenPipeError):
            pass

    ring[CLI_POOL] = POOL_ANNOUNCES
    ring[CLI_LIVE] = 1
    kick()
    size = res.get("toServer", 0)
    region_msg = struct.pack("<IIII", REGION_MAGIC, 3, size, 0)
    keep = []
    if mode in ("honest", "twice", "two-fds"):
        rfd = sealed_region(size)
        keep.append(rfd)
        extra = []
        if mode == "two-fds":
            r, w = os.pipe()
            keep += [r, w]
            extra = [r]
        socket.send_fds(s, [region_msg], [rfd] + extra)
        if mode == "twice":
            socket.send_fds(s, [region_msg], [sealed_region(size)])
        region = mmap.mmap(rfd, PAGE + size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        n = opts.get("length", 10000)
        region[PAGE:PAGE + n] = bytes((i * 7 + 3) % 251 for i in range(n))
        ring[CLI_POOL] = POOL_ANNOUNCES | POOL_OPENED  # after the REGION, before the descriptor
        push_descriptor(region, 0, 0, n)
    elif mode == "wrong-size":
        rfd = sealed_region(size // 2)
        keep.append(rfd)
        socket.send_fds(s, [struct.pack("<IIII", REGION_MAGIC, 3, size // 2, 0)], [rfd])
    elif mode == "not-memfd":
        r, w = os.pipe()
        keep += [r, w]
        socket.send_fds(s, [region_msg], [r])
    elif mode == "unsealed":
        rfd = sealed_region(size, seals=False)
        keep.append(rfd)
        socket.send_fds(s, [region_msg], [rfd])
    elif mode == "garbage":
        s.send(os.urandom(16))
    elif mode == "opened-without":
        ring[CLI_POOL] = POOL_ANNOUNCES | POOL_OPENED
        ring[PAGE:PAGE + 4] = b"ring"
        struct.pack_into("<I", ring, 4, 4)  # left prod: ring bytes after a payload that never comes
    kick()
    res["regions"] = mode
    report_and_hold(res)


def client(opts):
    if opts.get("regions"):
        return regions_client(opts)
    pool = opts.get("poolSize")  # None: an older client, no pool field
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(opts["path"])
    wait_end, wake_end = os.pipe2(os.O_NONBLOCK)
    fds = [wake_end]
    region = None
    if pool is not None:
        msg = struct.pack("<IIIII", HELLO_MAGIC, 3, 0, os.getpid(), pool)
        if pool > 0:
            rfd = sealed_region(pool)
            region = mmap.mmap(rfd, PAGE + pool, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            fds.append(rfd)
    else:
        msg = struct.pack("<IIII", HELLO_MAGIC, 3, 0, os.getpid())
    socket.send_fds(s, [msg], fds)
    s.settimeout(5)
    data, rfds = socket.recv_fds(s, 4096, 16)[:2]
    res = {"replyBytes": len(data), "nfds": len(rfds)}
    if len(data) == 24:
        res["toServer"], res["toClient"] = struct.unpack_from("<II", data, 16)
    order = struct.unpack_from("<I", data, 8)[0]
    res["ringBytes"] = 1 << order
    ring = mmap.mmap(rfds[0], PAGE + 2 * (1 << order), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    kick_fd = rfds[1]
    theirs = None
    if len(rfds) > 2:
        theirs = mmap.mmap(rfds[2], PAGE + res["toClient"], mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    lazy = opts.get("lazy", False)
    if lazy:
        ring[CLI_POOL] = POOL_ANNOUNCES  # before going live: the server then waits for OPENED
    ring[CLI_LIVE] = 1  # connected (the server does not need our ring bytes)
    res["serverPoolByte"] = ring[SRV_POOL]

    def kick():
        try:
            os.write(kick_fd, b"k")
        except BlockingIOError:
            pass

    kick()
    scenario = opts.get("scenario", "none")
    size = res.get("toServer", 0)
    if lazy and region is not None:
        # One ring message (left ring: ours to write, at PAGE), read by the
        # server; once the test saw it, the blocks of our region the server
        # touched so far (a lazy receiver: none).
        msg = b"lazy"
        ring[PAGE:PAGE + len(msg)] = msg
        struct.pack_into("<I", ring, 4, len(msg))  # left prod
        kick()
        out({"ringSent": len(msg)})
        sys.stdin.readline()
        res["regionBlocks"] = os.fstat(rfd).st_blocks
        ring[CLI_POOL] = POOL_ANNOUNCES | POOL_OPENED  # before the first descriptor
        base = len(msg)  # the descriptors' stream positions count those ring bytes
    else:
        base = 0
    if scenario == "honest":
        # A positive control: a valid payload, the bytes the test expects.
        n = opts["length"]
        region[PAGE:PAGE + n] = bytes((i * 7 + 3) % 251 for i in range(n))
        push_descriptor(region, base, 0, n)
    elif scenario == "out-of-range":
        push_descriptor(region, base, size, PAGE)
    elif scenario == "wraps":
        push_descriptor(region, base, size - PAGE, 0xFFFFF000)
    elif scenario == "overlap":
        push_descriptor(region, base, 0, 2 * PAGE)
        push_descriptor(region, base, PAGE, PAGE)
    elif scenario == "backwards":
        push_descriptor(region, base + 100, 0, PAGE)
        push_descriptor(region, base + 50, PAGE, PAGE)
    elif scenario == "rewound-index":
        struct.pack_into("<I", region, DESC_PROD, 0x80000000)
    elif scenario == "forged-completion":
        push_completion(theirs, 0, PAGE)
    elif scenario == "views-forged-completion":
        # Say we take views (the reader flags word after the queues), so the
        # server gathers runs for us, and never read the ring, so it fills.
        # Once told (a line on stdin: the test has filled the ring), return
        # an extent that was never sent, without a wake-up: the server's next
        # send is the first to look.
        struct.pack_into("<I", theirs, READER_FLAGS, 1)
        res["scenario"] = scenario
        out(res)
        sys.stdin.readline()
        push_completion(theirs, 0, PAGE)
        out({"forged": True})
    elif scenario == "double-release":
        # Take the server's first payload, then return it twice.
        if not wait_for(lambda: u32(theirs, DESC_PROD) >= 1):
            out({"error": "the server sent nothing by reference"})
            return
        _, _, off, length = struct.unpack_from("<IIII", theirs, DESC_ENTRIES)
        struct.pack_into("<I", theirs, DESC_CONS, 1)
        push_completion(theirs, off, length)
        push_completion(theirs, off, length)
    kick()
    res["scenario"] = scenario
    report_and_hold(res)


def connect_pool(path, pool):
    """One handshake with a pool both ways: (socket, ring, kick, the server's region, its inode, the ring's inode, ring bytes each way)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    _, wake_end = os.pipe2(os.O_NONBLOCK)
    rfd = sealed_region(pool)
    socket.send_fds(s, [struct.pack("<IIIII", HELLO_MAGIC, 3, 0, os.getpid(), pool)], [wake_end, rfd])
    s.settimeout(5)
    data, rfds = socket.recv_fds(s, 4096, 16)[:2]
    order = struct.unpack_from("<I", data, 8)[0]
    to_client = struct.unpack_from("<I", data, 20)[0]
    ring = mmap.mmap(rfds[0], PAGE + 2 * (1 << order), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    theirs = mmap.mmap(rfds[2], PAGE + to_client, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    ino = os.fstat(rfds[2]).st_ino
    ring_ino = os.fstat(rfds[0]).st_ino

    def kick():
        try:
            os.write(rfds[1], b"k")
        except (BlockingIOError, BrokenPipeError):
            pass  # full, or the server failed this connection (EPROTO): we scribble on

    ring[CLI_LIVE] = 1
    kick()
    return s, ring, kick, theirs, ino, ring_ino, 1 << order


# Control page fields a peer can scribble: the four indices, the orders, the
# live and notify bytes, and the xenring extension (magic, fin and pool bytes).
RING_FIELDS = [0, 4, 8, 12, 16, 20, 3072, 3076]


def scribble_ring(ring, ring_bytes):
    """One random store into a ring's control page fields and one into its data."""
    at = random.choice(RING_FIELDS)
    struct.pack_into("<I", ring, at, random.choice([0, 1, 2, 0x01010101, 0x7FFFFFFF, 0xFFFFFFFF, random.getrandbits(32)]))
    at = PAGE + random.randrange(0, 2 * ring_bytes - 8)
    ring[at:at + 8] = os.urandom(8)


def recycle(opts):
    """Takes the server's first payload and returns it (all returned, as
    an honest peer), closes its socket but keeps the server's region and the
    ring mapped, connects again while a thread scribbles on the old ring (the
    server may hand the same ring and region back: they are ours already,
    and the control page is re-initialised while we write to it), then, told
    by a line on stdin, scribbles on all four mappings: ring indices, live,
    notify and extension bytes, ring data, random queue indices, forged
    completions and payload bytes, for opts["ms"] milliseconds. Reports the
    inodes and the first payload. With opts["fakeClose"] the first socket is
    not closed: an empty record is sent on it instead."""
    pool = opts["poolSize"]
    s1, ring1, kick1, old, ino1, ring_ino1, ring_bytes = connect_pool(opts["path"], pool)
    if not wait_for(lambda: u32(old, DESC_PROD) >= 1):
        out({"error": "the server sent nothing by reference"})
        return
    _, _, off, length = struct.unpack_from("<IIII", old, DESC_ENTRIES)
    payload = bytes(old[PAGE + off:PAGE + off + length])
    struct.pack_into("<I", old, DESC_CONS, 1)
    push_completion(old, off, length)
    # Close in order, as a xenring client: our fin, then live gone, a kick.
    ring1[CLI_FIN] = 1
    ring1[CLI_LIVE] = 0
    kick1()
    if not wait_for(lambda: ring1[SRV_LIVE] == 0):  # the server closed in order too
        out({"error": "the server did not close"})
        return
    if opts.get("fakeClose"):
        s1.send(b"")  # an empty record reads as EOF does, but the socket stays open
    else:
        s1.close()
    time.sleep(0.05)
    stop = threading.Event()
    early = [0]

    def scribble_old():
        while not stop.is_set():
            scribble_ring(ring1, ring_bytes)
            early[0] += 1

    t = threading.Thread(target=scribble_old)
    t.start()
    try:
        s2, ring2, kick2, new, ino2, ring_ino2, _ = connect_pool(opts["path"], pool)
    finally:
        time.sleep(0.02)
        stop.set()
        t.join()
    ok = all(payload[i] == (i % 251) for i in range(len(payload)))
    out({"ino1": ino1, "ino2": ino2, "ringIno1": ring_ino1, "ringIno2": ring_ino2, "early": early[0], "length": length, "payloadOk": ok})
    sys.stdin.readline()
    end = time.time() + opts["ms"] / 1000.0
    n = 0
    while time.time() < end:
        for mem in (old, new):
            at = random.randrange(0, PAGE - 4) // 4 * 4
            struct.pack_into("<I", mem, at, random.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, random.getrandbits(32)]))
            push_completion(mem, random.randrange(0, pool // PAGE) * PAGE, random.choice([PAGE, length, 0xFFFFF000]))
            at = PAGE + random.randrange(0, pool - 8)
            mem[at:at + 8] = os.urandom(8)
            n += 1
        for ring in (ring1, ring2):
            scribble_ring(ring, ring_bytes)
        kick2()
    out({"scribbled": n})
    try:
        sys.stdin.read()
    except Exception:
        pass


if len(sys.argv) > 2 and sys.argv[1] == "recycle":
    recycle(json.loads(sys.argv[2]))
    sys.exit(0)

if len(sys.argv) > 2 and sys.argv[1] == "client":
    client(json.loads(sys.argv[2]))
    sys.exit(0)

size = int(sys.argv[1])
mem = mmap.mmap(3, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "w32":
        struct.pack_into("<I", mem, int(cmd[1]), int(cmd[2]) & 0xFFFFFFFF)
    elif cmd[0] == "fill":
        off, n = int(cmd[1]), int(cmd[2])
        mem[off:off + n] = bytes([int(cmd[3])]) * n
    elif cmd[0] == "rand":
        off, n = int(cmd[1]), int(cmd[2])
        for _ in range(int(cmd[3])):
            at = off + random.randrange(0, n - 3) // 4 * 4
            struct.pack_into("<I", mem, at, random.choice([0, 1, 0xFFFFFFFF, random.getrandbits(32), random.getrandbits(8)]))
    elif cmd[0] == "sync":
        sys.stdout.write("ok\n")
        sys.stdout.flush()
