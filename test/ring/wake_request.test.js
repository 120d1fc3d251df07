'use strict';
// How a reader asks to be woken: a reader that never spins asks in the read
// that empties the ring (no extra call before it sleeps), and a spin can
// watch one more peer-written word (a pool's descriptor index) besides the ring.
const assert = require('node:assert/strict');
const { Worker } = require('node:worker_threads');
const { native } = require('../../dist/native');
const { RingReader } = require('../../dist/ring/reader');
const { VchanState } = require('../../dist/ring/vchan_state');
const { ringPair } = require('./pair');

const wiredPair = () => ringPair(12, { wired: true });

/** A reader on the server end, with its endpoint's waitData calls counted. */
function countedReader(pair, spinMicros) {
  const calls = { waitData: 0 };
  const wait = native.RingEndpoint.prototype.waitData;
  // An own property before VchanState binds its methods: the spy stays (bound_methods.test.js).
  Object.defineProperty(pair.server, 'waitData', {
    value: (...a) => (calls.waitData++, wait.apply(pair.server, a)),
    configurable: true,
  });
  const state = new VchanState(pair.server, true);
  const chunks = [];
  const sink = { channelData: (c) => (chunks.push(Buffer.from(c)), true), channelActivity() {} };
  const host = { endOfData() {}, fail: (e) => assert.fail(e) };
  const reader = new RingReader(state, sink, host, { maxChunk: 4096, spinMicros });
  return { reader, chunks, calls };
}

describe('ring: asking for a wake-up', function () {
  it('spinMicros 0: the read that empties the ring asks for the next write, and the peer\'s next write wakes the reader', function () {
    const pair = wiredPair();
    const { reader, chunks, calls } = countedReader(pair, 0);
    // The server asked for the client's first write at init; consume that kick.
    assert.equal(pair.client.write(Buffer.from('first')), 5);
    assert.equal(pair.server.ack(), 1);
    pair.server.service(); // as the channel does on a wake-up: the state array is current
    reader.resume(true);
    assert.deepEqual(Buffer.concat(chunks).toString(), 'first');
    assert.equal(calls.waitData, 0, 'asleep with no call after the read');
    // No wake-up lost: the next write kicks the reader, once.
    assert.equal(pair.client.write(Buffer.from('second')), 6);
    assert.equal(pair.server.ack(), 1, 'the write kicked the reader');
    assert.equal(pair.client.write(Buffer.from('!')), 1);
    assert.equal(pair.server.ack(), 0, 'one kick until the reader asks again');
    pair.server.service();
    reader.onWake();
    assert.equal(Buffer.concat(chunks).toString(), 'firstsecond!');
    assert.equal(calls.waitData, 0);
    reader.stop();
    pair.close();
  });

  it('a read that leaves bytes in the ring asks for nothing; neither does a read when asked not to', function () {
    const pair = wiredPair();
    const out = Buffer.alloc(6);
    pair.client.write(Buffer.from('x')); // the init request's kick
    assert.equal(pair.server.ack(), 1);
    assert.equal(pair.server.read(out, 0, 6), 1);
    assert.equal(pair.client.write(Buffer.from('abcdef')), 6);
    assert.equal(pair.server.ack(), 0, 'nobody asked');
    assert.equal(pair.server.read(out, 0, 4, true), 4, 'bytes left: no request');
    assert.equal(pair.client.write(Buffer.from('g')), 1);
    assert.equal(pair.server.ack(), 0);
    assert.equal(pair.server.read(out, 0, 6, false), 3, 'emptied, but not asked to arm');
    assert.equal(pair.client.write(Buffer.from('h')), 1);
    assert.equal(pair.server.ack(), 0);
    assert.equal(pair.server.read(out, 0, 6, true), 1, 'emptied and armed');
    assert.equal(pair.client.write(Buffer.from('i')), 1);
    assert.equal(pair.server.ack(), 1);
    pair.close();
  });

  it('a spinning reader (spinMicros > 0) does not ask in its reads: the peer stays silent while it spins', function () {
    const pair = wiredPair();
    const { reader, chunks } = countedReader(pair, 50);
    pair.client.write(Buffer.from('a'));
    pair.server.service();
    reader.resume(true);
    assert.equal(Buffer.concat(chunks).toString(), 'a');
    // Its spin is scheduled for later; until it sleeps, a write costs the peer no kick.
    pair.client.write(Buffer.from('b'));
    assert.equal(pair.server.ack(), 0);
    reader.stop();
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
