'use strict';
// A reader's spin that a pool payload's announcement ends asks for no
// wake-up (the reader takes the payload instead). When that payload sits
// after ring bytes not yet visible to the spin, the reader must still ask
// before it sleeps: found as a soak that hung with 320 KiB unread in the
// ring, the reader asleep and its wake-up request bit clear.
const assert = require('node:assert/strict');
const { RingReader } = require('../../dist/ring/reader');
const { VchanState } = require('../../dist/ring/vchan_state');
const { ringPair } = require('./pair');

const immediate = () => new Promise((r) => setImmediate(r));

/** The parts of a PoolReceiver the reader uses: one payload announced at ring position 100. */
function fakeReceiver() {
  const word = new Uint32Array([0]); // the peer's descriptor index
  let taken = 0;
  return {
    word,
    get announceWord() {
      return word;
    },
    get announceMark() {
      return taken;
    },
    poll() {
      taken = word[0];
    },
    allowance(consumed) {
      return taken > 0 ? 100 - consumed : Infinity;
    },
    take() {
      throw new Error('no payload is due before ring position 100');
    },
  };
}

describe('ring: a spin ended by a payload announced after unread ring bytes', function () {
  it('still asks for a wake-up before sleeping, so the ring bytes written next wake it', async function () {
    const pair = ringPair(14, { wired: true });
    const out = Buffer.alloc(4);
    pair.client.write(Buffer.from('x')); // the initial request's kick, out of the way
    assert.equal(pair.server.ack(), 1);
    assert.equal(pair.server.read(out, 0, 4), 1);

    const rx = fakeReceiver();
    const got = [];
    const errors = [];
    const reader = new RingReader(
      new VchanState(pair.server, true),
      { channelData: (c) => (got.push(Buffer.from(c)), true), channelActivity() {} },
      { endOfData() {}, fail: (e) => errors.push(e) },
      { maxChunk: 4096, spinMicros: 50 },
      rx,
    );
    reader.resume(); // empty ring: the spin is scheduled, not run yet
    rx.word[0] = 1; // the peer announces a payload at position 100 (its ring bytes still to come)
    await immediate();
    await immediate();
    assert.deepEqual(errors, []);
    assert.equal(got.length, 0);

    // The bytes before the payload arrive: the reader must have asked to be woken.
    pair.client.write(Buffer.alloc(60, 7));
    assert.equal(pair.server.ack(), 1, 'the writer kicked: the sleeping reader had asked for a wake-up');
    reader.stop();
    pair.close();
  });
});
