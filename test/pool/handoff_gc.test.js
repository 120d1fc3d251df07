'use strict';
// The hand-off of large allocBuffer() messages must cost V8 nothing that
// grows with them: a 16 MiB loan sent by reference and a 16 MiB view
// released by its reader are detached at once (they read as empty), so V8
// drops them then, not at a GC. Before, each was dropped for a GC to find:
// V8 lowered its external-memory count as it swept them and reset its limit
// to that low, the views' finalizers then gave their lengths back (they are
// kept off the count while alive) and crossed the limit, and a long hand-off
// loop ran a major GC every ~30 messages in each process: here 1000 messages,
// answered on arrival, must start (almost) none in either process. Counts, not times.
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { PerformanceObserver, constants } = require('node:perf_hooks');
const xenring = require('../..');

const MiB = 1 << 20;
const SIZE = 16 * MiB;

describe('pool: 16 MiB hand-offs start no major GC', function () {
  this.timeout(120000);

  it('1000 allocBuffer messages answered on arrival: no major GC in either process, loans and released views detached, all by reference', async () => {
    const child = fork(path.join(__dirname, 'handoff_peer.js'), [String(SIZE)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let sock = null;
    let majors = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      const [ready] = await once(child, 'message');
      sock = xenring.connect({ port: ready.port, transport: 'local', pool: { size: 64 * MiB } });
      await once(sock, 'connect');
      let acks = 0;
      let wake = null;
      sock.on('data', (d) => {
        acks += d.length;
        if (wake) wake();
      });
      const answered = (n) => new Promise((resolve) => (acks >= n ? resolve() : (wake = resolve)));
      const peerCount = async () => {
        child.send('count');
        for (;;) {
          const [m] = await once(child, 'message');
          if (m.event === 'counted') return m;
        }
      };
      let sentEmpty = 0;
      const run = async (from, n) => {
        for (let i = from; i < from + n; i++) {
          const buf = sock.allocBuffer(SIZE);
          buf[0] = i & 0xff;
          sock.write(buf);
          if (buf.length === 0) sentEmpty++;
          await answered(i + 1);
        }
      };
      // Start-up GCs (module loading, the first views) are not the hand-off's.
      await run(0, 20);
      await new Promise((r) => setImmediate(r));
      await peerCount();
      majors = 0;
      sentEmpty = 0;
      await run(20, 1000);
      await new Promise((r) => setImmediate(r));
      const peer = await peerCount();
      const stats = sock.poolStats();
      assert.equal(stats.sentByRef, 1020, 'every message went by reference');
      assert.equal(stats.fallbacks, 0);
      assert.equal(peer.msgs, 1020);
      assert.equal(sentEmpty, 1000, 'a loan sent by reference reads as empty (detached)');
      assert.equal(peer.releasedEmpty, 1020, 'a released view reads as empty (detached)');
      // Before: 1-77 in the sender, 16-42 in the receiver (three runs). Two are
      // allowed for what the rest of a test process may leave to collect.
      assert.ok(majors <= 2, `${majors} major GCs in the sender for 1000 hand-offs`);
      assert.ok(peer.majorGCs <= 2, `${peer.majorGCs} major GCs in the receiver for 1000 hand-offs`);
    } finally {
      obs.disconnect();
      if (sock) sock.destroy();
      child.kill();
    }
  });
});
