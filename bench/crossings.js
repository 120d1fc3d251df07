#!/usr/bin/env node
'use strict';
/*
 * Counts the native calls (N-API crossings) on RingEndpoint per side of a
 * 1-byte round trip: a client and an echoing server in this process, each
 * endpoint's methods counted. Deterministic, so unlike timings it does not
 * depend on the machine's load.
 *
 *   node bench/crossings.js [--spin-micros N] [--round-trips N] [--dist DIR] [--fork]
 *
 * --fork: the echoing server runs in a child process instead, so a spinning
 * side really finds its answer while it spins, as in `npm run bench`. Each
 * side then also reports its busy time per message: the median of the time
 * from the call that found a message (waitData or service) to the next
 * waitData(), when it starts waiting for the answer: reading, 'data', the
 * echo or next ping, the flush and whatever runs before the wait (a loop
 * turn). That is one side's software path, which a loaded machine inflates
 * far less than the wall-clock round trip (time sliced away still counts,
 * so compare medians of several runs). Includes ~0.1 µs of timing.
 * With --spin-micros 0 each side also reports its wake-to-reply time: the
 * median from the call that consumed a wake-up (service(), or a read() that
 * consumes it itself) to the end of the next write() (the echo or next ping,
 * whose kick wakes the peer): the software on the round trip's critical path
 * after the poll returns.
 * A wake-up whose read the watcher's native callback did (the reader armed it
 * before sleeping: no read() call) is counted apart as "woken reads", not as
 * a native call: the callback into JS happens with or without it. Its
 * wake-to-reply time starts when that callback reaches JS, so it leaves out
 * the native read itself (about 0.1 µs) that a read() call's time includes.
 */
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { countedClass } = require('./counted_class');
const { optionValue } = require('./common');

const args = process.argv.slice(2);
const opt = (name, def) => optionValue(args, name, def);
const dist = path.resolve(opt('dist', path.join(__dirname, '..', 'dist')));
const spinMicros = Number(opt('spin-micros', 50));
const roundTrips = Number(opt('round-trips', 2000));
const forked = args.includes('--fork');
const isChild = args.includes('--child');

const { native } = require(path.join(dist, 'native'));
const counts = {};
const now = () => Number(process.hrtime.bigint());
// Busy time per message received (forked mode): from the call that found it
// (waitData, service, or a woken read) to the next waitData(), which starts waiting again.
const busy = { found: 0, start: 0, samples: [], on: false, woke: 0, replies: [] };
/** read()'s flag: it consumed the wake-ups itself (lib/native.ts ReadFlag.Ack). */
const READ_ACK = 1;
// RingEndpoint's calls are named as they are; another class's (the pool's
// PoolQueue, polled by the reader when a pool is on) get its name as prefix.
function counter(prefix) {
  return (k, call, x) => {
    const name = prefix + k;
    counts[name] = (counts[name] || 0) + 1;
    const t = busy.on ? now() : 0;
    if (busy.on && (k === 'service' || (k === 'read' && x && x[3] & READ_ACK))) busy.woke = t;
    if (k === 'waitData' && busy.start) {
      busy.samples.push(t - busy.start);
      busy.start = 0;
    }
    const r = call();
    if (k === 'write' && busy.woke) {
      busy.replies.push(now() - busy.woke);
      busy.woke = 0;
    }
    if (k === 'waitData' || k === 'service') busy.found = now();
    else if (k === 'read') {
      if (x && x[3] & READ_ACK) busy.found = t; // a woken read: it found the message itself
      if (r > 0 && busy.on && !busy.start) busy.start = busy.found;
    }
    return r;
  };
}
const countRing = counter('');
// The wait fd's watcher: a callback with a read count >= 0 is a wake-up whose read was done natively.
const woken = {};
const FdWatcher = native.FdWatcher;
native.FdWatcher = function CountedWatcher(fd, callback) {
  // Every argument passes through (events, read, error, round): the round bounds a wake-up's callback.
  return new FdWatcher(fd, (...args) => {
    const read = args[1];
    if (read !== undefined && read >= 0) {
      woken.reads = (woken.reads || 0) + 1;
      if (busy.on) {
        const t = now();
        busy.woke = t;
        busy.found = t;
        if (read > 0 && !busy.start) busy.start = t;
      }
    }
    return callback(...args);
  });
};
native.RingEndpoint = countedClass(native.RingEndpoint, countRing);
if (native.PoolQueue) native.PoolQueue = countedClass(native.PoolQueue, counter('PoolQueue.'));
// The library binds the per-message methods to each endpoint (no napi_unwrap
// per call): count those bound functions, so the busy times are the real path's.
const bindRingMethods = native.bindRingMethods;
native.bindRingMethods = (ep) => {
  const hot = ['read', 'write', 'waitData', 'service'];
  for (const k of hot) delete ep[k]; // countedClass's wrappers of the prototype methods
  bindRingMethods(ep);
  for (const k of hot) {
    const f = ep[k];
    Object.defineProperty(ep, k, { value: (...x) => countRing(k, () => f(...x), x), configurable: true });
  }
};
const xenring = require(dist);

