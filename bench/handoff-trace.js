#!/usr/bin/env node
'use strict';
/*
 * Where the time of one pool hand-off goes: a client sends allocBuffer()
 * messages to a server in a child process, which answers 1 byte per message
 * (as `bench/run.js --cases pool` does); both sides stamp each step with
 * process.hrtime (CLOCK_MONOTONIC: comparable across processes), and the
 * medians of each step are printed:
 *
 *   node bench/handoff-trace.js [--size 16m] [--count 600] [--read] [--ring] [--dist DIR] [--pin]
 *
 * --pin: this process on CPU 0, the server on CPU 1 (as bench/run.js --pin 0,1).
 *
 * --ring: ordinary Buffers through the ring instead (--size 1 --ring is the
 * 1-byte round trip the hand-off is compared with).
 *
 *   alloc    sock.allocBuffer(size)
 *   write    sock.write(buf) returns (includes the kick if the reader sleeps)
 *   arrive   from write() returning to the server's 'data' (negative: the
 *            server ran before our write() returned, e.g. on our vCPU)
 *   read     the server reads a byte per 4 KiB page (--read only)
 *   answer   release() and the 1-byte answer's write()
 *   back     from the answer's write() to the client's 'data'
 *   resume   from the client's 'data' to its next allocBuffer (a promise)
 *   total    allocBuffer to the next one
 *
 * Also the native calls each side made per message (RingEndpoint and
 * PoolQueue methods). The host is shared: compare medians of runs made in
 * the same minutes, never absolute times.
 */
const path = require('node:path');
const { parseSize, connectForkedSelf, optionValue } = require('./common');
const { countedClass } = require('./counted_class');

const args = process.argv.slice(2);
const opt = (name, def) => optionValue(args, name, def);
const dist = path.resolve(opt('dist', path.join(__dirname, '..', 'dist')));
const size = parseSize(opt('size', '16m'));
const count = Number(opt('count', 600));
const read = args.includes('--read');
const ring = args.includes('--ring');
const isChild = args.includes('--child');
const now = () => Number(process.hrtime.bigint());

// Count native calls per method (bench/counted_class.js, as bench/crossings.js does).
const { native } = require(path.join(dist, 'native'));
const calls = {};
const counted = (Class, prefix) =>
  countedClass(Class, (k, call) => {
    calls[prefix + k] = (calls[prefix + k] || 0) + 1;
    return call();
  });
native.RingEndpoint = counted(native.RingEndpoint, '');
native.PoolQueue = counted(native.PoolQueue, 'PoolQueue.');
const xenring = require(dist);
const perMessage = () => Object.entries(calls).map(([k, v]) => `${k} ${(v / count).toFixed(2)}`).join(', ');

if (isChild) {
  const stamps = [];
  const server = xenring.createServer({}, (sock) => {
    server.close();
    const ack = Buffer.from([0x61]);
    let got = 0;
    let sum = 0;
    sock.on('data', (d) => {
      const a = now();
      if (read) for (let i = 0; i < d.length; i += 4096) sum += d[i];
      const b = now();
      got += d.length;
      if (!ring) sock.release(d);
      for (; got >= size; got -= size) sock.write(ack);
      stamps.push([a, b, now()]);
    });
    sock.on('end', () => {
      sock.end();
      process.send({ stamps, calls: perMessage(), sum });
    });
  });
  server.listen({ port: 0, transport: 'local' }, () => process.send({ port: server.address().port }));
} else {
  connectForkedSelf(xenring, __filename, args).then(async ({ child, sock }) => {
    let acks = 0;
    let tAck = 0;
    let wake = null;
    sock.on('data', (d) => {
      tAck = now();
      acks += d.length;
      if (wake) wake();
    });
    const answered = (n) => new Promise((resolve) => (acks >= n ? resolve() : (wake = resolve)));
    const mine = [];
    for (const k of Object.keys(calls)) delete calls[k];
    for (let i = 0; i < count; i++) {
      const t0 = now();
      const buf = ring ? Buffer.alloc(size, 7) : sock.allocBuffer(size);
      const t1 = now();
      sock.write(buf);
      const t2 = now();
      await answered(i + 1);
      mine.push([t0, t1, t2, tAck, now()]);
    }
    const clientCalls = perMessage();
    const [{ stamps, calls: serverCalls }] = await Promise.all([new Promise((r) => child.once('message', r)), sock.end()]);
    const steps = mine.map(([t0, t1, t2, t3, t4], i) => {
      const [a, b, c] = stamps[i];
      return { alloc: t1 - t0, write: t2 - t1, arrive: a - t2, read: b - a, answer: c - b, back: t3 - c, resume: t4 - t3, total: t4 - t0 };
    }).slice(Math.min(20, count >> 2)); // warm-up
    const median = (k) => {
      const v = steps.map((s) => s[k]).sort((x, y) => x - y);
      return (v[v.length >> 1] / 1000).toFixed(1);
    };
    console.log(`hand-off trace, ${size} B x ${count}${ring ? ' through the ring' : ''}${read ? ', the server reads a byte per page' : ''}, medians in µs (load ${require('node:os').loadavg()[0].toFixed(1)}):`);
    console.log('  ' + Object.keys(steps[0]).map((k) => `${k} ${median(k)}`).join(' | '));
    // The medians hide the GC pauses; the mean and p90 of the whole hand-off show them.
    const totals = steps.map((s) => s.total).sort((x, y) => x - y);
    const mean = totals.reduce((x, y) => x + y, 0) / totals.length;
    console.log(`  total: mean ${(mean / 1000).toFixed(1)}, p90 ${(totals[Math.floor(totals.length * 0.9)] / 1000).toFixed(1)}, p99 ${(totals[Math.floor(totals.length * 0.99)] / 1000).toFixed(1)}`);
    console.log(`  native calls per message: client ${clientCalls}; server ${serverCalls}`);
    if (!ring && sock.poolStats().sentByRef !== count) throw new Error(`only ${sock.poolStats().sentByRef} of ${count} went by reference`);
  });
}
