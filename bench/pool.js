'use strict';
// Micro-benchmark of the page-reference path (issue 13), outside npm test:
//   node bench/pool.js [--iterations N] [--size 16m]
// Two processes share a vchan ring pair (1 MiB per ring) and a 64 MiB pool.
// Rows, run in one process pair so their ratios are same-run:
//   ping  1-byte message, 1-byte reply (the floor of any round trip)
//   ring  one <size> message copied through the ring into a preallocated
//         buffer, then a 1-byte reply (the copy path at its best: no faults)
//   pool  one <size> allocBuffer payload sent by reference, then a 1-byte reply
//   copy  one ordinary <size> Buffer copied into the pool and sent by
//         reference (the path for ordinary writes above a threshold)
//   ring-stream, pool-stream  --stream (8) messages back to back, the replies
//         read at the end: throughput rather than hand-off latency
// The receiver touches one byte per page of every message (a reader that
// looks at its data). Both sides poll (spin, then 20 µs futex naps so that on
// a shared host the process waited for gets the CPU; no wake-ups), so this
// measures the data path, not the notifier. The host is shared: read the
// same-run ratios and the ranges, not the absolute times.
const { fork } = require('node:child_process');
const fs = require('node:fs');
const { MiB, parseSize, sizeName, summary } = require('./common');
const { createShared, attachRing, attachPool, MixedReader } = require('../test/pool/pair');

const SPIN_LIMIT_MS = 10000;

const napCell = new Int32Array(new SharedArrayBuffer(4));