function resetCounts() {
  for (const k of Object.keys(counts)) delete counts[k];
  woken.reads = 0;
  Object.assign(busy, { found: 0, start: 0, samples: [], on: true, woke: 0, replies: [] });
}

function medianMicros(samples) {
  const s = samples.sort((a, b) => a - b);
  return s.length ? +(s[s.length >> 1] / 1000).toFixed(2) : NaN;
}
const busyMedianMicros = () => medianMicros(busy.samples);

function echoServer() {
  return xenring.createServer({ spinMicros }, (s) => s.on('data', (d) => s.write(d)));
}

if (isChild) {
  const server = echoServer();
  server.listen(0, () => process.send({ port: server.address().port }));
  process.on('message', (m) => {
    if (m === 'reset') resetCounts();
    if (m === 'report') process.send({ counts, woken: woken.reads, busy: busyMedianMicros(), reply: medianMicros(busy.replies) });
  });
  process.on('disconnect', () => process.exit(0));
} else {
  (async () => {
    let server = null;
    let child = null;
    let port;
    if (forked) {
      child = fork(__filename, [...args, '--child']);
      [{ port }] = await once(child, 'message');
    } else {
      server = echoServer();
      server.listen(0);
      await once(server, 'listening');
      port = server.address().port;
    }
    const c = xenring.connect({ port, spinMicros });
    await once(c, 'connect');
    let seq = 0;
    let left = 0;
    let done = null;
    const msg = Buffer.alloc(1);
    const send = () => {
      msg[0] = seq++ & 0xff;
      c.write(msg);
    };
    // The next ping goes out from the 'data' handler, as a request/response
    // client's does (and as bench/run.js's ping-pong does).
    c.on('data', () => {
      if (--left > 0) send();
      else done();
    });
    const run = (n) =>
      new Promise((resolve) => {
        left = n;
        done = resolve;
        send();
      });
    await run(200); // warm up
    resetCounts();
    if (child) child.send('reset');
    await run(roundTrips);
    const sides = [{ counts: { ...counts }, woken: woken.reads, busy: busyMedianMicros(), reply: medianMicros(busy.replies) }];
    if (child) {
      child.send('report');
      sides.push((await once(child, 'message'))[0]);
    }
    const all = {};
    for (const s of sides) for (const [k, v] of Object.entries(s.counts)) all[k] = (all[k] || 0) + v;
    const perSide = (v) => +(v / roundTrips / 2).toFixed(2);
    const total = Object.values(all).reduce((a, b) => a + b, 0);
    const detail = Object.entries(all).map(([k, v]) => `${k} ${perSide(v)}`).join(', ');
    console.log(`spinMicros ${spinMicros}: ${perSide(total)} native calls per side per round trip (${detail})`);
    const wokenReads = sides.reduce((a, x) => a + (x.woken || 0), 0);
    if (wokenReads > 0) console.log(`woken reads done in the watcher's callback (no call): ${perSide(wokenReads)} per side per round trip`);
    if (child && spinMicros > 0) console.log(`busy µs per message (median): client ${sides[0].busy}, server ${sides[1].busy}`);
    if (child && spinMicros === 0) console.log(`wake-to-reply µs (median): client ${sides[0].reply}, server ${sides[1].reply} (${sides[0].reply + sides[1].reply} per round trip)`);
    c.destroy();
    if (server) server.close();
    if (child) child.disconnect();
  })();
}
