'use strict';
// A hostile peer is a real process (Python, mapping the same memfd) that
// writes forged descriptors, completions and queue indices. Each forgery must
// fail the pool with EPROTO: never a crash, never a view outside the pool.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { native } = require('../../dist/native');
const pool = require('../../dist/pool');

const { POOL_PAGE, DESCRIPTOR_QUEUE_OFFSET, COMPLETION_QUEUE_OFFSET, DESCRIPTOR_WORDS, COMPLETION_WORDS, POOL_DATA_OFFSET, QUEUE_SLOTS } = pool;
const POOL_BYTES = 16 * POOL_PAGE;
const ENTRIES = 128; // queue header bytes before the entries (native/pool_queue.h)

/** A fresh region memfd and the Python process that scribbles on it. */
async function hostilePeer() {
  const size = pool.regionBytes(POOL_BYTES);
  const fd = native.memfdCreate('pool-hostile', size);
  const py = spawn('python3', [path.join(__dirname, 'hostile_peer.py'), String(size)], { stdio: ['pipe', 'pipe', 'inherit', fd] });
  const lines = readline.createInterface({ input: py.stdout });
  const acks = [];
  lines.on('line', () => acks.shift()?.());
  const peer = {
    fd,
    size,
    /** Sends commands and waits until the peer has stored them all. */
    async run(...cmds) {
      const acked = new Promise((r) => acks.push(r));
      py.stdin.write(cmds.join('\n') + '\nsync\n');
      await acked;
    },
    /** Entry `slot` of a queue, then its producer index: what a producer would publish. */
    publish(queueOffset, words, slot, entry) {
      const at = queueOffset + ENTRIES + (slot % QUEUE_SLOTS) * words * 4;
      return entry.map((v, i) => `w32 ${at + 4 * i} ${v}`).concat(`w32 ${queueOffset} ${slot + 1}`);
    },
    async close() {
      py.stdin.end();
      await once(py, 'exit');
      fs.closeSync(fd);
    },
  };
  return peer;
}

function receiverOn(peer) {
  const mapping = new pool.poolNative.PoolMapping(peer.fd, peer.size, true);
  return new pool.PoolReceiver({ mapping, poolBytes: POOL_BYTES, init: false, views: true });
}

function senderOn(peer) {
  const mapping = new pool.poolNative.PoolMapping(peer.fd, peer.size, true);
  return new pool.PoolSender({ mapping, poolBytes: POOL_BYTES, init: true });
}

