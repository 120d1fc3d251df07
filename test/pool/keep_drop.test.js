'use strict';
// Bulk streams through the default options of a local connection (pool on,
// ordinary write()s, a plain 'data' listener): both directions at once
// between two processes, every byte checked as it arrives and, for a
// receiver that keeps every Buffer, again at the end after the collector ran.
// Receive slabs are reused once V8 collects them and pool extents go back to
// the sender once their views are collected; neither may ever happen under a
// Buffer the receiver still holds (issue 13).
const assert = require('node:assert/strict');
const xenring = require('../..');
const { forkPeer } = require('./peer_process');
const { bulkPlan, writeBulk, receiveBulk } = require('./bulk_stream');

const ROUNDS = 64; // per direction: 768 writes of 64 KiB, 128 of 1 MiB, 128 of ~64 KiB + 3, 64 of ~300 KiB, 4 of 5 MiB, ...
const planBytes = bulkPlan(ROUNDS).reduce((a, b) => a + b, 0);

async function exchange(mode) {
  const peer = forkPeer('keep_drop_peer.js', { mode, rounds: ROUNDS }, ['--expose-gc']);
  const { port } = await peer.next('ready');
  const s = xenring.connect({ port, allowHalfOpen: true });
  await new Promise((resolve, reject) => s.once('connect', resolve).once('error', reject));
  const received = receiveBulk(s, mode);
  const sent = await writeBulk(s, bulkPlan(ROUNDS));
  s.end();
  const mine = await received;
  const theirs = await peer.next('done');
  await peer.exited;
  return { sent, mine, theirs, myStats: s.poolStats() };
}

describe('pool: bulk write() to a plain \'data\' receiver, both directions (real processes)', function () {
  this.timeout(120000);

  for (const mode of ['keep', 'drop']) {
    it(`a receiver that ${mode === 'keep' ? 'keeps every Buffer sees each unchanged at the end' : 'drops its Buffers gets every byte, and the pool pages come back'}`, async () => {
      const { sent, mine, theirs, myStats } = await exchange(mode);
      assert.equal(sent, planBytes);
      assert.equal(theirs.sent, planBytes);
      for (const [who, r] of [['child', theirs.received], ['parent', mine]]) {
        assert.equal(r.bytes, planBytes, `${who}: bytes received`);
        assert.equal(r.badAtArrival, -1, `${who}: wrong bytes at stream offset ${r.badAtArrival} on arrival`);
        assert.equal(r.badAtEnd, -1, `${who}: a kept Buffer changed after arrival (stream offset ${r.badAtEnd})`);
        // Payloads did travel by reference (ordinary writes copied into the pool).
        assert.ok(r.stats.receivedByRef > 0, `${who}: nothing received by reference`);
      }
      if (mode === 'drop') {
        // Views the receiver dropped came back through the collector while
        // the stream ran (not only at close), so the pool kept serving.
        for (const [who, st] of [['child', theirs.received.stats], ['parent', mine.stats]]) {
          assert.ok(st.releasedByGC > 0, `${who}: no view returned by the collector`);
        }
        for (const [who, st] of [['child', theirs.stats], ['parent', myStats]]) {
          assert.ok(st.sentByRef > 64, `${who}: only ${st.sentByRef} payloads went by reference`);
        }
      }
    });
  }
});
