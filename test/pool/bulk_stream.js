'use strict';
// The bulk streams of keep_drop.test.js, written and checked the same way in
// both processes. Byte i of a stream is ((i % 251) + 7 * (i >> 16)) & 255:
// unlike the plain i % 251 pattern it does not repeat within 400 MiB, so
// memory reused under a Buffer still held (a recycled receive slab, a pool
// extent the sender wrote again) cannot read back as the right bytes.
const BLOCK = 1 << 16;
const PERIOD = 251;
const base = Buffer.alloc(BLOCK + PERIOD);
for (let i = 0; i < base.length; i++) base[i] = i % PERIOD;

/** Writes the bytes of stream positions [pos, pos + target.length) into target. */
function fill(target, pos) {
  let off = 0;
  while (off < target.length) {
    const p = pos + off;
    const n = Math.min(target.length - off, BLOCK - (p % BLOCK));
    const add = (7 * Math.floor(p / BLOCK)) & 255;
    const src = base.subarray(p % PERIOD, (p % PERIOD) + n);
    if (add === 0) src.copy(target, off);
    else for (let i = 0; i < n; i++) target[off + i] = (src[i] + add) & 255;
    off += n;
  }
  return target;
}

/** Whether `chunk` holds the bytes of stream positions [pos, pos + chunk.length). */
function matches(chunk, pos) {
  const want = Buffer.allocUnsafe(Math.min(chunk.length, 4 << 20));
  for (let off = 0; off < chunk.length; off += want.length) {
    const n = Math.min(want.length, chunk.length - off);
    if (!chunk.subarray(off, off + n).equals(fill(want.subarray(0, n), pos + off))) return false;
  }
  return true;
}

/**
 * The writes of one stream: 64 KiB and 1 MiB (the bulk sizes), 300 KiB and
 * 5 MiB (around the copy-in band), and small ones between, `rounds` times.
 */
function bulkPlan(rounds) {
  const plan = [];
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < 12; k++) plan.push(65536);
    plan.push(1 + (r % 97), 1 << 20, 300 * 1024 + r, 65536 + 3, 1 << 20);
    if (r % 16 === 0) plan.push((5 << 20) + 1);
  }
  return plan;
}

/** Writes `plan` on `socket` (ordinary Buffers, each filled fresh); resolves with the bytes written. */
function writeBulk(socket, plan) {
  let i = 0;
  let pos = 0;
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    const go = () => {
      while (i < plan.length) {
        const buf = fill(Buffer.allocUnsafe(plan[i++]), pos);
        pos += buf.length;
        if (!socket.write(buf)) {
          socket.once('drain', go);
          return;
        }
      }
      socket.off('error', reject);
      resolve(pos);
    };
    go();
  });
}

/**
 * Receives a stream with a plain 'data' listener, checking each Buffer as it
 * arrives. mode 'keep': every Buffer is kept and checked again at 'end',
 * after the collector has run (reused memory under one shows then).
 * mode 'drop': nothing is kept. Resolves with a report at 'end'.
 */
function receiveBulk(socket, mode) {
  const kept = [];
  let pos = 0;
  let badAtArrival = -1;
  socket.on('data', (d) => {
    if (badAtArrival < 0 && !matches(d, pos)) badAtArrival = pos;
    if (mode === 'keep') kept.push([d, pos]);
    pos += d.length;
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('end', async () => {
      let badAtEnd = -1;
      if (mode === 'keep') {
        // Garbage in small and large buffers: minor GCs (and with them every
        // recycling path) run before the second look.
        for (let k = 0; k < 64; k++) Buffer.allocUnsafeSlow(1 << 20).fill(k);
        if (global.gc) global.gc();
        await new Promise((r) => setImmediate(r));
        for (const [d, at] of kept) {
          if (!matches(d, at)) {
            badAtEnd = at;
            break;
          }
        }
      }
      resolve({ bytes: pos, chunks: mode === 'keep' ? kept.length : undefined, badAtArrival, badAtEnd, stats: socket.poolStats() });
    });
  });
}

module.exports = { fill, matches, bulkPlan, writeBulk, receiveBulk };
