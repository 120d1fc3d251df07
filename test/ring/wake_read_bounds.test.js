'use strict';
// The wake-read words (WakeWord) and target are JS's: a bug there (or user
// code that shrinks or detaches the target) can leave any value in them. For
// every odd combination the native wake-up read must write only inside the
// target as it is at wake time: [offset, offset + read) within its length,
// nothing around it, and read -1 (nothing) when the armed range does not fit.
const assert = require('node:assert/strict');
const { native } = require('../../dist/native');
const { ringPair } = require('./pair');
const { W, arm } = require('../helpers/wake_read');
const GUARD = 64;

describe('ring: the wake-up read never writes outside its target', function () {
  let pair;
  let words;
  let watcher;
  let pending = null;
  beforeEach(function () {
    pair = ringPair(12, { wired: true });
    words = new Uint32Array(W.Count);
    pair.server.bindWakeRead(words);
    watcher = new native.FdWatcher(pair.serverWaitFd, (events, read, error) => pending?.({ read, error }));
    watcher.bindRing(pair.server);
    watcher.start(1);
  });
  afterEach(function () {
    watcher.close();
    pair.close();
  });

  /** Arms with raw words, has the client write `bytes` and kick: resolves with the callback's { read, error }. */
  function wake(offset, max, bytes, mark) {
    arm(words, offset, max, mark);
    pair.server.requestData();
    const done = new Promise((resolve) => (pending = (r) => ((pending = null), resolve(r))));
    pair.client.write(bytes);
    return done;
  }

  /** Takes what a call left in the ring, so the next one starts empty. */
  function drain() {
    const n = pair.server.readable();
    if (n > 0) pair.server.read(Buffer.alloc(n), 0, n);
    pair.server.ack();
  }

  it('any offset and max, with a view in the middle of a larger buffer: inside it or nothing', async function () {
    const LEN = 100;
    const backing = Buffer.alloc(GUARD + LEN + GUARD, 0xee);
    const target = backing.subarray(GUARD, GUARD + LEN);
    pair.server.setWakeTarget(target);
    const offsets = [0, 1, LEN - 1, LEN, LEN + 1, 2 ** 31, 2 ** 32 - 1];
    const maxes = [0, 1, LEN - 1, LEN, LEN + 1, 2 ** 31, 2 ** 32 - 1];
    const bytes = Buffer.alloc(300, 0x41);
    for (const offset of offsets) {
      for (const max of maxes) {
        backing.fill(0xee);
        const { read, error } = await wake(offset, max, bytes);
        const what = `offset ${offset}, max ${max}`;
        assert.equal(error, undefined, what);
        const fits = max > 0 && offset + max <= LEN;
        assert.equal(read, fits ? Math.min(max, bytes.length) : -1, what);
        assert.equal(words[W.Armed], 0, what);
        // Exactly [offset, offset + read) changed, inside the view.
        for (let i = 0; i < backing.length; i++) {
          const inside = read > 0 && i >= GUARD + offset && i < GUARD + offset + read;
          if (backing[i] !== (inside ? 0x41 : 0xee)) assert.fail(`${what}: byte ${i - GUARD} of the view is ${backing[i]}`);
        }
        drain();
      }
    }
  });

  it('a target on a resizable buffer shrunk after arming reads only what still fits (a fixed view out of bounds: nothing)', async function () {
    const rab = new ArrayBuffer(256, { maxByteLength: 4096 });
    const tracking = new Uint8Array(rab);
    const fixed = new Uint8Array(rab, 64, 128);
    const bytes = Buffer.alloc(200, 0x42);

    pair.server.setWakeTarget(fixed);
    rab.resize(100); // the fixed view [64, 192) no longer fits
    assert.equal(fixed.length, 0);
    assert.deepEqual(await wake(0, 16, bytes), { read: -1, error: undefined });
    drain();

    pair.server.setWakeTarget(tracking);
    rab.resize(32);
    assert.deepEqual(await wake(16, 32, bytes), { read: -1, error: undefined }, 'past the shrunk end');
    drain();
    assert.deepEqual(await wake(16, 16, bytes), { read: 16, error: undefined });
    assert.ok(new Uint8Array(rab, 16, 16).every((b) => b === 0x42));
    drain();

    // Grown back: what lies past the old end was never written.
    rab.resize(4096);
    assert.ok(new Uint8Array(rab, 32).every((b) => b === 0), 'written past the shrunk end');
  });

  it('a watch asked for with no word bound, or any mark: reads, as a mark cannot move memory', async function () {
    const target = Buffer.alloc(64);
    pair.server.setWakeTarget(target);
    for (const mark of [0, 1, 2 ** 32 - 1]) {
      target.fill(0);
      const { read, error } = await wake(0, 64, Buffer.alloc(10, 0x43), mark);
      assert.equal(error, undefined);
      assert.equal(read, 10);
      assert.ok(target.subarray(0, 10).every((b) => b === 0x43) && target.subarray(10).every((b) => b === 0));
      drain();
    }
  });
});
