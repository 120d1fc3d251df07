'use strict';
// The read spin after a reply: when the 'data' handlers wrote (a reply), the
// reader spins for the answer in the same macrotask instead of after a loop
// turn (a turn costs about a third of a spinning round trip), but at most
// TICK_SPINS times in a row, so timers, I/O and promises still run. Real
// rings in one process; the "peer" answers at once from inside the handler,
// as a peer on the other vCPU would while we spin.
const assert = require('node:assert/strict');
const { RingReader, resetFreshSpins } = require('../../dist/ring/reader');
const { VchanState } = require('../../dist/ring/vchan_state');
const { ringPair } = require('./pair');

function run({ reply, answers, turnReads }) {
  const pair = ringPair(14);
  const state = new VchanState(pair.server, true);
  let written = 0;
  let delivered = 0;
  let left = answers;
  const sink = {
    channelData(chunk) {
      delivered += chunk.length;
      const answer = () => {
        if (reply) written++; // our reply went out...
        if (left-- > 0) pair.client.write(Buffer.of(1)); // ...and the peer answers at once
      };
      // 'promise': the reply is written by a promise job, as after `await`.
      if (reply === 'promise') Promise.resolve().then(answer);
      else answer();
      return true;
    },
    channelActivity() {},
  };
  const host = { endOfData() {}, fail: (e) => assert.fail(e), written: () => written };
  const reader = new RingReader(state, sink, host, { maxChunk: 4096, spinMicros: 50, turnReads });
  pair.client.write(Buffer.of(1));
  return new Promise((resolve) => {
    const perTurn = [];
    let last = 0;
    const turn = () => {
      perTurn.push(delivered - last);
      last = delivered;
      if (delivered > answers || perTurn.length > 400) {
        reader.stop();
        pair.close();
        resolve({ perTurn, delivered });
      } else setImmediate(turn);
    };
    reader.resume();
    setImmediate(turn);
  });
}

describe('ring: the read spin after a reply', function () {
  beforeEach(resetFreshSpins); // each test's reader starts with no history of other readers' spins

  it('takes the answer in the same macrotask, at most 16 in a row, then lets the loop turn', async function () {
    const { perTurn, delivered } = await run({ reply: true, answers: 200 });
    assert.equal(delivered, 201, 'every answer was delivered');
    const most = Math.max(...perTurn);
    // A turn: the spin after the loop turn takes one answer, then up to 16
    // in-tick spins (the old reader: 1 or 2 per turn). A starved loop would
    // show one huge turn.
    assert.ok(most >= 10, `answers were not taken without a loop turn: ${perTurn}`);
    assert.ok(most <= 18, `the loop was held for ${most} deliveries: ${perTurn}`);
  });

  it('takes the answer in the same macrotask when a promise job wrote the reply', async function () {
    // Node runs the tick queue before promise jobs: the reader, looking only
    // from the tick queue, saw no reply and waited a loop turn for each answer.
    const { perTurn, delivered } = await run({ reply: 'promise', answers: 200 });
    assert.equal(delivered, 201, 'every answer was delivered');
    const most = Math.max(...perTurn);
    assert.ok(most >= 10, `answers were not taken without a loop turn: ${perTurn}`);
    assert.ok(most <= 18, `the loop was held for ${most} deliveries: ${perTurn}`);
  });

  it('spins after the loop turn when the handlers did not write', async function () {
    const { perTurn, delivered } = await run({ reply: false, answers: 50 });
    assert.equal(delivered, 51);
    assert.ok(Math.max(...perTurn) <= 2, `deliveries per loop turn: ${perTurn}`);
  });

  it("keeps to a turn's budget of reads across the spins it chains", async function () {
    const { perTurn, delivered } = await run({ reply: true, answers: 100, turnReads: 3 });
    assert.equal(delivered, 101);
    // Each pump alone stays within 3 reads; without the carried budget the
    // chained pumps would take up to 17 in one turn.
    assert.ok(Math.max(...perTurn) <= 6, `deliveries per loop turn: ${perTurn}`);
  });
});
