'use strict';
// The hand-off of large allocBuffer() messages must cost V8 nothing that
// grows with them, nor make and drop a Buffer per message: the sender's
// next allocBuffer() of the extent that came back is the Buffer it sent,
// and the receiver's next payload in it is the view it released (same
// object, the new message's bytes). Dropping a view per message was
// costly twice: detached at once, Node ran its finalizer through an extra
// wake-up of the event loop per message and side; left for a GC to find
// (before that), V8 lowered its external-memory count as it swept them and
// reset its limit to that low, the views' finalizers then gave their
// lengths back (they are kept off the count while alive) and crossed the
// limit, and a long hand-off loop ran a major GC every ~30 messages in each
// process. Here 1000
// messages between two fresh processes, answered on arrival, must start
// (almost) none in either. Counts, not times.
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');

const PEER = path.join(__dirname, 'handoff_peer.js');
const SIZE = 16 << 20;
const WARM = 20; // start-up GCs (module loading, the first views) are not the hand-off's
const COUNT = 1000;

const next = async (child, event) => {
  for (;;) {
    const [m] = await once(child, 'message');
    if (m.event === event) return m;
  }
};

describe('pool: 16 MiB hand-offs start no major GC', function () {
  this.timeout(120000);

  it('1000 allocBuffer messages answered on arrival: no major GC in either process, the same Buffer reused on both sides with every message\'s bytes, all by reference', async () => {
    const opts = { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] };
    const receiver = fork(PEER, ['receiver', String(SIZE)], opts);
    let sender = null;
    try {
      const { port } = await next(receiver, 'ready');
      receiver.send('count'); // zeroes its counts once the sender's warm-up is done (below)
      await next(receiver, 'counted');
      sender = fork(PEER, ['sender', String(SIZE), String(WARM), String(COUNT), String(port)], opts);
      const s = await next(sender, 'counted');
      receiver.send('count');
      const r = await next(receiver, 'counted');
      assert.equal(s.stats.sentByRef, WARM + COUNT, 'every message went by reference');
      assert.equal(s.stats.fallbacks, 0);
      assert.equal(r.msgs, WARM + COUNT);
      // Before: 0 and 0 (a new view each time on both sides, the old one detached).
      assert.equal(s.same, COUNT, 'allocBuffer() hands out the Buffer of the extent that came back');
      assert.equal(r.same, WARM + COUNT - 1, 'the payload arrives in the view released before it');
      assert.equal(r.wrong, 0, 'a reused view showed another message\'s bytes');
      // Before: 41-53 in the sender, 0 in the receiver (three runs; 16-42 in
      // the receiver in an earlier form of this test). Two
      // are allowed for an ordinary heap-growth GC.
      assert.ok(s.majorGCs <= 2, `${s.majorGCs} major GCs in the sender for ${COUNT} hand-offs`);
      assert.ok(r.majorGCs <= 2, `${r.majorGCs} major GCs in the receiver for ${WARM + COUNT} hand-offs`);
    } finally {
      if (sender) sender.kill();
      receiver.kill();
    }
  });
});
