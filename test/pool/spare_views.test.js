'use strict';
// A pool view the pool took back (a loan sent by reference, a payload
// released) is kept and handed out again for the same extent and length,
// instead of a new external Buffer per message (and a detached one, whose
// finalizer cost each side an extra wake-up of its event loop). What must
// still hold: a reused view dropped without release() still returns its
// extent when collected; a view that is not reused (another length, more
// than the pool keeps, a closed connection) is detached, so it neither shows
// later payloads nor keeps the region mapped. The two-process hand-off
// (every byte of 1000 reused messages checked) is test/pool/handoff_gc.test.js.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { once } = require('node:events');
const xenring = require('../..');
const pool = require('../../dist/pool');
const { SPARE_VIEWS } = require('../../dist/pool/spare_views');
const { endPair, poolInodes } = require('../helpers/fixtures');

const P = pool.POOL_PAGE;

/** One direction, as two peers hold it: a's sender, b's receiver of a's region. */
function direction(poolBytes) {
  const region = pool.createLocalRegion(poolBytes);
  const sender = new pool.PoolSender({ mapping: region.mapping, poolBytes, init: true });
  const receiver = new pool.PoolReceiver({ mapping: pool.mapPeerRegion(region.fd, poolBytes), poolBytes, init: false, views: true });
  return {
    sender,
    receiver,
    close() {
      sender.close();
      receiver.close();
      fs.closeSync(region.fd);
    },
  };
}

/** Sends `buf` by reference at position 0 and takes it on the other side. */
function handOver(d, buf) {
  assert.equal(d.sender.send(buf, 0), true, 'not sent by reference');
  d.receiver.poll(0);
  const view = d.receiver.take(0);
  assert.ok(view, 'nothing delivered');
  return view;
}

const turn = () => new Promise((r) => setImmediate(r));

