'use strict';
// How a reader is woken: a woken reader consumes its wake-ups in its first
// read (one call, not service() then read()), and a spin can watch one more
// peer-written word (a pool's descriptor index) besides the ring.
const assert = require('node:assert/strict');
const { Worker } = require('node:worker_threads');
const { native } = require('../../dist/native');
const { RingReader } = require('../../dist/ring/reader');
const { VchanState } = require('../../dist/ring/vchan_state');
const { ringPair } = require('./pair');

const wiredPair = () => ringPair(12, { wired: true });

/** A reader on the server end, with its endpoint's service and waitData calls counted. */
function countedReader(pair, spinMicros, options = {}) {
  const calls = { service: 0, waitData: 0 };
  for (const k of Object.keys(calls)) {
    const f = native.RingEndpoint.prototype[k];
    // An own property before VchanState binds its methods: the spy stays (bound_methods.test.js).
    Object.defineProperty(pair.server, k, { value: (...a) => (calls[k]++, f.apply(pair.server, a)), configurable: true });
  }
  const state = new VchanState(pair.server, true);
  const chunks = [];
  const sink = { channelData: (c) => (chunks.push(Buffer.from(c)), true), channelActivity() {} };
  const host = { endOfData() {}, fail: (e) => assert.fail(e) };
  const reader = new RingReader(state, sink, host, { maxChunk: 4096, spinMicros, ...options });
  return { reader, chunks, calls };
}

/** read()'s flag: consume the pending wake-ups first (lib/native.ts ReadFlag.Ack). */
const READ_ACK = 1;

describe('ring: a woken reader', function () {
  for (const spinMicros of [0, 50]) {
    it(`consumes its wake-ups in its first read, not in a service() call before it (spinMicros ${spinMicros})`, function () {
      const pair = wiredPair();
      const { reader, chunks, calls } = countedReader(pair, spinMicros);
      reader.resume(); // nothing yet: it asks for a wake-up
      assert.equal(pair.client.write(Buffer.from('first')), 5, 'a kick: the reader asked');
      reader.onWake(true); // as the channel does for a reader that is reading
      assert.equal(Buffer.concat(chunks).toString(), 'first');
      assert.equal(calls.service, 0);
      assert.equal(pair.server.ack(), 0, 'the read consumed the kick');
      reader.stop();
      pair.close();
    });
  }

  it('a pump that ends before any read (here: the turn\'s budget is spent) consumes the wake-ups with service()', function () {
    const pair = wiredPair();
    const { reader, chunks, calls } = countedReader(pair, 0, { turnReads: 0 });
    reader.resume();
    pair.client.write(Buffer.from('y'));
    reader.onWake(true);
    assert.equal(chunks.length, 0, 'it yielded to the loop first');
    assert.equal(calls.service, 1);
    assert.equal(pair.server.ack(), 0, 'consumed: the fd does not stay readable');
    reader.stop();
    pair.close();
  });

  it('with a watched word that moved, the read consumes the wake-ups but reads nothing (a payload announced since the caller looked may lie inside)', function () {
    const pair = wiredPair();
    pair.client.write(Buffer.from('x')); // the init request's kick
    const word = new Uint32Array([5]);
    pair.server.bindWatch(word);
    const out = Buffer.alloc(8);
    assert.equal(pair.server.read(out, 0, 8, READ_ACK, 4), 0, 'the word moved: nothing read');
    assert.equal(pair.server.ack(), 0, 'the kick was consumed first');
    assert.equal(pair.server.readable(), 1);
    assert.equal(pair.server.read(out, 0, 8, READ_ACK, 5), 1, 'the word as seen: the read goes ahead');
    assert.equal(out[0], 'x'.charCodeAt(0));
    pair.close();
  });
});

describe('ring: a spin watching a second word', function () {
  it('ends when another thread moves the watched word, long before its budget', async function () {
    const pair = wiredPair();
    const word = new Uint32Array(new SharedArrayBuffer(4));
    word[0] = 7;
    pair.server.bindWatch(word);
    const go = new Int32Array(new SharedArrayBuffer(4));
    // The worker moves the word 20 ms after we start spinning.
    const worker = new Worker(
      'const { workerData: { word, go } } = require("node:worker_threads");' +
        'Atomics.wait(go, 0, 0); Atomics.wait(go, 0, 1, 20); Atomics.store(word, 0, 8);',
      { eval: true, workerData: { word, go } },
    );
    await new Promise((r) => worker.once('online', r));
    Atomics.store(go, 0, 1);
    Atomics.notify(go, 0);
    const t0 = process.hrtime.bigint();
    // No ring byte will come: only the word can end this 1-second spin early.
    assert.equal(pair.server.waitData(1_000_000, false, 7), 0);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(Atomics.load(word, 0), 8);
    assert.ok(ms < 900, `the spin ran ${ms} ms: it did not see the word move`);
    await worker.terminate();
    // Without a value to compare, the word is not watched: a moved word does not end the spin.
    const t1 = process.hrtime.bigint();
    assert.equal(pair.server.waitData(20_000, false), 0);
    assert.ok(Number(process.hrtime.bigint() - t1) / 1e6 >= 15);
    pair.close();
  });

  it('a spin the watched word ended asks for no wake-up, even when told to arm (the caller takes the payload)', function () {
    const pair = wiredPair();
    const out = Buffer.alloc(4);
    pair.client.write(Buffer.from('x')); // the init request's kick
    assert.equal(pair.server.ack(), 1);
    assert.equal(pair.server.read(out, 0, 4), 1);
    const word = new Uint32Array([9]);
    pair.server.bindWatch(word);
    assert.equal(pair.server.waitData(1_000_000, true, 8), 0, 'the word moved: the spin ends');
    pair.client.write(Buffer.from('y'));
    assert.equal(pair.server.ack(), 0, 'no wake-up was asked for');
    // Neither data nor a moved word: arm as before, and the next write kicks.
    assert.equal(pair.server.read(out, 0, 4), 1);
    assert.equal(pair.server.waitData(1_000, true, 9), 0);
    pair.client.write(Buffer.from('z'));
    assert.equal(pair.server.ack(), 1);
    pair.close();
  });

  it('drops a watched word whose buffer was detached (its memory may be gone) and spins on the ring alone', function () {
    const pair = wiredPair();
    const ab = new ArrayBuffer(4);
    pair.server.bindWatch(new Uint32Array(ab));
    structuredClone(ab, { transfer: [ab] }); // detaches ab
    assert.equal(ab.byteLength, 0);
    const t0 = process.hrtime.bigint();
    // Watched, the stale value 1 would end the spin at once (the word read 0).
    assert.equal(pair.server.waitData(20_000, false, 1), 0);
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 >= 15, 'the detached word was still read');
    pair.close();
  });

  it('takes only a Uint32Array (or null to unbind)', function () {
    const pair = wiredPair();
    assert.throws(() => pair.server.bindWatch(new Uint8Array(4)), { name: 'TypeError' });
    assert.throws(() => pair.server.bindWatch({}), { name: 'TypeError' });
    assert.throws(() => pair.server.bindWatch(new Uint32Array(0)), { name: 'RangeError' });
    const word = new Uint32Array([3]);
    pair.server.bindWatch(word);
    assert.equal(pair.server.waitData(1_000_000, false, 2), 0, 'ends at once: the word differs');
    pair.server.bindWatch(null);
    const t0 = process.hrtime.bigint();
    assert.equal(pair.server.waitData(20_000, false, 2), 0);
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 >= 15, 'unbound: not watched');
    pair.close();
  });
});
