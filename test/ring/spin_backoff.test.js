'use strict';
// The back-off of the read spin before sleeping (lib/ring/spin_backoff.ts).
// A peer that misses every spin (slow, or starved of the CPU we spin on) is
// spun on exponentially less often; one miss alone (under load: the peer
// preempted by a third process) skips no chance, since each skipped chance
// is a wait that ends in a kick and a wake-up. Real rings in one process
// with eventfd notifiers: the "peer" writes only after the reader's spin
// has ended, so every spin misses and every byte arrives by a wake-up.
const assert = require('node:assert/strict');
const { native } = require('../../dist/native');
const { RingReader, resetFreshSpins } = require('../../dist/ring/reader');
const { VchanState } = require('../../dist/ring/vchan_state');
const { ringPair } = require('./pair');

const turn = () => new Promise((r) => setImmediate(r));

/**
 * Sends `count` bytes, each after the reader's wait for it has spun or not;
 * returns, per wait, whether the reader spun (waitData with a spin time).
 */
async function spinsPerWait(count) {
  const pair = ringPair(12, { wired: true });
  let spun = 0;
  const waitData = native.RingEndpoint.prototype.waitData;
  // An own property before VchanState binds the endpoint's methods.
  Object.defineProperty(pair.server, 'waitData', {
    value: (micros, ...rest) => (micros > 0 && spun++, waitData.call(pair.server, micros, ...rest)),
    configurable: true,
  });
  const state = new VchanState(pair.server, true);
  let got = 0;
  const sink = { channelData: (c) => ((got += c.length), true), channelActivity() {} };
  const reader = new RingReader(state, sink, { endOfData() {}, fail: (e) => assert.fail(e) }, { maxChunk: 4096, spinMicros: 50 });
  const pattern = [];
  reader.resume();
  for (let i = 0; i < count; i++) {
    const before = spun;
    // The spin (if this wait takes one) runs after a loop turn; two turns
    // let it end, empty-handed, and ask for a wake-up.
    await turn();
    await turn();
    pattern.push(spun > before);
    assert.equal(pair.client.write(Buffer.of(i)), 1);
    reader.onWake(true); // as the channel does when the kick arrives
  }
  assert.equal(got, count, 'every byte was delivered');
  reader.stop();
  pair.close();
  return pattern;
}

describe('ring: the back-off of the read spin', function () {
  // New readers share their spin chances until one catches the peer: each test starts with no history.
  beforeEach(resetFreshSpins);

  it('a peer that misses every spin is spun on for exponentially fewer waits', async function () {
    const pattern = await spinsPerWait(80);
    const spins = pattern.map((s, i) => (s ? i : -1)).filter((i) => i >= 0);
    // Waits 0 and 1 spin (one miss is forgiven), then 2, 4, 8, 16, 32
    // chances are skipped between spins: 0, 1, 4, 9, 18, 35, 68.
    assert.deepEqual(spins, [0, 1, 4, 9, 18, 35, 68], `waits that spun: ${spins}`);
  });

  it("a new reader goes on from the misses of readers before it that never caught the peer (short connections' spins)", async function () {
    // A short connection's reader: spins at both its waits and misses both
    // (2 chances to skip), then skips the chance after its last byte (1 left).
    assert.deepEqual(await spinsPerWait(2), [true, true]);
    // The next new reader skips its first wait; alone it would spin at 0 and 1.
    assert.deepEqual(await spinsPerWait(3), [false, true, false]);
  });

  it('peers that never answer make new readers skip at most 16 first spins in a row (a hostile client cannot turn them off)', async function () {
    // 60 one-wait readers, every spin missed: the shared skips stop doubling at 16.
    const first = [];
    for (let i = 0; i < 60; i++) first.push((await spinsPerWait(1))[0]);
    let run = 0;
    let longest = 0;
    for (const spun of first) {
      run = spun ? 0 : run + 1;
      longest = Math.max(longest, run);
    }
    assert.ok(longest <= 16, `${longest} new readers in a row never spun: ${first.map(Number).join('')}`);
    assert.ok(first.slice(20).some((x) => x), 'new readers stopped spinning for good');
  });

  it('one miss skips no chance: the next wait spins again', async function () {
    const pattern = await spinsPerWait(2);
    assert.deepEqual(pattern, [true, true], 'the wait after a single missed spin went straight to sleep');
  });
});