describe('pool: views handed out again', function () {
  it('the same extent and length: the same Buffer on both sides, with the new bytes; another length: new views, the kept ones detached', () => {
    const d = direction(16 * P);
    try {
      const buf = d.sender.allocBuffer(3 * P + 5).fill(1);
      const view = handOver(d, buf);
      assert.equal(buf.length, 3 * P + 5, 'a sent loan is kept, not detached');
      assert.equal(d.receiver.release(view), true);
      assert.equal(view.length, 3 * P + 5, 'a released view is kept, not detached');
      const again = d.sender.allocBuffer(3 * P + 5);
      assert.equal(again, buf, 'the extent came back: its Buffer is loaned again');
      assert.equal(d.sender.isLoaned(again), true);
      again.fill(2);
      const view2 = handOver(d, again);
      assert.equal(view2, view, 'the payload arrives in the view released before it');
      assert.ok(view2.every((x) => x === 2), 'the reused view shows the new payload');
      assert.equal(d.receiver.release(view2), true);
      assert.equal(d.receiver.release(view2), false, 'released twice');
      // Another length at the same offset: neither kept view fits.
      const other = d.sender.allocBuffer(2 * P).fill(3);
      assert.notEqual(other, buf);
      assert.equal(buf.length, 0, 'the sender\'s kept view of another length is detached');
      const view3 = handOver(d, other);
      assert.notEqual(view3, view);
      assert.equal(view.length, 0, 'the receiver\'s kept view of another length is detached');
      assert.ok(view3.length === 2 * P && view3.every((x) => x === 3));
      assert.equal(d.receiver.release(view3), true);
      assert.equal(d.sender.reclaim(), 1, 'the last extent came back (allocBuffer() took the others)');
      assert.equal(d.sender.stats.returned, 3);
    } finally {
      d.close();
    }
  });

  it('writing a sent loan again still fails once its extent is back, until allocBuffer() hands it out again', () => {
    const d = direction(16 * P);
    try {
      const buf = d.sender.allocBuffer(2 * P);
      d.receiver.release(handOver(d, buf));
      assert.equal(d.sender.wasSent(buf), true);
      assert.equal(d.sender.reclaim(), 1);
      assert.equal(d.sender.wasSent(buf), true, 'returned but not loaned again: still sent');
      assert.equal(d.sender.allocBuffer(2 * P), buf);
      assert.equal(d.sender.wasSent(buf), false);
      assert.equal(d.sender.isLoaned(buf), true);
      // A loan that falls back to the ring (here: written from its second
      // byte) was never sent by reference: it may be written again.
      assert.equal(d.sender.send(buf.subarray(1), 0), false);
      d.sender.recycle(buf);
      assert.equal(d.sender.isLoaned(buf), false);
      assert.equal(d.sender.wasSent(buf), false, 'a loan that went through the ring counts as sent by reference');
    } finally {
      d.close();
    }
  });

  it('a reused view dropped without release() returns its extent when collected', async () => {
    const d = direction(16 * P);
    try {
      let view = handOver(d, d.sender.allocBuffer(4 * P));
      d.receiver.release(view);
      assert.equal(d.sender.reclaim(), 1);
      view = handOver(d, d.sender.allocBuffer(4 * P).fill(9));
      assert.equal(view[0], 9);
      view = null; // dropped while held: only the collector can return it
      let returned = 0;
      for (let i = 0; i < 50 && returned === 0; i++) {
        global.gc();
        await turn();
        returned = d.sender.reclaim();
      }
      assert.equal(returned, 1, 'the collected reused view did not return its extent');
      assert.equal(d.receiver.stats.releasedByGC, 1);
    } finally {
      d.close();
    }
  });

  it(`keeps at most ${SPARE_VIEWS} views per side, detaching the oldest`, () => {
    const d = direction((SPARE_VIEWS + 1) * P);
    try {
      const loans = [];
      const views = [];
      for (let i = 0; i <= SPARE_VIEWS; i++) {
        loans.push(d.sender.allocBuffer(P).fill(i));
        views.push(handOver(d, loans[i]));
      }
      for (const v of views) assert.equal(d.receiver.release(v), true);
      assert.equal(loans[0].length, 0, 'the oldest sent loan is detached');
      assert.equal(views[0].length, 0, 'the oldest released view is detached');
      for (let i = 1; i <= SPARE_VIEWS; i++) {
        assert.equal(loans[i].length, P);
        assert.equal(views[i][0], i);
      }
      assert.equal(d.sender.reclaim(), SPARE_VIEWS + 1);
    } finally {
      d.close();
    }
  });

  it('a closed connection detaches the views it kept and leaves no region mapped, with no GC', async () => {
    const before = poolInodes();
    const srv = xenring.createServer({ pool: { size: 1 << 20 } }, (c) =>
      c.on('data', (d) => {
        c.write(Buffer.from([d.length >> 12]));
        c.release(d);
        kept.push(d);
      }),
    );
    const kept = [];
    srv.listen(0);
    await once(srv, 'listening');
    const s = xenring.connect({ port: srv.address().port, pool: { size: 1 << 20 } });
    const [[server]] = await Promise.all([once(srv, 'connection'), once(s, 'connect')]);
    const sent = [];
    for (let i = 0; i < 4; i++) {
      const buf = s.allocBuffer(64 * 1024).fill(i);
      sent.push(buf);
      s.write(buf);
      await once(s, 'data');
    }
    assert.equal(s.poolStats().sentByRef, 4);
    assert.ok(sent.every((b) => b === sent[0]) && kept.every((v) => v === kept[0]), 'one Buffer each side for equal messages');
    assert.equal(sent[0].length, 64 * 1024);
    const ours = [...poolInodes()].filter((i) => !before.has(i));
    // Regions on demand: the client's only (the server never sent by reference).
    assert.equal(ours.length, 1, `the client's pool is mapped while open (new regions: ${ours.length})`);
    await endPair(srv, s, server);
    assert.equal(sent[0].length, 0, 'the sender\'s kept view is detached at close');
    assert.equal(kept[0].length, 0, 'the receiver\'s kept view is detached at close');
    // The detached views' finalizers run from the event loop.
    for (let i = 0; i < 5; i++) await turn();
    const left = poolInodes();
    assert.deepEqual(ours.filter((i) => left.has(i)), [], 'no region of this pair is still mapped');
  });
});
