'use strict';
// The pool's bookkeeping on its own: allocator, in-flight table, receive table,
// option parsing. The same code runs against a real peer in transfer.test.js.
const assert = require('node:assert/strict');
const { ExtentAllocator, SendTable, ReceiveTable, parsePoolOptions, connectionPoolStats, emptyPoolStats, POOL_PAGE, QUEUE_SLOTS } = require('../../dist/pool');

describe('pool: extent allocator', function () {
  it('serves first fit from the lowest page, coalesces on release, and returns null when full', function () {
    const a = new ExtentAllocator(10);
    assert.equal(a.alloc(3), 0);
    assert.equal(a.alloc(3), 3);
    assert.equal(a.alloc(3), 6);
    assert.equal(a.alloc(2), null, 'only one page left');
    assert.equal(a.alloc(1), 9);
    assert.equal(a.freePages, 0);
    a.release(3, 3);
    assert.equal(a.alloc(4), null, 'a 3-page hole does not serve 4');
    a.release(0, 3); // joins the next run
    a.release(9, 1);
    a.release(6, 3); // joins both neighbours: one run again
    assert.equal(a.freePages, 10);
    assert.equal(a.alloc(10), 0);
  });

  it('refuses to free a run that is free or outside the pool', function () {
    const a = new ExtentAllocator(8);
    a.alloc(4);
    assert.throws(() => a.release(4, 1), /already free/);
    assert.throws(() => a.release(2, 4), /already free/);
    assert.throws(() => a.release(7, 2), /outside/);
    assert.throws(() => a.release(-1, 1), /outside/);
    a.release(0, 4);
    assert.throws(() => a.release(0, 1), /already free/);
  });

  it('keeps its accounting under random use (checked against a page map)', function () {
    const pages = 256;
    const a = new ExtentAllocator(pages);
    const owner = new Int32Array(pages).fill(-1);
    const live = [];
    let seed = 7;
    const rand = (n) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let i = 0; i < 5000; i++) {
      if (live.length > 0 && rand(2) === 0) {
        const [start, count] = live.splice(rand(live.length), 1)[0];
        owner.fill(-1, start, start + count);
        a.release(start, count);
      } else {
        const count = 1 + rand(20);
        const start = a.alloc(count);
        if (start === null) continue;
        for (let p = start; p < start + count; p++) assert.equal(owner[p], -1, `page ${p} handed out twice`);
        owner.fill(i, start, start + count);
        live.push([start, count]);
      }
      assert.equal(a.freePages, owner.filter((o) => o < 0).length);
    }
  });
});

describe('pool: in-flight table (sender)', function () {
  it('loan -> send -> complete frees the extent for reuse', function () {
    const t = new SendTable(4 * POOL_PAGE, QUEUE_SLOTS);
    const l = t.loan(POOL_PAGE + 1);
    assert.deepEqual([l.offset, l.bytes, l.state], [0, 2 * POOL_PAGE, 'loaned']);
    assert.equal(t.loan(3 * POOL_PAGE), null, 'pool full: null, never a wait');
    t.send(l, 5000);
    assert.equal(t.inFlight, 1);
    assert.equal(t.inUse, 2 * POOL_PAGE);
    t.complete(0, 5000);
    assert.equal(t.inFlight, 0);
    assert.equal(t.inUse, 0);
    assert.equal(t.loan(4 * POOL_PAGE).offset, 0);
  });

  it('trim() gives an unsent loan\'s empty tail back at once (a part-full run holds only its pages)', function () {
    const t = new SendTable(8 * POOL_PAGE, QUEUE_SLOTS);
    const run = t.loan(8 * POOL_PAGE);
    assert.equal(t.loan(1), null, 'the run holds the whole pool');
    t.trim(run, POOL_PAGE + 1);
    assert.deepEqual([run.offset, run.bytes, t.inUse], [0, 2 * POOL_PAGE, 2 * POOL_PAGE]);
    const next = t.loan(6 * POOL_PAGE);
    assert.equal(next.offset, 2 * POOL_PAGE, 'the tail is free for the next loan');
    t.send(run, POOL_PAGE + 1);
    assert.throws(() => t.trim(run, 1), /not loaned/);
    assert.throws(() => t.trim(next, 6 * POOL_PAGE + 1), RangeError);
    t.trim(next, 6 * POOL_PAGE); // whole pages already: nothing to give back
    assert.equal(next.bytes, 6 * POOL_PAGE);
    t.complete(0, POOL_PAGE + 1);
    assert.equal(t.inUse, 6 * POOL_PAGE);
    t.discard(next);
    assert.equal(t.inUse, 0);
    assert.equal(t.loan(8 * POOL_PAGE).offset, 0, 'every page back, coalesced');
  });

  it('completions that do not name an extent in flight are EPROTO', function () {
    const t = new SendTable(8 * POOL_PAGE, QUEUE_SLOTS);
    const a = t.loan(100);
    const b = t.loan(100);
    t.send(a, 100);
    assert.throws(() => t.complete(5 * POOL_PAGE, 100), { code: 'EPROTO', message: /never sent/ });
    assert.throws(() => t.complete(b.offset, 100), { code: 'EPROTO', message: /not in flight/ }, 'loaned, not sent');
    assert.throws(() => t.complete(a.offset, 99), { code: 'EPROTO', message: /wrong length/ });
    t.complete(a.offset, 100);
    assert.throws(() => t.complete(a.offset, 100), { code: 'EPROTO' }, 'returned twice');
  });

  it('bounds extents in flight by the queue slots; discard and closeAll return loans', function () {
    const t = new SendTable(8 * POOL_PAGE, 2);
    const [a, b, c] = [t.loan(1), t.loan(1), t.loan(1)];
    t.send(a, 1);
    t.send(b, 1);
    assert.equal(t.canSend(), false);
    assert.throws(() => t.send(c, 1), /in flight/);
    t.discard(c);
    t.discard(a); // sent: not discardable
    assert.equal(t.inUse, 2 * POOL_PAGE);
    t.closeAll();
    assert.equal(t.inUse, 0);
    assert.equal(t.inFlight, 0);
  });
});

