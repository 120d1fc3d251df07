'use strict';
// A hostile server process attacks the client's wake-up read (issue 12): a
// reader that sleeps with spinMicros 0 arms its next read, and the wait fd's
// watcher does it natively before JS runs. The peer (peer.py "ring") shares
// the ring pages and holds the write end of the client's wake-up pipe: it
// kicks in storms and writes producer indices the client cannot accept while
// the read is armed. The client must deliver every honest byte, fail with
// EPROTO on a bad index, keep its event loop turning, and keep no fd.
const assert = require('node:assert/strict');
const path = require('node:path');
const { once } = require('node:events');
const fs = require('node:fs');
const { countFds } = require('../helpers/fixtures');
const { hostilePeer } = require('./helpers');
const { countWokenReads } = require('../helpers/wake_read');
const xenring = require('../..');

let serial = 0;
/** Peers and sockets of the running test: a failed one leaves none to the next. */
const live = new Set();

/** Our mappings of the peer's memfd (peer.py names it "hostile"): the ring pages. */
function ringMappings() {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('memfd:hostile')).length;
}

/** What peer.py's pattern() sends. */
function pattern(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

/** A hostile "ring" peer listening as `attack` says: resolves with { peer, port }. */
async function attacker(attack, opts = {}) {
  const port = `wake-${process.pid}-${serial++}`;
  const peer = hostilePeer('ring', { path: path.join(process.env.XENRING_DIR, `${port}.sock`), reply: 'honest', attack, ...opts });
  live.add(peer);
  assert.equal(await peer.line(), 'ready');
  return { peer, port };
}

/**
 * Connects with spinMicros 0 (every wait is a sleep, so every wake-up reads
 * natively) and collects what arrives, through 'data' or `onread` (a buffer
 * of `onreadSize` bytes). Counts the event loop's timer ticks meanwhile:
 * a peer kicking in a loop must not starve it.
 */
function victim(port, onreadSize = 0) {
  const chunks = [];
  const result = { chunks, ticks: 0, maxChunk: 0 };
  const keep = (b) => {
    chunks.push(Buffer.from(b));
    result.maxChunk = Math.max(result.maxChunk, b.length);
  };
  const options = { port, spinMicros: 0 };
  if (onreadSize > 0) {
    result.onread = Buffer.alloc(onreadSize);
    options.onread = { buffer: result.onread, callback: (n, buf) => keep(buf.subarray(0, n)) };
  }
  const socket = xenring.connect(options);
  if (onreadSize === 0) socket.on('data', keep);
  const timer = setInterval(() => result.ticks++, 10);
  result.socket = socket;
  live.add(socket);
  result.done = new Promise((resolve) => {
    const finish = (how, err) => {
      clearInterval(timer);
      resolve({ how, code: err?.code });
    };
    socket.on('end', () => finish('end'));
    socket.on('error', (err) => finish('error', err));
    socket.on('close', () => finish('close'));
  });
  return result;
}

/** Bounded: a victim that hangs fails here, not by mocha's timeout. */
function within(promise, ms, what) {
  let t;
  return Promise.race([promise, new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

describe('hostile peer: the wake-up read of a sleeping reader', function () {
  this.timeout(60000);

  // Wake-ups whose read the watcher did natively, or that failed there: the path under attack.
  const woken = countWokenReads();

  let fdsBefore;
  beforeEach(function () {
    fdsBefore = countFds();
  });

  /** After the socket closed and the peer exited: no fd and no mapping left behind. */
  async function nothingLeaked(v, peer) {
    if (!v.socket.destroyed) v.socket.destroy();
    if (!v.socket.closed) await once(v.socket, 'close');
    await peer.end();
    assert.equal(countFds(), fdsBefore, 'fds left open');
    // The ring pages are unmapped once the endpoint is collected.
    for (let i = 0; i < 20 && ringMappings() > 0; i++) {
      global.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(ringMappings(), 0, 'ring pages left mapped');
  }

  for (const [onreadSize, sink] of [
    [0, "'data'"],
    [100, 'a 100-byte onread buffer'],
  ]) {
    it(`every byte arrives through ${sink} while the peer kicks 8 times per chunk`, async function () {
      const total = 256 * 1024;
      const { peer, port } = await attacker('stream', { total, storm: 8, chunk: 1500 });
      const v = victim(port, onreadSize);
      assert.deepEqual(await within(v.done, 30000, 'stream'), { how: 'end', code: undefined });
      assert.deepEqual(await peer.line(), { sent: total });
      assert.ok(Buffer.concat(v.chunks).equals(pattern(total)), 'bytes differ');
      if (onreadSize > 0) assert.ok(v.maxChunk <= onreadSize);
      assert.ok(woken.calls > 0 && woken.bytes > 0, `woken reads: ${JSON.stringify(woken)}`);
      await nothingLeaked(v, peer);
    });
  }

  it('a kick storm with nothing written neither starves the event loop nor loses the bytes that follow', async function () {
    const total = 64 * 1024;
    const { peer, port } = await attacker('storm', { seconds: 1, total, storm: 4, chunk: 3000 });
    const v = victim(port);
    const { kicks } = await within(peer.line(), 20000, 'storm');
    const ticksAfterStorm = v.ticks;
    assert.deepEqual(await within(v.done, 30000, 'stream after storm'), { how: 'end', code: undefined });
    assert.ok(kicks > 1000, `only ${kicks} kicks`);
    // One second of storm: timers ran all along (100 ticks if idle; a starved loop gives ~0).
    assert.ok(ticksAfterStorm >= 20, `the event loop turned only ${ticksAfterStorm} times`);
    assert.equal(v.chunks.length > 0 && Buffer.concat(v.chunks).equals(pattern(total)), true, 'bytes differ');
    assert.ok(woken.calls > 0 && woken.bytes > 0, `woken reads: ${JSON.stringify(woken)}`);
    await nothingLeaked(v, peer);
  });

  for (const [index, first, storm, onreadSize] of [
    ['over', 0, 1, 0],
    ['behind', 5000, 1, 0],
    ['huge', 300, 200, 0],
    ['over', 5000, 50, 64],
  ]) {
    const after = first ? `after ${first} honest bytes` : 'first';
    const sink = onreadSize ? `, reading into onread` : '';
    it(`a producer index ${index} the ring, written while the read is armed (${after}, ${storm} kicks${sink}), fails the socket with EPROTO`, async function () {
      const { peer, port } = await attacker('garbage', { index, first, storm });
      const v = victim(port, onreadSize);
      assert.equal(await within(peer.line(), 20000, 'attack'), 'attacked');
      assert.deepEqual(await within(v.done, 20000, 'EPROTO'), { how: 'error', code: 'EPROTO' });
      // The armed read met the index, before any JS ran.
      assert.deepEqual(woken.errors, ['EPROTO']);
      // The honest bytes before the attack came whole; nothing after it.
      assert.ok(Buffer.concat(v.chunks).equals(pattern(first)), 'bytes differ');
      await nothingLeaked(v, peer);
    });
  }

  it('an onread buffer detached while the read is armed fails the socket with ERR_INVALID_STATE (no read into it, no busy loop)', async function () {
    const { peer, port } = await attacker('later', { first: 50, total: 3000 });
    const v = victim(port, 100);
    assert.equal(await within(peer.line(), 20000, 'asleep'), 'asleep');
    assert.ok(Buffer.concat(v.chunks).equals(pattern(50)));
    const before = { ...woken };
    // The user gives the buffer's memory away (as postMessage's transfer list would).
    structuredClone(v.onread.buffer, { transfer: [v.onread.buffer] });
    assert.equal(v.onread.length, 0);
    peer.child.stdin.write('go\n');
    assert.deepEqual(await within(v.done, 10000, 'a detached buffer'), { how: 'error', code: 'ERR_INVALID_STATE' });
    assert.equal(woken.bytes, before.bytes, 'nothing was read into the detached buffer');
    await nothingLeaked(v, peer);
  });

  it('paused while the read is armed, then stormed with the ring full: no data event, the loop turns; resume() delivers every byte', async function () {
    const total = 64 * 1024;
    const { peer, port } = await attacker('later', { first: 50, total, storm: 16 });
    const v = victim(port);
    assert.equal(await within(peer.line(), 20000, 'asleep'), 'asleep');
    v.socket.pause();
    const delivered = v.chunks.length;
    const ticks = v.ticks;
    peer.child.stdin.write('go\n');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(v.chunks.length, delivered, 'data while paused');
    assert.ok(v.ticks - ticks >= 20, `the event loop turned only ${v.ticks - ticks} times in a second`);
    v.socket.resume();
    assert.deepEqual(await within(v.done, 30000, 'resumed'), { how: 'end', code: undefined });
    assert.deepEqual(await peer.line(), { sent: total });
    assert.ok(Buffer.concat(v.chunks).equals(Buffer.concat([pattern(50), pattern(total)])), 'bytes differ');
    await nothingLeaked(v, peer);
  });
});
