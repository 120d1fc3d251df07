'use strict';
// The receiving process of recycle_review.test.js. A xenring server (pool on
// with views, or opts.pool false: ring reads into recycled slabs) takes one
// stream of bulk_stream's position pattern and, while the first opts.keepBytes
// arrive, keeps a random subset of the Buffers through every way user code
// can keep one reachable (below), forcing minor and full GCs as it goes. The
// rest of the stream (opts.total) recycles slabs and pool extents under
// whatever it kept. At 'end' it closes the socket and the server, collects
// again and checks every kept byte, then exits on its own with the views and
// slabs still held (their finalizers run at environment teardown). opts.worker: the socket lives in a worker thread
// that posts copies (and transfer attempts) of Buffers here and is terminated
// with live slabs and views in the middle of the stream.
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { matches } = require('./bulk_stream');

/** A Uint8Array that crossed a structured clone, as a Buffer over the same memory. */
const asBuffer = (u) => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

const PATHS = ['buffer', 'arraybuffer-only', 'buffer-from', 'subarray', 'uint8array', 'closure', 'weakref', 'clone', 'transfer-clone', 'post-copy', 'post-transfer'];

/** A small deterministic generator (the subset differs per seed, not per run). */
function random(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/**
 * Keeps Buffers of a stream through the paths above; check() verifies every
 * kept byte (stream position known per entry). post(buf, transfer) sends a
 * Buffer to another thread (structured copy, or a transfer attempt).
 */
class Keeper {
  constructor(seed, post) {
    this.rnd = random(seed);
    this.post = post;
    this.kept = [];
    this.byPath = Object.fromEntries(PATHS.map((p) => [p, 0]));
    this.weakAlive = 0;
    this.problems = [];
  }

  keep(d, pos) {
    const path = PATHS[Math.floor(this.rnd() * PATHS.length)];
    this.byPath[path]++;
    const k = this.kept;
    switch (path) {
      case 'buffer':
        k.push({ path, pos, get: () => d });
        break;
      case 'arraybuffer-only': {
        // Only the ArrayBuffer and the coordinates: the Buffer itself is dropped.
        const ab = d.buffer;
        const off = d.byteOffset;
        const len = d.length;
        k.push({ path, pos, get: () => Buffer.from(ab, off, len) });
        break;
      }
      case 'buffer-from': {
        const b = Buffer.from(d.buffer, d.byteOffset, d.length);
        k.push({ path, pos, get: () => b });
        break;
      }
      case 'subarray': {
        const s = d.subarray(d.length >> 1);
        k.push({ path, pos: pos + (d.length >> 1), get: () => s });
        break;
      }
      case 'uint8array': {
        const u = new Uint8Array(d.buffer, d.byteOffset, d.length);
        k.push({ path, pos, get: () => Buffer.from(u.buffer, u.byteOffset, u.length) });
        break;
      }
      case 'closure': {
        const f = ((x) => () => x)(d);
        k.push({ path, pos, get: f });
        break;
      }
      case 'weakref': {
        // Only what is still alive is checked: a collected one is fine.
        const w = new WeakRef(d);
        k.push({ path, pos, get: () => w.deref() ?? null });
        break;
      }
      case 'clone': {
        const c = asBuffer(structuredClone(d));
        k.push({ path, pos, get: () => c });
        k.push({ path: 'clone-source', pos, get: () => d });
        break;
      }
      case 'transfer-clone': {
        // Node marks external ArrayBuffers untransferable: the "transfer"
        // must be a copy and leave ours attached and intact.
        const len = d.length;
        let c;
        try {
          c = structuredClone(d.buffer, { transfer: [d.buffer] });
        } catch (err) {
          // Refusing is fine too (a later Node), as long as ours is intact.
          c = null;
        }
        if (d.length !== len) this.problems.push(`transfer-clone detached a received Buffer at ${pos}`);
        const off = d.byteOffset;
        if (c !== null) k.push({ path, pos, get: () => Buffer.from(c, off, len) });
        k.push({ path: 'transfer-source', pos, get: () => d });
        break;
      }
      case 'post-copy':
        this.post(d, pos, false);
        k.push({ path: 'post-source', pos, get: () => d });
        break;
      case 'post-transfer': {
        const len = d.length;
        this.post(d, pos, true);
        if (d.length !== len) this.problems.push(`postMessage transfer detached a received Buffer at ${pos}`);
        k.push({ path: 'post-transfer-source', pos, get: () => d });
        break;
      }
    }
  }

  /** Stream position of the first kept byte that changed, or -1. */
  check() {
    let bad = -1;
    for (const e of this.kept) {
      const b = e.get();
      if (b === null) continue;
      if (!Buffer.isBuffer(b)) throw new TypeError(`${e.path}: not a Buffer`);
      if (e.path === 'weakref') this.weakAlive++;
      if (!matches(b, e.pos)) {
        this.problems.push(`${e.path}: kept bytes at stream offset ${e.pos} changed`);
        if (bad < 0 || e.pos < bad) bad = e.pos;
      }
    }
    return bad;
  }
}

/** Receives the stream on `socket`; resolves at 'end' with { bytes, badAtArrival, keeper }. */
function receive(socket, opts, keeper, onBytes) {
  const rnd = random(opts.seed ^ 0x9e3779b9);
  let pos = 0;
  let badAtArrival = -1;
  let nextGc = 4 << 20;
  let minor = 0;
  socket.on('data', (d) => {
    if (badAtArrival < 0 && !matches(d, pos)) badAtArrival = pos;
    if (pos < opts.keepBytes && rnd() < opts.keepShare) keeper.keep(d, pos);
    pos += d.length;
    if (pos >= nextGc) {
      nextGc += 4 << 20;
      // Mostly minor GCs (the ones that return slabs and views), a full one now and then.
      if (++minor % 8 === 0) global.gc();
      else global.gc({ type: 'minor' });
    }
    onBytes?.(pos);
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('end', () => resolve({ bytes: pos, badAtArrival }));
  });
}

const { collectAll: collectHard } = require('../helpers/collect');

const xenringOptions = (opts) => (opts.pool ? {} : { pool: false });

// ---------------------------------------------------------------- worker thread

if (!isMainThread) {
  // The receiving end in a worker: connects to the sender's port, posts
  // Buffers to the main thread, and is terminated by it mid-stream.
  const xenring = require('../..');
  const opts = workerData;
  const keeper = new Keeper(opts.seed, (buf, pos, transfer) => parentPort.postMessage({ buf, pos }, transfer ? [buf.buffer] : []));
  const s = xenring.connect({ port: opts.port, ...xenringOptions(opts) });
  s.on('error', () => {});
  let told = false;
  receive(s, opts, keeper, (pos) => {
    if (pos >= opts.terminateAt && !told) {
      told = true;
      parentPort.postMessage({ terminateMe: true, pos, problems: keeper.problems, bad: keeper.check() });
    }
  }).catch(() => {});
  return;
}

// ---------------------------------------------------------------- main thread

const xenring = require('../..');
const opts = JSON.parse(process.argv[2]);
const send = (m) => process.send(m);

/** Buffers another thread posted here: checked at the end like our own. */
const posted = [];

async function asServer() {
  const helper = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const { matches } = require(${JSON.stringify(require.resolve('./bulk_stream'))});
     const got = [];
     parentPort.on('message', (m) => {
       if (m === 'check') parentPort.postMessage(got.filter(([b, pos]) => !matches(b, pos)).map(([, pos]) => pos));
       else got.push([Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength), m.pos]);
     });`,
    { eval: true },
  );
  const keeper = new Keeper(opts.seed, (buf, pos, transfer) => helper.postMessage({ buf, pos }, transfer ? [buf.buffer] : []));
  const server = xenring.createServer(xenringOptions(opts));
  const done = new Promise((resolve, reject) => {
    server.once('connection', (s) => {
      receive(s, opts, keeper).then(async (r) => {
        const stats = s.poolStats?.() ?? null;
        s.end();
        await new Promise((res) => s.once('close', res));
        await new Promise((res) => server.close(res));
        // Finalizers of every dropped slab and view run after the socket
        // and the server are gone; what is kept must not change.
        await collectHard();
        for (let k = 0; k < 48; k++) Buffer.allocUnsafeSlow(1 << 20).fill(k);
        await collectHard();
        const badAtEnd = keeper.check();
        helper.postMessage('check');
        const [badInHelper] = await new Promise((res) => helper.once('message', (m) => res([m])));
        await helper.terminate();
        resolve({ ...r, badAtEnd, badInHelper, byPath: keeper.byPath, weakAlive: keeper.weakAlive, problems: keeper.problems, stats });
      }, reject);
    });
  });
  await new Promise((r) => server.listen({ port: 0 }, r));
  send({ event: 'ready', port: server.address().port });
  const report = await done;
  send({ event: 'done', ...report });
  // Exit on its own (the environment is torn down: cleanup hooks run every
  // live view's and slab's finalizer) with the kept ones still reachable.
  globalThis.keepUntilExit = keeper;
  process.disconnect();
}

async function withWorker() {
  // The sender listens (opts.port); a worker receives and is terminated
  // with live slabs and views after opts.terminateAt bytes.
  const w = new Worker(__filename, { workerData: opts });
  const verdict = await new Promise((resolve, reject) => {
    w.on('message', (m) => {
      if (m.terminateMe) resolve(m);
      else posted.push([asBuffer(m.buf), m.pos]);
    });
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
  w.removeAllListeners('exit');
  await w.terminate();
  // The worker's environment is gone (its slabs, views, mapping and
  // recycler with it); what it posted here must be whole and unchanged.
  await collectHard();
  for (let k = 0; k < 48; k++) Buffer.allocUnsafeSlow(1 << 20).fill(k);
  await collectHard();
  const badPosted = posted.filter(([b, pos]) => !matches(b, pos)).map(([, pos]) => pos);
  send({ event: 'done', posted: posted.length, badPosted, workerBad: verdict.bad, workerProblems: verdict.problems, workerPos: verdict.pos });
  setTimeout(() => process.exit(0), 10);
}

(opts.worker ? withWorker() : asServer()).catch((err) => {
  send({ event: 'error', message: String(err?.stack ?? err) });
  process.exit(1);
});
