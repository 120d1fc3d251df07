"""A hostile pool peer in its own process: maps the pool region it is given
as fd 3 and writes whatever the test tells it, as a corrupt or malicious
xenring peer could. Commands on stdin, one per line:
  w32 <offset> <value>        store a little-endian u32
  fill <offset> <len> <byte>  fill bytes
  rand <offset> <len> <n>     n random u32 stores in [offset, offset+len)
  sync                        answer "ok" once everything above is stored
"""
import mmap
import random
import struct
import sys

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