// Spins on `cond`; after a short spin it naps 20 µs between checks (a futex
// wait), so that on a shared host the process we wait for gets the CPU.
function spinUntil(cond, what) {
  const deadline = Date.now() + SPIN_LIMIT_MS;
  for (let i = 0; !cond(); i++) {
    if (i > 200) Atomics.wait(napCell, 0, 0, 0.02);
    if ((i & 255) === 255 && Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
  }
}

function child(opts) {
  const { ep } = attachRing(4, opts, 'client');
  const receiver = attachPool(5, opts, 'receiver');
  const reply = Buffer.from([1]);
  const sink = Buffer.alloc(opts.size); // the ring row's destination, faulted in once
  sink.fill(0);
  let got = 0;
  let sum = 0;
  const reader = new MixedReader(ep, receiver, (chunk, byRef) => {
    if (byRef) {
      for (let i = 0; i < chunk.length; i += 4096) sum += chunk[i];
      receiver.release(chunk);
    } else {
      // Ring bytes land in the message's place in `sink` (a stream may cross messages).
      for (let off = 0; off < chunk.length; ) {
        const at = (got + off) % opts.size;
        const n = Math.min(chunk.length - off, opts.size - at);
        chunk.copy(sink, at, off, off + n);
        for (let i = at; i < at + n; i += 4096) sum += sink[i];
        off += n;
      }
    }
    got += chunk.length;
  });
  process.on('message', (m) => {
    if (m.exit) {
      process.send({ sum });
      process.disconnect();
      return;
    }
    got = 0;
    let replied = 0;
    const total = m.size * m.count;
    while (replied < m.count) {
      spinUntil(() => (reader.step(), got > replied * m.size), 'a message');
      if (got > total) throw new Error(`bench: ${got} bytes for ${m.count} messages of ${m.size}`);
      // One reply per whole message received.
      for (; replied < Math.floor(got / m.size); replied++) spinUntil(() => ep.write(reply) === 1, 'ring space for the reply');
    }
    process.send({ done: m.row });
  });
  process.send({ ready: true });
}

async function main() {
  const args = process.argv.slice(2);
  const arg = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const iterations = Number(arg('--iterations', 15));
  const size = parseSize(arg('--size', '16m'));
  const shared = createShared({ order: 20, poolBytes: 64 * MiB });
  const { ep } = attachRing(shared.ringFd, shared, 'server');
  const sender = attachPool(shared.poolFd, shared, 'sender', { copyThreshold: 1 });
  const kid = fork(__filename, ['--child', JSON.stringify({ ...shared, size })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', shared.ringFd, shared.poolFd],
  });
  const inbox = [];
  let wake = null;
  kid.on('message', (m) => {
    inbox.push(m);
    if (wake) wake();
  });
  const next = async () => {
    while (inbox.length === 0) await new Promise((r) => (wake = r));
    return inbox.shift();
  };
  await next(); // ready

  const payload = Buffer.alloc(size, 7);
  const loan = sender.allocBuffer(size);
  if (loan === null) throw new Error('bench: the pool cannot hold one payload');
  loan.fill(7);
  let ringPos = 0;
  const replyBuf = Buffer.alloc(1);
  const awaitReply = () => spinUntil(() => ep.read(replyBuf, 0, 1) === 1, 'the reply');
  const sends = {
    ping: () => {
      spinUntil(() => ep.write(replyBuf) === 1, 'ring space');
      ringPos += 1;
    },
    ring: () => {
      let off = 0;
      spinUntil(() => {
        const n = ep.write(payload, off);
        off += n;
        ringPos += n;
        return off === size;
      }, 'ring space');
    },
    pool: () => {
      // The reader returns each loan once it has read it; wait for room and lend again.
      let buf = null;
      spinUntil(() => (buf = sender.allocBuffer(size)) !== null, 'a pool extent to come back');
      if (!sender.send(buf, ringPos)) throw new Error('bench: the pool refused a send');
    },
    copy: () => {
      spinUntil(() => (sender.reclaim(), sender.send(payload, ringPos)), 'pool room for a copy');
    },
  };
  sender.recycle(loan);

  const stream = Number(arg('--stream', 8));
  const plan = [
    ['ping', 'ping', 1, 1],
    ['ring', 'ring', size, 1],
    ['pool', 'pool', size, 1],
    ['copy', 'copy', size, 1],
    ['ring-stream', 'ring', size, stream],
    ['pool-stream', 'pool', size, stream],
  ];
  const rows = [];
  for (const [row, how, bytes, count] of plan) {
    const times = [];
    for (let k = 0; k < iterations + 2; k++) {
      kid.send({ row, size: bytes, count });
      // The child spins on the ring once it has the message; give it a moment to get there.
      await new Promise((r) => setTimeout(r, 2));
      const t0 = process.hrtime.bigint();
      for (let m = 0; m < count; m++) sends[how]();
      for (let m = 0; m < count; m++) awaitReply();
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      await next(); // done
      if (k >= 2) times.push(us); // two warm-up rounds: first-touch faults are not the path's cost
    }
    rows.push({ row, bytes: bytes * count, ...summary(times) });
  }
  kid.send({ exit: true });
  await next();
  const ping = rows[0].median;
  console.log(`pool micro-benchmark, ${new Date().toISOString()}, ${iterations} iterations per row (median, range), shared host: ratios only`);
  console.log('row          bytes      median µs   range µs               x ping   GB/s');
  for (const r of rows) {
    const gbps = r.bytes > 1 ? ((r.bytes / r.median) * 1e6) / 1e9 : 0;
    console.log(
      `${r.row.padEnd(12)} ${sizeName(r.bytes).padEnd(10)} ${r.median.toFixed(1).padStart(9)}   ${`${r.min.toFixed(1)}-${r.max.toFixed(1)}`.padEnd(22)} ${(r.median / ping).toFixed(2).padStart(6)}   ${gbps ? gbps.toFixed(2) : '-'}`,
    );
  }
  const by = Object.fromEntries(rows.map((r) => [r.row, r.median]));
  console.log(
    `hand-off: pool ${(by.ring / by.pool).toFixed(1)}x faster than ring, ${(by.pool / by.ping).toFixed(2)}x a 1-byte round trip; ` +
      `copy into the pool ${(by.ring / by.copy).toFixed(1)}x faster than ring; ` +
      `streaming: pool ${(by['ring-stream'] / by['pool-stream']).toFixed(1)}x the ring's throughput`,
  );
  console.log(JSON.stringify({ bench: 'pool', iterations, size, rows }));
  sender.close();
  ep.close();
  fs.closeSync(shared.ringFd);
  fs.closeSync(shared.poolFd);
}

if (process.argv[2] === '--child') child(JSON.parse(process.argv[3]));
else main().catch((err) => {
  console.error(err);
  process.exit(1);
});
