'use strict';
// Findings of the review of the page-reference path (issue 13), each as a
// test between real processes that failed before its fix.
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const xenring = require('../..');
const { QUEUE_SLOTS } = require('../../dist/pool/layout');
const { poolNative } = require('../../dist/pool/native_pool');
const { forkPeer } = require('./peer_process');
const { PatternChecker, slice } = require('../helpers/pattern');
const { writePlan } = require('./plan');

/** Forks review_peer.js; next(event) resolves with its next message of that kind. */
function peer(opts) {
  return forkPeer('review_peer.js', opts);
}

/** Resolves with the socket's error (null if it closed without one). */
function outcome(s) {
  return new Promise((resolve) => {
    let error = null;
    s.on('error', (err) => (error = err));
    s.once('close', () => resolve(error));
  });
}

describe('pool: review findings (real processes)', function () {
  this.timeout(60000);

  for (const kind of ['buf', 'alloc']) {
    // Positive control ('buf', no pool: unread ring bytes) and the finding
    // ('alloc': unread pool payloads, which the ring check did not see).
    it(`a receiver that closes with ${kind === 'alloc' ? 'pool payloads' : 'ring bytes'} unread resets the writer (ECONNRESET), as TCP does`, async () => {
      const p = peer({ mode: 'unread' });
      const { port } = await p.next('ready');
      const s = xenring.connect({ port, pool: kind === 'alloc' ? undefined : false });
      const result = outcome(s);
      await once(s, 'connect');
      await p.next('accepted');
      // Five writes the peer never reads (20 KB each: all fit in the ring too).
      await writePlan(s, Array.from({ length: 5 }, () => [20000, kind]));
      if (kind === 'alloc') assert.equal(s.poolStats().sentByRef, 5);
      await new Promise((r) => setTimeout(r, 50));
      p.child.send('destroy');
      const { stats } = await p.next('destroyed');
      if (kind === 'alloc') assert.ok(stats.receivedByRef < 5, `the peer took ${stats.receivedByRef} of 5 payloads`);
      const err = await result;
      assert.equal(err && err.code, 'ECONNRESET', `the writer saw ${err ? err.code : 'a clean close'}`);
      await p.exited;
    });
  }

  it("by-reference writes only: the sender's record of announced payloads stays bounded", async () => {
    const p = peer({ mode: 'release' });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port, pool: { size: 1 << 20 } });
    const result = outcome(s);
    await once(s, 'connect');
    const N = 2000;
    for (let i = 0; i < N; i += 100) {
      await writePlan(s, Array.from({ length: 100 }, () => [4096, 'alloc']));
      await new Promise((r) => setTimeout(r, 5)); // let the receiver give extents back
    }
    assert.ok(s.poolStats().sentByRef > N / 2, `sentByRef ${s.poolStats().sentByRef}`);
    // One entry per payload still in the descriptor queue, not one per payload ever sent.
    const sender = s.link.pool.sender;
    assert.ok(sender.st.announced.length <= 2 * QUEUE_SLOTS + 64, `announced kept ${sender.st.announced.length} entries after ${N} sends`);
    s.end();
    assert.equal(await result, null);
    await p.exited;
  });

  it('a peer that never takes a payload nor returns one: the writer falls back to the ring, never blocks; its death returns every loan', async () => {
    const regionsBefore = poolNative.poolRegionsAlive();
    let accepted;
    const got = new Promise((r) => (accepted = r));
    const srv = xenring.createServer((s) => accepted(s));
    srv.listen({ port: 0, ringSize: 1 << 20 }); // 300 x 8 KiB exceeds the pool plus this ring
    await once(srv, 'listening');
    // The Python peer (standard library) maps everything, goes live, then does nothing at all.
    const py = spawn('python3', [path.join(__dirname, 'hostile_peer.py'), 'client', JSON.stringify({ path: srv.address().address, poolSize: 1 << 20, scenario: 'none' })], { stdio: ['pipe', 'pipe', 'inherit'] });
    const [line] = await once(readline.createInterface({ input: py.stdout }), 'line');
    assert.equal(JSON.parse(line).toServer, 1 << 20);
    const s = await got;
    const result = outcome(s);
    // 300 loans of 8 KiB, written without waiting: the 1 MiB pool holds 128 of them at most.
    let ticked = false;
    setImmediate(() => (ticked = true));
    for (let i = 0; i < 300; i++) {
      const buf = s.allocBuffer(8192);
      assert.equal(buf.length, 8192);
      buf.fill(i & 0xff);
      s.write(buf);
    }
    assert.equal(ticked, false, 'all in one synchronous run');
    let st = s.poolStats();
    assert.ok(st.sentByRef >= 1 && st.sentByRef <= 128, `sentByRef ${st.sentByRef}`);
    assert.equal(st.sentByRef + st.fallbacks, 300);
    assert.equal(st.returned, 0);
    assert.ok(st.inUse <= 1 << 20, `inUse ${st.inUse}`);
    // The loop still runs (nothing waits for the peer).
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(s.writableLength > 0, 'the ring is full: later writes wait in the stream, not in a loop');
    py.kill('SIGKILL');
    const err = await result;
    assert.ok(err === null || ['ECONNRESET', 'EPIPE'].includes(err.code), `closed with ${err && err.code}`);
    st = s.poolStats();
    assert.equal(st.inUse, 0, 'every loan came back when the peer died');
    srv.close();
    // Nothing of the pool stays mapped once the written Buffers are collected.
    for (let i = 0; i < 50 && poolNative.poolRegionsAlive() > regionsBefore; i++) {
      global.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(poolNative.poolRegionsAlive() <= regionsBefore, `pool regions ${regionsBefore} -> ${poolNative.poolRegionsAlive()}`);
  });

  it('a runtime that refuses external buffers (Electron): no pool, allocBuffer() hands out ordinary Buffers, the connection lives, every byte arrives', async () => {
    let accepted;
    const got = new Promise((r) => (accepted = r));
    const srv = xenring.createServer((s) => accepted(s));
    srv.listen({ port: 0 });
    await once(srv, 'listening');
    const count = 20;
    const size = 10000;
    const p = peer({ mode: 'client-no-external', port: srv.address().port, count, size });
    const s = await got;
    const checker = new PatternChecker();
    s.on('data', (d) => checker.update(d));
    const result = outcome(s);
    await once(s, 'end');
    s.end();
    const wrote = await p.next('wrote');
    assert.equal(wrote.error, null, `the writer's connection failed with ${wrote.error}`);
    assert.equal(checker.received, count * size);
    assert.ok(checker.ok, `wrong byte at ${checker.badOffset}`);
    // Regions on demand need views of the control page's pool bytes: such a
    // runtime offers no pool, and allocBuffer() hands out ordinary Buffers.
    assert.equal(wrote.stats.size, 0, 'a pool offered by a runtime that refuses external buffers');
    assert.equal(wrote.stats.inUse, 0, 'no loan left behind');
    assert.equal(await result, null);
    await p.exited;
    srv.close();
  });

  it('a server in such a runtime, with a client that has a pool: payloads by reference arrive as copies, its allocBuffer() falls back, every byte arrives', async () => {
    const count = 8;
    const size = 300000; // by reference from a client with a pool
    const p = peer({ mode: 'server-no-external', count, size });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port });
    await once(s, 'connect');
    const checker = new PatternChecker();
    s.on('data', (d) => checker.update(d));
    const result = outcome(s);
    let pos = 0;
    for (let i = 0; i < count; i++) {
      const buf = s.allocBuffer(size);
      buf.set(slice(pos, size));
      pos += size;
      s.write(buf);
    }
    s.end();
    await once(s, 'end');
    const served = await p.next('served');
    assert.equal(await result, null);
    await p.exited;
    assert.equal(served.error, null, `the server's connection failed with ${served.error}`);
    assert.equal(served.received, count * size);
    assert.ok(served.ok, 'the server read a wrong byte');
    assert.equal(s.poolStats().sentByRef, count, 'the client sent by reference');
    assert.equal(served.stats.receivedByRef, count, 'received by reference (copied out: no views)');
    assert.equal(served.stats.fallbacks, count, 'each allocBuffer() the pool could not serve is a fallback');
    assert.equal(checker.received, count * size);
    assert.ok(checker.ok, `wrong byte at ${checker.badOffset}`);
  });
});
