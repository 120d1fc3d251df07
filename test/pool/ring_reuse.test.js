'use strict';
// Recycling a server's ring for the next connection from the same client
// process (lib/transports/local_recycle.ts), between real processes. The
// client (reuse_client.js) reports the inode of the ring memfd it mapped for
// each connection (the server's memfd). Every byte goes through the ring
// (pool: false) in the i % 251 pattern, checked both ways, more than one
// pass of the ring each way.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const xenring = require('../..');

const recycle = require('../../dist/transports/local_recycle');
const { PatternChecker } = require('../helpers/pattern');
const { settled, compare } = require('../load/resources');
const { withoutKeptLinks } = require('../helpers/fixtures');
const { forkPeer } = require('./peer_process');
const { writePlan } = require('./plan');

const K = 1024;
// 285 KiB each way in ring writes of every size: 4+ passes of a 64 KiB ring, 2+ of 128 KiB.
const PLAN = [[11, 'buf'], [70001, 'buf'], [5, 'buf'], [150001, 'buf'], [65536, 'buf'], [3, 'buf'], [6007, 'buf']];
const PLAN_BYTES = PLAN.reduce((n, [size]) => n + size, 0);

/** A server that checks each client's stream and answers with PLAN once the client ended (half-open: the ring fills, so the reply waits for 'drain'). */
async function server() {
  const results = [];
  const srv = xenring.createServer({ allowHalfOpen: true }, (s) => {
    const checker = new PatternChecker();
    s.on('data', (d) => checker.update(d));
    s.on('end', () => {
      results.push({ ok: checker.ok, bytes: checker.received });
      writePlan(s, PLAN).then(() => s.end(), () => {});
    });
    s.on('error', () => {});
  });
  srv.listen({ port: 0 });
  await once(srv, 'listening');
  return { srv, port: srv.address().port, results };
}

/** `rounds` connections from one new process; each round's ring inode, every byte checked both ways. */
async function runClient(port, rounds, ringSizes, results) {
  const p = forkPeer('reuse_client.js', { port, rounds, plan: PLAN, ringSizes, pool: false });
  const rings = [];
  const caches = []; // the client's ring mapping cache at each connect
  for (let i = 0; i < rounds; i++) {
    const r = await p.next('round');
    assert.equal(r.sentBytes, PLAN_BYTES);
    assert.ok(r.ok, `the client saw a bad byte in round ${i}`);
    assert.equal(r.bytes, PLAN_BYTES);
    assert.equal(r.ringInodes.length, 1, `rings mapped in round ${i}: ${r.ringInodes}`);
    rings.push(r.ringInodes[0]);
    caches.push(r.ringCache);
  }
  await p.next('done');
  await p.exited;
  for (const r of results) {
    assert.ok(r.ok, 'the server saw a bad byte');
    assert.equal(r.bytes, PLAN_BYTES);
  }
  return Object.defineProperty(rings, 'caches', { value: caches }); // not enumerable: the rings still compare as an array
}

async function drained() {
  for (let i = 0; i < 400 && recycle.keptConnections() > 0; i++) await new Promise((r) => setTimeout(r, 10));
}

describe('ring: a server ring recycled for the same client process', function () {
  // About connections made afresh: a reconnect would take its kept link.
  withoutKeptLinks();

  this.timeout(60000);
  beforeEach(drained); // connections kept by an earlier test are not this one's

  it('reconnects get the same ring per ring size, another process a fresh one; every byte checked; nothing left after expiry', async () => {
    const before = await settled();
    const { srv, port, results } = await server();
    // 64 KiB and 128 KiB rings, in turn: one kept ring of each size (2 per process).
    const sizes = [64 * K, 64 * K, 128 * K, 64 * K, 128 * K, 128 * K, 64 * K];
    const a = await runClient(port, sizes.length, sizes, results);
    const small = a[0];
    const large = a[2];
    assert.notEqual(small, large, 'a different ring size got the same ring');
    assert.deepEqual(a, [small, small, large, small, large, large, small], `rings by round: ${a}`);
    // The client keeps its mapping of a ring the server handed it before
    // (local_ring_cache.ts): from each ring's third connection on, it is
    // not mapped again.
    assert.deepEqual(a.caches.map((c) => c.reused), [0, 0, 0, 1, 1, 2, 3]);
    // Another process (same uid) while the first's rings are kept: fresh rings, then its own again.
    assert.equal(recycle.keptConnections(), 2);
    const b = await runClient(port, 2, [64 * K], results);
    assert.ok(!a.includes(b[0]), `process 2 got process 1's ring: ${b} vs ${a}`);
    assert.equal(b[1], b[0], "process 2 reuses its own ring");
    srv.close();
    // Kept rings go after RECYCLE_IDLE_MS unused: fds, memfds and mappings as before.
    const after = await settled();
    assert.equal(recycle.keptConnections(), 0);
    const cmp = compare(before, after);
    assert.ok(cmp.ok, cmp.text);
  });

  it('a client that connects again before its last connection closed on its side gets that ring once it has', async () => {
    // A reconnect right after end() (a pool, a client library's reconnect)
    // reaches the server before the client has read the server's end of the
    // old connection: its ring is kept, not freed, for a later connection.
    const keptAtConnection = [];
    const srv = xenring.createServer((s) => {
      keptAtConnection.push(recycle.keptConnections());
      s.resume();
      s.on('error', () => {});
    });
    srv.listen({ port: 0 });
    await once(srv, 'listening');
    const p = forkPeer('overlap_client.js', { port: srv.address().port });
    const a = await p.next('a');
    assert.ok(a.ring !== null, `rings mapped for A: ${a.mapped}`);
    // The server has closed A (A's end read, its own sent) and kept its ring.
    for (let i = 0; i < 500 && recycle.keptConnections() < 1; i++) await new Promise((r) => setTimeout(r, 4));
    assert.equal(recycle.keptConnections(), 1, 'A was not kept');
    p.child.send('go');
    const b = await p.next('b');
    assert.equal(b.aClosed, false, 'A closed on the client before B connected: this case tests nothing');
    assert.ok(b.ring !== null && b.ring !== a.ring, `B got ${b.ring} (A had ${a.ring}) while A was still open on the client`);
    assert.equal(keptAtConnection[1], 1, "A's kept ring was freed when B found A still open");
    await p.next('a-closed');
    p.child.send('go');
    const c = await p.next('c');
    assert.equal(c.ring, a.ring, "C did not get A's ring");
    await p.next('done');
    await p.exited;
    srv.close();
    await drained();
    assert.equal(recycle.keptConnections(), 0);
  });

  it('XENRING_RECYCLE=0: a fresh ring for every connection', async () => {
    process.env.XENRING_RECYCLE = '0';
    try {
      const { srv, port, results } = await server();
      const a = await runClient(port, 3, [64 * K], results);
      assert.equal(new Set(a).size, 3, `rings: ${a}`);
      assert.deepEqual(a.caches.map((c) => c.reused + c.keys.length), [0, 0, 0], 'the client kept a ring mapping');
      assert.equal(recycle.keptConnections(), 0);
      srv.close();
    } finally {
      delete process.env.XENRING_RECYCLE;
    }
  });
});
