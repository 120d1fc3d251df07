'use strict';
// Two real processes: this one writes a stream that mixes ring bytes and pool
// payloads, a forked child reads it back through the ring and the pool's
// views and checks every byte; extents return through the completion queue
// (explicit release, garbage collection, close) and are reused.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { slice } = require('../helpers/pattern');
const { children } = require('../helpers/fixtures');
const { createShared, attachRing, attachPool, MixedWriter, pump } = require('./pair');

/** Forks child.js with the shared fds as its fds 4 and 5; next(event) awaits a report. */
function forkReader(shared, opts) {
  const child = fork(path.join(__dirname, 'child.js'), [JSON.stringify({ ...shared, ...opts })], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', shared.ringFd, shared.poolFd],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const inbox = [];
  let wake = null;
  const reader = { stopped: false };
  child.on('message', (m) => {
    inbox.push(m);
    reader.stopped = true; // it reports only once it stopped reading
    if (wake) wake();
  });
  const exited = once(child, 'exit');
  exited.then(() => (reader.stopped = true));
  return Object.assign(reader, {
    child,
    exited,
    async next(event) {
      for (;;) {
        const i = inbox.findIndex((m) => m.event === event || m.event === 'error');
        if (i >= 0) {
          const m = inbox.splice(i, 1)[0];
          if (m.event === 'error') throw Object.assign(new Error(`reader: ${m.message}`), { code: m.code });
          return m;
        }
        await Promise.race([new Promise((r) => (wake = r)), exited.then(() => Promise.reject(new Error(`reader exited before '${event}'`)))]);
      }
    },
  });
}

/**
 * Writes `plan` ([size, 'pool'|'ring'|'copy'] ...) as one pattern stream;
 * resolves with the writer, or early when the reader stopped (a bad byte).
 * `waitForPoolMs`: a 'pool' message that finds the pool full waits up to that
 * long for the reader to return pages (a busy host may hold a reader's GC
 * back) before it goes as an ordinary Buffer; 0: at once.
 */
async function writePlan(ep, sender, plan, reader, waitForPoolMs = 0) {
  const writer = new MixedWriter(ep, sender);
  let pos = 0;
  let i = 0;
  let fullSince = -1;
  await pump(
    () => {
      // Queue a few messages at a time so the pool can fill and drain.
      while (i < plan.length && writer.queue.length < 4) {
        const [size, how] = plan[i];
        let buf = how === 'pool' ? sender.allocBuffer(size) : null;
        if (buf === null && how === 'pool' && waitForPoolMs > 0) {
          if (fullSince < 0) fullSince = performance.now();
          if (performance.now() - fullSince < waitForPoolMs) break; // again at the next step
        }
        fullSince = -1;
        i++;
        if (buf === null) buf = Buffer.allocUnsafe(size);
        buf.set(slice(pos, size));
        pos += size;
        writer.write(buf, how !== 'ring');
      }
      const before = writer.ringPos + writer.byRef;
      writer.flush();
      return writer.ringPos + writer.byRef !== before || sender.reclaim() > 0;
    },
    () => (i === plan.length && writer.queue.length === 0) || reader.stopped,
  );
  return { writer, total: pos };
}

function closeAll(shared, parts) {
  for (const p of parts) p.close();
  fs.closeSync(shared.ringFd);
  fs.closeSync(shared.poolFd);
}

describe('pool: two processes, one ordered stream', function () {
  this.timeout(60000);

  // Small ring bytes between large payloads, payloads back to back, payloads
  // larger than the ring, and more payload bytes than the pool holds (reuse).
  const plan = [];
  for (let r = 0; r < 6; r++) {
    plan.push([100 + r, 'ring'], [300000, 'pool'], [1 << 20, 'pool'], [17, 'ring'], [70000, 'pool'], [200000, 'ring'], [4096, 'pool']);
  }
  const total = plan.reduce((s, [n]) => s + n, 0);

  for (const release of ['explicit', 'gc']) {
    it(`every byte arrives in order; extents come back (${release} release) and are reused`, async function () {
      const shared = createShared({ order: 16, poolBytes: 2 << 20 });
      const { mapping, ep } = attachRing(shared.ringFd, shared, 'server');
      const sender = attachPool(shared.poolFd, shared, 'sender');
      const reader = forkReader(shared, { total, release });
      // The pool is reused only as fast as the reader returns pages: wait for them (up to 2 s a message).
      const { writer, total: written } = await writePlan(ep, sender, plan, reader, 2000);
      const done = await reader.next('done');
      assert.equal(done.ok, true, `first bad byte at ${done.badOffset}`);
      assert.equal(written, total);
      assert.equal(done.received, total);
      // 24 payloads of 1.6 MiB per round through a 2 MiB pool: only reuse makes this possible.
      assert.ok(sender.stats.sentByRef >= 12, `sent by reference: ${sender.stats.sentByRef}`);
      assert.equal(done.stats.receivedByRef, sender.stats.sentByRef);
      assert.equal(writer.byRef, sender.stats.sentByRef);
      if (release === 'explicit') assert.equal(done.stats.released, done.stats.receivedByRef);
      else assert.ok(done.stats.releasedByGC > 0, 'no view was returned by the collector');
      assert.ok(sender.stats.bytesSentByRef > 2 * shared.poolBytes, 'the pool was not reused');
      await reader.exited;
      // Everything the child returned is back: nothing stays in flight.
      sender.reclaim();
      if (release === 'explicit') assert.equal(sender.inFlight, 0);
      closeAll(shared, [sender, ep]);
      mapping.unmap();
    });
  }

  it('private copies (the default where views are not trusted) return every extent at once', async function () {
    const shared = createShared({ order: 16, poolBytes: 2 << 20 });
    const { mapping, ep } = attachRing(shared.ringFd, shared, 'server');
    const sender = attachPool(shared.poolFd, shared, 'sender');
    const reader = forkReader(shared, { total, release: 'none', views: false });
    await writePlan(ep, sender, plan, reader);
    const done = await reader.next('done');
    assert.equal(done.ok, true, `first bad byte at ${done.badOffset}`);
    assert.equal(done.received, total);
    assert.equal(done.stats.receivedByRef, sender.stats.sentByRef);
    assert.equal(done.stats.held, 0, 'a copy left its extent held');
    await reader.exited;
    sender.reclaim();
    assert.equal(sender.inFlight, 0);
    closeAll(shared, [sender, ep]);
    mapping.unmap();
  });

  it('a full pool falls back to the ring without a stall; ordinary Buffers above the threshold are copied in', async function () {
    const shared = createShared({ order: 14, poolBytes: 64 << 10 });
    const { mapping, ep } = attachRing(shared.ringFd, shared, 'server');
    const sender = attachPool(shared.poolFd, shared, 'sender', { copyThreshold: 8192 });
    const small = [];
    for (let r = 0; r < 20; r++) small.push([40000, 'pool'], [9000, 'copy'], [3, 'ring'], [50000, 'copy']);
    const sum = small.reduce((s, [n]) => s + n, 0);
    const reader = forkReader(shared, { total: sum, release: 'hold' });
    await writePlan(ep, sender, small, reader);
    const done = await reader.next('done');
    assert.equal(done.ok, true, `first bad byte at ${done.badOffset}`);
    assert.equal(done.received, sum);
    // The reader holds every view, so the 64 KiB pool fills and stays full.
    assert.ok(sender.stats.fallbacks > 0, 'the pool never filled');
    assert.ok(done.stats.receivedByRef >= 2, 'nothing went by reference');
    reader.child.send('closed');
    await reader.next('afterClose');
    closeAll(shared, [sender, ep]);
    mapping.unmap();
  });

  it('views stay readable after both sides closed the pool; the mapping goes with the last view', async function () {
    const shared = createShared({ order: 16, poolBytes: 8 << 20 });
    const { mapping, ep } = attachRing(shared.ringFd, shared, 'server');
    const sender = attachPool(shared.poolFd, shared, 'sender');
    const few = [[10, 'ring'], [1 << 20, 'pool'], [5, 'ring'], [3 << 20, 'pool'], [1, 'ring']];
    const sum = few.reduce((s, [n]) => s + n, 0);
    const reader = forkReader(shared, { total: sum, release: 'hold' });
    await writePlan(ep, sender, few, reader);
    const done = await reader.next('done');
    assert.equal(done.ok, true);
    assert.equal(done.stats.receivedByRef, 2);
    // Both fds and our mapping go: only the reader's views keep the pages now.
    closeAll(shared, [sender, ep]);
    mapping.unmap();
    reader.child.send('closed');
    const after = await reader.next('afterClose');
    assert.equal(after.recheck, true, 'a held view changed or became unreadable after close');
    assert.equal(after.aliveHolding, 1, 'the reader unmapped the pool while views were held');
    assert.equal(after.aliveAfter, 0, 'the reader kept the pool mapped after its last view was collected');
    assert.equal(after.stats.releasedAtClose, 2);
    await reader.exited;
  });
});
