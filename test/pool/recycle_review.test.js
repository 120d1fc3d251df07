'use strict';
// Review of receive-memory recycling (issue 13), written apart from the code:
// a Buffer handed to user code is never reused, rewritten or unmapped while
// reachable, whichever way the user keeps it. A real receiving process keeps
// a random subset of a patterned stream (the pattern does not repeat within
// 400 MiB, so reused memory cannot read back right) through every path in
// recycle_review_receiver.js, forces GCs, takes >100 MiB more, and checks
// every kept byte after its socket and server closed; then it exits holding
// them. Both receive paths: pool views of the sender's pages (extents go back
// to the sender, which writes them again) and ring reads into recycled slabs.
const assert = require('node:assert/strict');
const xenring = require('../..');
const { forkPeer } = require('./peer_process');
const { bulkPlan, writeBulk } = require('./bulk_stream');

const ROUNDS = 48; // ~165 MiB: the first 48 MiB kept from, the rest recycles under it
const plan = bulkPlan(ROUNDS);
const total = plan.reduce((a, b) => a + b, 0);
const KEEP_BYTES = 48 << 20;

async function sendTo(port, pool) {
  const s = xenring.connect({ port, ...(pool ? {} : { pool: false }) });
  await new Promise((resolve, reject) => s.once('connect', resolve).once('error', reject));
  const sent = await writeBulk(s, plan);
  s.end();
  await new Promise((resolve) => s.once('close', resolve).resume());
  return { sent, stats: s.poolStats?.() ?? null };
}

describe('recycling review: kept Buffers survive recycling under them (real processes)', function () {
  this.timeout(120000);

  for (const pool of [true, false]) {
    it(`${pool ? 'pool views (extents given back and rewritten by the sender)' : 'ring reads (slabs recycled)'}: every path of keeping a Buffer keeps its bytes`, async () => {
      const peer = forkPeer('recycle_review_receiver.js', { pool, seed: pool ? 11 : 12, keepBytes: KEEP_BYTES, keepShare: 0.8, total }, ['--expose-gc']);
      const { port } = await peer.next('ready');
      const { sent, stats } = await sendTo(port, pool);
      const r = await peer.next('done');
      // It exits on its own; something left open would keep it alive.
      const stuck = setTimeout(() => peer.child.kill('SIGKILL'), 20000);
      peer.exited.then(() => clearTimeout(stuck));
      if (process.env.RECYCLE_REVIEW_DEBUG) console.log(JSON.stringify({ byPath: r.byPath, stats: r.stats, weakAlive: r.weakAlive }));
      const [code, signal] = await peer.exited;
      assert.equal(sent, total);
      assert.equal(r.bytes, total, 'bytes received');
      assert.equal(r.badAtArrival, -1, `wrong bytes on arrival at stream offset ${r.badAtArrival}`);
      assert.deepEqual(r.problems, [], 'kept Buffers changed or were detached');
      assert.equal(r.badAtEnd, -1);
      assert.deepEqual(r.badInHelper, [], 'Buffers posted to a worker changed');
      for (const [path, n] of Object.entries(r.byPath)) assert.ok(n > 0, `path ${path} never exercised`);
      assert.ok(Object.values(r.byPath).reduce((a, b) => a + b) > 40, 'too few Buffers kept');
      // Exit with kept views and slabs reachable: no crash in a finalizer.
      assert.equal(signal, null);
      assert.equal(code, 0);
      if (pool) {
        // The pages under the kept views were really at stake: most payloads
        // went by reference, the sender wrote extents again after the
        // receiver gave them back (more bytes than the pool holds).
        assert.ok(r.stats.receivedByRef > 100, `only ${r.stats.receivedByRef} payloads by reference`);
        assert.ok(r.stats.releasedByGC > 0, 'no view given back by the collector while the stream ran');
        assert.ok(stats.sentByRef > 100);
        assert.ok(r.stats.bytesReceivedByRef > 1.5 * r.stats.size, 'the pool was not gone round at least once');
      }
    });
  }

  it('a receiving worker terminated with live slabs and views: what it posted (copy or transfer attempt) stays whole', async () => {
    const server = xenring.createServer();
    const sending = new Promise((resolve) => {
      server.once('connection', (s) => {
        s.on('error', () => {});
        writeBulk(s, plan).then(resolve, () => resolve(-1));
        s.once('close', () => resolve(-1));
      });
    });
    await new Promise((r) => server.listen({ port: 0 }, r));
    const peer = forkPeer('recycle_review_receiver.js', { worker: true, pool: true, port: server.address().port, seed: 13, keepBytes: 1 << 30, keepShare: 0.8, terminateAt: 64 << 20 }, ['--expose-gc']);
    const r = await peer.next('done');
    const [code, signal] = await peer.exited;
    await sending;
    await new Promise((res) => server.close(res));
    assert.ok(r.workerPos >= 64 << 20);
    assert.deepEqual(r.workerProblems, []);
    assert.equal(r.workerBad, -1, 'a Buffer kept in the worker changed');
    assert.ok(r.posted > 15, `only ${r.posted} Buffers posted`);
    assert.deepEqual(r.badPosted, [], 'a Buffer the worker posted changed after it was terminated');
    assert.equal(signal, null);
    assert.equal(code, 0);
  });
});
