'use strict';
// When an ordinary Buffer of the copy threshold or more is copied into the
// pool rather than written through the ring (lib/pool/pool_sender.ts
// send()). Pages never written (`mayFault`): A fresh memfd page costs a page fault of several µs
// at its first write, ~1 ms per MiB on this host, more than the ring takes
// to carry the MiB: on a connection that has carried little, an ordinary
// Buffer of 256 KiB or more is copied into the pool only where its pages
// were written before (a loan or a payload of this region), else it takes
// the ring. A reader that copies payloads out (`onread`): the ring, always.
// Between real processes, every byte checked by the peer.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const xenring = require('../..');
const { forkPeer } = require('./peer_process');
const { writePlan } = require('./plan');
const { withGatesOpen } = require('./gates');

const MIB = 1 << 20;
const tick = (ms) => new Promise((r) => setTimeout(r, ms));

/** A forked xenring server that checks the pattern stream and reports at 'end' (socket_peer.js). */
async function connectToPeer(receive, options = {}) {
  const p = forkPeer('socket_peer.js', { receive });
  const { port } = await p.next('ready');
  const s = xenring.connect({ port, ...options });
  await once(s, 'connect');
  return { p, s };
}

/** Ends `s` and returns the peer's report (every byte checked). */
async function finish(p, s, bytes) {
  s.end();
  const r = await p.next('received');
  assert.ok(r.ok, `the peer saw a bad byte at ${r.badOffset}`);
  assert.equal(r.bytes, bytes);
  await once(s, 'close');
  await p.exited;
  return r;
}

/** Until the peer's completions have returned every extent we sent. */
async function allReturned(s) {
  for (let i = 0; i < 500 && s.poolStats().inUse > 0; i++) await tick(4);
  assert.equal(s.poolStats().inUse, 0, 'an extent never came back');
}

describe('pool: ordinary Buffers and pages never written', function () {
  this.timeout(60000);

  it('a new connection sends ordinary 1 MiB Buffers through the ring, not into fresh pool pages', async () => {
    const { p, s } = await connectToPeer('drop');
    const pos = await writePlan(s, [[MIB, 'buf'], [MIB, 'buf'], [MIB, 'buf'], [MIB, 'buf']]);
    assert.equal(s.poolStats().sentByRef, 0, 'an ordinary Buffer went into fresh pool pages');
    await finish(p, s, pos);
  });

  it('pages a loan wrote take the next ordinary Buffer by reference; past them, the ring', async () => {
    // A releasing reader: the loan's pages come back, and the MiB lands on them.
    let { p, s } = await connectToPeer('release');
    let pos = await writePlan(s, [[MIB, 'alloc']]);
    assert.equal(s.poolStats().sentByRef, 1, 'the loan went by reference');
    await allReturned(s);
    pos = await writePlan(s, [[MIB, 'buf']], pos);
    assert.equal(s.poolStats().sentByRef, 2, 'the MiB did not go into the pages the loan wrote');
    await finish(p, s, pos);

    // A reader that holds its views: the loan's pages stay lent, the next MiB would need fresh ones.
    ({ p, s } = await connectToPeer('hold'));
    pos = await writePlan(s, [[MIB, 'alloc'], [MIB, 'buf']]);
    assert.equal(s.poolStats().sentByRef, 1, 'the MiB went into fresh pool pages');
    assert.equal(s.poolStats().inUse, MIB, 'the extent the MiB was refused is still taken');
    await finish(p, s, pos);
  });

  it('once the ring has been written through 4 times, ordinary Buffers go into fresh pool pages too', async () => {
    // A 64 KiB ring: 256 KiB of smaller writes (under the copy threshold) open the gate.
    const { p, s } = await connectToPeer('release', { ringSize: 64 * 1024 });
    let pos = await writePlan(s, [[70001, 'buf'], [70001, 'buf'], [70001, 'buf'], [70001, 'buf']]);
    assert.equal(s.poolStats().sentByRef, 0);
    pos = await writePlan(s, [[MIB, 'buf']], pos);
    assert.equal(s.poolStats().sentByRef, 1, 'the MiB still took the ring');
    await finish(p, s, pos);
  });

  it('an onread reader: after its first payload says it copies, ordinary Buffers take the ring', () => withGatesOpen(async () => {
    // Gates open: pages never written would not stop the copies; only the reader's word does.
    const srv = xenring.createServer();
    srv.listen({ port: 0 });
    await once(srv, 'listening');
    const p = forkPeer('socket_peer.js', { role: 'client', port: srv.address().port, receive: 'onread', onreadSize: 256 * 1024 });
    const [s] = await once(srv, 'connection');
    let pos = await writePlan(s, [[MIB, 'buf']]);
    assert.equal(s.poolStats().sentByRef, 1, 'before the reader said anything, the MiB goes by reference');
    await allReturned(s); // copied out into its buffer: it has said so by now
    pos = await writePlan(s, Array.from({ length: 7 }, () => [MIB, 'buf']), pos);
    assert.equal(s.poolStats().sentByRef, 1, 'an ordinary Buffer went into the pool for a reader that copies');
    s.end();
    const r = await p.next('received');
    assert.ok(r.ok, `the peer saw a bad byte at ${r.badOffset}`);
    assert.equal(r.bytes, pos);
    await p.exited;
    srv.close();
  }));
});