describe('pool: receive table', function () {
  const P = POOL_PAGE;
  it('delivers announced extents in order and frees their pages on release', function () {
    const t = new ReceiveTable(8 * P, QUEUE_SLOTS);
    t.accept(0, 0, 10, 0, 0);
    t.accept(100, P, 2 * P, 0, 0);
    assert.equal(t.nextPosition(), 0);
    const a = t.deliver();
    assert.equal(t.nextPosition(), 100);
    const b = t.deliver();
    assert.equal(t.nextPosition(), -1);
    assert.equal(t.heldBytes, 10 + 2 * P);
    t.release(a);
    assert.equal(t.holds(a), false);
    t.accept(100, 0, P, 100, 1); // page 0 is free again
    assert.throws(() => t.release(a), /not held/);
    assert.equal(t.releaseAll(), 1);
    assert.equal(t.holds(b), false);
  });

  it('every bad descriptor is EPROTO', function () {
    const t = new ReceiveTable(8 * P, 4);
    t.accept(50, 2 * P, P + 1, 0, 0); // pages 2 and 3
    const bad = [
      [[60, 8 * P, 1, 0, 0], /outside/],
      [[60, 7 * P, P + 1, 0, 0], /outside/],
      [[60, 100, 1, 0, 0], /outside/], // not page-aligned
      [[60, 0, 0, 0, 0], /outside/],
      [[60, 3 * P, 1, 0, 0], /overlaps/],
      [[60, P, P + 1, 0, 0], /overlaps/],
      [[40, 5 * P, 1, 0, 0], /backwards/],
      [[60, 5 * P, 1, 70, 0], /backwards/], // behind ring bytes already read
      [[60, 5 * P, 1, 0, 3], /in flight/], // 1 pending + 3 unreturned >= 4
    ];
    for (const [args, message] of bad) assert.throws(() => t.accept(...args), { code: 'EPROTO', message }, String(args));
    t.accept(60, 5 * P, 1, 0, 0);
  });
});

describe('pool: options', function () {
  it('parses pool: { size, views } like net validates its options', function () {
    assert.deepEqual(parsePoolOptions(undefined, 1 << 20), { size: 1 << 20, views: undefined });
    assert.deepEqual(parsePoolOptions(false, 1 << 20), { size: 0, views: undefined });
    assert.deepEqual(parsePoolOptions({ size: 256 << 20, views: true }, 0), { size: 256 << 20, views: true });
    assert.throws(() => parsePoolOptions(7, 0), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => parsePoolOptions({ size: '1' }, 0), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => parsePoolOptions({ size: 5000 }, 0), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => parsePoolOptions({ size: -4096 }, 0), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => parsePoolOptions({ size: 2 ** 31 }, 0), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => parsePoolOptions({ views: 1 }, 0), { code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('pool: stats', function () {
  it('poolStats() takes sending counters from the sender and receiving ones from the receiver', function () {
    const sent = { ...emptyPoolStats(1 << 20), inUse: 8192, sentByRef: 3, bytesSentByRef: 300, fallbacks: 2, returned: 1, held: 99, receivedByRef: 99 };
    const received = { ...emptyPoolStats(1 << 20), held: 4096, receivedByRef: 5, bytesReceivedByRef: 500, released: 1, releasedByGC: 2, releasedAtClose: 1, inUse: 77 };
    assert.deepEqual(connectionPoolStats(sent, received), {
      size: 1 << 20,
      inUse: 8192,
      held: 4096,
      sentByRef: 3,
      receivedByRef: 5,
      bytesSentByRef: 300,
      bytesReceivedByRef: 500,
      fallbacks: 2,
      released: 1,
      releasedByGC: 2,
      releasedAtClose: 1,
      returned: 1,
    });
    assert.deepEqual(connectionPoolStats(null, null), emptyPoolStats(0));
  });
});