describe('pool: hostile peer process', function () {
  this.timeout(30000);
  // One hostile process for the file; every test starts on a zeroed region,
  // as a new connection would.
  let peer;
  before(async function () {
    peer = await hostilePeer();
  });
  after(async function () {
    await peer.close();
  });
  beforeEach(async function () {
    await peer.run(`fill 0 ${peer.size} 0`);
  });

  describe('forged descriptors (the peer sends)', function () {
    const D = DESCRIPTOR_QUEUE_OFFSET;
    const cases = [
      ['an extent beyond the pool', [[0, 0, POOL_BYTES, 1]], /outside the pool/],
      ['an extent crossing the end of the pool', [[0, 0, POOL_BYTES - POOL_PAGE, POOL_PAGE + 1]], /outside the pool/],
      ['a huge length that wraps', [[0, 0, POOL_PAGE, 0xffffffff]], /outside the pool/],
      ['an offset inside a page', [[0, 0, 100, 10]], /outside the pool/],
      ['an extent overlapping one in flight', [[0, 0, 0, 2 * POOL_PAGE], [5, 0, POOL_PAGE, 1]], /overlaps/],
      ['a stream position that goes backwards', [[10, 0, 0, 1], [9, 0, POOL_PAGE, 1]], /backwards/],
      ['a position beyond 2^53', [[0, 0x200000, 0, 1]], /backwards/],
    ];
    for (const [name, entries, message] of cases) {
      it(`${name} -> EPROTO`, async function () {
          const receiver = receiverOn(peer);
        await peer.run(...entries.flatMap((e, i) => peer.publish(D, DESCRIPTOR_WORDS, i, e)));
        assert.throws(() => receiver.poll(0), { code: 'EPROTO', message });
        receiver.close();
        });
    }

    it('a producer index more than a queue ahead -> EPROTO', async function () {
      const receiver = receiverOn(peer);
      await peer.run(`w32 ${D} ${QUEUE_SLOTS + 1}`);
      assert.throws(() => receiver.poll(0), { code: 'EPROTO', message: /indices/ });
      receiver.close();
    });

    it('more extents than the in-flight bound -> EPROTO', async function () {
      const receiver = receiverOn(peer);
      // The honest bound is QUEUE_SLOTS in flight; hold 16 pages' worth, then announce more than the bound.
      const first = [];
      for (let i = 0; i < 16; i++) first.push(...peer.publish(D, DESCRIPTOR_WORDS, i, [0, 0, i * POOL_PAGE, 1]));
      await peer.run(...first);
      receiver.poll(0);
      // Kept: a view dropped here may be collected (a GC between these lines,
      // as in a full run) and its extent returned, and then nothing overlaps.
      const held = [];
      for (let i = 0; i < 16; i++) held.push(receiver.take(0));
      // The pool is full of held extents: any new one must overlap.
      await peer.run(...peer.publish(D, DESCRIPTOR_WORDS, 16, [0, 0, 3 * POOL_PAGE, 1]));
      assert.throws(() => receiver.poll(0), { code: 'EPROTO', message: /overlaps/ });
      assert.equal(held.length, 16);
      receiver.close();
    });

    it('a valid descriptor is delivered as a view of exactly the announced bytes', async function () {
      const receiver = receiverOn(peer);
      await peer.run(`fill ${POOL_DATA_OFFSET + 2 * POOL_PAGE} 5000 171`, ...peer.publish(D, DESCRIPTOR_WORDS, 0, [7, 0, 2 * POOL_PAGE, 5000]));
      receiver.poll(0);
      assert.equal(receiver.allowance(0), 7);
      assert.equal(receiver.take(0), null, 'not due before position 7');
      const view = receiver.take(7);
      assert.equal(view.length, 5000);
      assert.ok(view.every((b) => b === 171));
      assert.equal(receiver.release(view), true);
      assert.equal(receiver.release(view), false, 'a second release is ignored locally');
      receiver.close();
    });

    it('random scribbles on the descriptor queue: every poll works or throws EPROTO, every view lies in the pool', async function () {
      let receiver = receiverOn(peer);
      let consumed = 0;
      let proto = 0;
      let views = 0;
      let next = 0; // the slot an honest producer would fill next
      for (let round = 0; round < 300; round++) {
        // A valid descriptor, then scribbles on the indices (prod at 0, cons
        // at 64) and the first entries.
        const valid = peer.publish(D, DESCRIPTOR_WORDS, next++, [consumed + (round % 3), 0, (round % 16) * POOL_PAGE, 1 + (round % 4096)]);
        const index = round % 10 === 9 ? [`w32 ${D + (round % 20 === 9 ? 0 : 64)} ${Math.floor(Math.random() * 2 ** 32)}`] : [];
        await peer.run(...valid, `rand 0 ${ENTRIES + 8 * DESCRIPTOR_WORDS * 4} ${round % 3}`, ...index);
        try {
          receiver.poll(consumed);
          for (let allow = receiver.allowance(consumed); allow !== Infinity; allow = receiver.allowance(consumed)) {
            consumed += allow; // as if the ring bytes before the payload were read
            const v = receiver.take(consumed);
            assert.ok(v.length >= 1 && v.length <= POOL_BYTES && v[0] >= 0);
            views++;
            receiver.release(v);
          }
        } catch (err) {
          assert.equal(err.code, 'EPROTO', err.message);
          proto++;
          // A failed connection is gone; the next one starts on a clean queue page.
          receiver.close();
          await peer.run(`fill 0 ${POOL_PAGE} 0`);
          receiver = receiverOn(peer);
          consumed = 0;
          next = 0;
        }
      }
      assert.ok(proto > 0, 'corruption was never detected');
      assert.ok(views > 0, 'no valid descriptor got through');
      receiver.close();
      this.test.title += ` (${proto} EPROTO, ${views} views)`;
    });
  });

  describe('forged completions (the peer receives)', function () {
    const C = COMPLETION_QUEUE_OFFSET;
    async function sentTwo() {
      const sender = senderOn(peer);
      const a = sender.allocBuffer(100);
      const b = sender.allocBuffer(5000);
      assert.equal(sender.send(a, 0), true);
      assert.equal(sender.send(b, 0), true);
      return { peer, sender };
    }
    const cases = [
      ['an extent never sent', [[8 * POOL_PAGE, 100]], /never sent/],
      ['an extent returned twice', [[0, 100], [0, 100]], /never sent|not in flight/],
      ['the wrong length', [[POOL_PAGE, 4999]], /wrong length/],
      ['an extent outside the pool', [[POOL_BYTES, 1]], /outside the pool/],
      ['a zero length', [[0, 0]], /outside the pool/],
    ];
    for (const [name, entries, message] of cases) {
      it(`${name} -> EPROTO`, async function () {
        const { peer, sender } = await sentTwo();
        await peer.run(...entries.flatMap((e, i) => peer.publish(C, COMPLETION_WORDS, i, e)));
        assert.throws(() => sender.reclaim(), { code: 'EPROTO', message });
        sender.close();
        });
    }

    it('honest completions free the extents for reuse', async function () {
      const { peer, sender } = await sentTwo();
      assert.equal(sender.inFlight, 2);
      await peer.run(...peer.publish(C, COMPLETION_WORDS, 0, [POOL_PAGE, 5000]), ...peer.publish(C, COMPLETION_WORDS, 1, [0, 100]));
      assert.equal(sender.reclaim(), 2);
      assert.equal(sender.inFlight, 0);
      assert.equal(sender.stats.inUse, 0);
      sender.close();
    });

    it('a rewound consumer index on the descriptor queue -> EPROTO on the next send', async function () {
      const { peer, sender } = await sentTwo();
      await peer.run(`w32 ${DESCRIPTOR_QUEUE_OFFSET + 64} ${2 ** 32 - 500}`);
      assert.throws(() => sender.send(sender.allocBuffer(10), 0), { code: 'EPROTO', message: /indices/ });
      sender.close();
    });
  });
});
