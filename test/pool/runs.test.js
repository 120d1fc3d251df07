'use strict';
// Runs (lib/ring/writer.ts): ordinary writes that find unread bytes in the
// ring (the reader behind) are gathered into one pool extent and sent as one
// reference. Real processes
// (or two real sockets), every byte of an i % 251 stream checked: a run
// announced at the wrong stream position, or a write lost or doubled while
// gathered, breaks the pattern. A small ring fills at once, so runs happen.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const xenring = require('../..');
const { PatternChecker, slice } = require('../helpers/pattern');
const { closed, listenOnce } = require('../helpers/fixtures');
const { forkPeer } = require('./peer_process');
const { writePlan } = require('./plan');
const { localPair, runsFromTheStart } = require('./local_pair');

const KiB = 1024;
const MiB = 1 << 20;
const RING = 64 * KiB;

const planBytes = (plan) => plan.reduce((n, [size]) => n + size, 0);
/** Writes of `plan` that go by reference without runs: loans, and ordinary Buffers of at least 256 KiB. */
const byRefWithoutRuns = (plan) => plan.filter(([size, kind]) => kind === 'alloc' || size >= 256 * KiB).length;

/** Ordinary writes around the run threshold (16 KiB) and the ring size, with small writes, loans and a copy-in between. */
function runPlan(rounds) {
  const plan = [];
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < 8; k++) plan.push([16 * KiB + ((r * 8 + k) % 5) * 12345, 'buf']);
    plan.push([7 + r, 'buf'], [65536 + 3, 'buf'], [50001, 'alloc'], [3000, 'buf'], [300007, 'buf'], [20000, 'buf'], [1, 'buf']);
  }
  return plan;
}

/** A held pair (local_pair.js); arrived(n) waits for n bytes at the reader. */
async function heldPair() {
  const pair = await localPair({ hold: true });
  const arrived = async (n) => {
    const deadline = Date.now() + 10000;
    while (pair.checker.received < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(pair.checker.received, n, 'the writes never arrived');
  };
  return { ...pair, arrived };
}

/** The writer of a held pair sent one run, of `bytes`, and every byte arrived right; then both ends close. */
async function oneRunThenClose({ c, s, checker }, bytes) {
  assert.ok(checker.ok, `wrong byte at ${checker.badOffset}`);
  assert.equal(c.poolStats().sentByRef, 1, 'the write behind unread bytes went as a run');
  assert.equal(c.poolStats().bytesSentByRef, bytes);
  c.end();
  s.end();
  await Promise.all([closed(c), closed(s)]);
}

describe('pool: runs gather ordinary writes behind unread ring bytes into one reference', function () {
  this.timeout(60000);
  runsFromTheStart(); // these cases are about runs, not about when a connection starts them

  it('mixed writes, both directions, through a 64 KiB ring: every byte in order, runs sent by reference', async () => {
    const back = runPlan(6);
    const p = forkPeer('socket_peer.js', { receive: 'release', plan: back, allowHalfOpen: true });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port, ringSize: RING });
    // Listened for now: the socket may close before the peer's report comes.
    const sClosed = closed(s);
    await once(s, 'connect');
    const checker = new PatternChecker();
    s.on('data', (d) => {
      checker.update(d);
      s.release(d);
    });
    const ended = once(s, 'end');
    const plan = runPlan(8);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, planBytes(plan));
    assert.ok(r.ok, `server saw a wrong byte at ${r.badOffset}`);
    await ended;
    assert.equal(checker.received, planBytes(back));
    assert.ok(checker.ok, `client saw a wrong byte at ${checker.badOffset}`);
    const st = s.poolStats();
    // More references than loans and copy-ins: ordinary writes went as runs, both ways.
    assert.ok(st.sentByRef > byRefWithoutRuns(plan), `sentByRef ${st.sentByRef}, without runs ${byRefWithoutRuns(plan)}`);
    assert.ok(st.receivedByRef > byRefWithoutRuns(back), `receivedByRef ${st.receivedByRef}, without runs ${byRefWithoutRuns(back)}`);
    assert.equal(r.stats.receivedByRef, st.sentByRef);
    assert.ok(st.bytesSentByRef < planBytes(plan), 'some bytes went through the ring');
    await sClosed;
    await p.exited;
  });

  it('a run the writer leaves open is sent by the end of the loop turn (no later write, no end())', async () => {
    const { c, s, checker, arrived } = await heldPair();
    // Both ends in this process: the reader cannot read until this tick is
    // over, so the first write fills the ring and the second, behind it, opens a run.
    c.write(slice(0, RING));
    c.write(slice(RING, 20000));
    await arrived(RING + 20000);
    assert.ok(checker.ok, `wrong byte at ${checker.badOffset}`);
    assert.equal(c.poolStats().sentByRef, 1, 'the second write went as a run');
    assert.equal(c.poolStats().bytesSentByRef, 20000);
    // The run opened at 1 MiB; sent with 20000 bytes it holds only their 5 pages.
    assert.equal(c.poolStats().inUse, 5 * 4096, 'a part-full run gives its empty tail back when sent');
    c.end();
    s.end();
    await Promise.all([closed(c), closed(s)]);
  });

  it('a write to an empty ring goes into the ring; one behind unread bytes opens a run, with room left in the ring', async () => {
    const { c, s, checker, arrived } = await heldPair();
    // An idle connection: a request, however large, is not held back for a run.
    c.write(slice(0, 20000));
    await arrived(20000);
    assert.equal(c.poolStats().sentByRef, 0, 'a write to an empty ring went as a run');
    // Both ends in this process: the reader cannot read until this tick is
    // over, so the second write finds the first unread (the ring is far from
    // full: 40000 of 64 KiB) and opens a run.
    c.write(slice(20000, 20000));
    c.write(slice(40000, 20000));
    await arrived(60000);
    await oneRunThenClose({ c, s, checker }, 20000);
  });

  it('a 64 KiB stream to a slower \'data\' reader that drops its Buffers gets runs by reference, every byte checked (default ring and pool)', async () => {
    // The reader returns views only at its minor GCs (every ~32 MiB of young
    // buffers): the run window must outlast that, or the ring carries half.
    const p = forkPeer('socket_peer.js', { receive: 'drop' });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port });
    const sClosed = closed(s);
    await once(s, 'connect');
    const total = 256 * MiB;
    const plan = Array.from({ length: total / (64 * KiB) }, () => [64 * KiB, 'buf']);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, total);
    assert.ok(r.ok, `wrong byte at ${r.badOffset}`);
    const st = s.poolStats();
    // How much goes by reference depends on the two processes' relative
    // speed (measured on a quiet host: 70-80 %; 46 % when runs opened only
    // behind a full ring with a 16 MiB window), so that share is the bench's
    // to report, not a test's; the test before this one pins the behaviour.
    // Here: a reader that drops its Buffers still gets runs, all verified.
    assert.ok(st.bytesSentByRef > 0, `bytesSentByRef ${st.bytesSentByRef} of ${total}`);
    await sClosed;
    await p.exited;
  });

  it('an onread reader (it copies payloads anyway) gets runs only until it copies the first', async () => {
    const { server, port, accepted } = await listenOnce({ ringSize: RING });
    const p = forkPeer('socket_peer.js', { role: 'client', port, receive: 'onread', onreadSize: 20000 });
    const s = await accepted;
    // Listened for now: the peer's fin can close the socket before its report comes.
    const sClosed = closed(s);
    server.close();
    await p.next('connected');
    const plan = Array.from({ length: 1600 }, (_, i) => [32 * KiB + (i % 7), 'buf']);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, planBytes(plan));
    assert.ok(r.ok, `wrong byte at ${r.badOffset}`);
    // Runs opened before the reader had copied one may still go; then the ring carries the rest.
    const st = s.poolStats();
    assert.ok(st.bytesSentByRef < planBytes(plan) / 5, `bytesSentByRef ${st.bytesSentByRef} of ${planBytes(plan)}`);
    await sClosed;
    await p.exited;
  });

  it('a pool the reader keeps full: writes go through the ring, no stall, held views unchanged', async () => {
    // The reader holds every view: once half the pool is out in runs, runs cannot open.
    const p = forkPeer('socket_peer.js', { receive: 'hold', pool: { size: 16 * MiB } });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port, ringSize: RING, pool: { size: 16 * MiB } });
    const sClosed = closed(s); // listened for now, as above
    await once(s, 'connect');
    const plan = Array.from({ length: 1500 }, (_, i) => [32 * KiB + (i % 3), 'buf']);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, planBytes(plan));
    assert.ok(r.ok, `wrong byte at ${r.badOffset}`);
    assert.ok(r.heldViewsOk, 'views held by the reader changed');
    const st = s.poolStats();
    assert.ok(st.sentByRef >= 1, 'runs were sent');
    assert.ok(st.bytesSentByRef <= 16 * MiB, `bytesSentByRef ${st.bytesSentByRef}`);
    assert.ok(st.bytesSentByRef < planBytes(plan) / 2, 'most bytes went through the ring once the pool was full');
    await sClosed;
    await p.exited;
  });
});

describe('pool: a new connection starts its runs once its ring has been written through a few times', function () {
  this.timeout(30000);

  it('every write behind unread bytes goes through the ring (no pool page touched) until the ring has been written through COLD_RUNS_AFTER_RING_PASSES times (a fresh pool: no page written before); the first one after opens a run', async () => {
    // Runs on pages written before may open after RUNS_AFTER_RING_PASSES; a fresh pool has none.
    const { RUNS_AFTER_RING_PASSES, COLD_RUNS_AFTER_RING_PASSES } = require('../../dist/ring/writer');
    assert.ok(COLD_RUNS_AFTER_RING_PASSES > RUNS_AFTER_RING_PASSES);
    const gate = COLD_RUNS_AFTER_RING_PASSES * RING;
    const { c, s, checker, arrived } = await heldPair();
    let pos = 0;
    const write = (n) => {
      c.write(slice(pos, n));
      pos += n;
    };
    // Pairs of writes in one tick, both ends in this process: the second
    // (20000 bytes, enough for a run) finds the first unread, so each pair
    // asks for a run (a write to an empty ring never would, whatever the
    // gate). The last pair asks with gate - 1 ring bytes written.
    while (pos < gate - 1) {
      write(Math.min(30000, gate - 1 - pos));
      write(20000);
      await arrived(pos);
      assert.equal(c.poolStats().sentByRef, 0, `a run opened with ${pos - 20000} of ${gate} ring bytes written`);
      assert.equal(c.poolStats().inUse, 0, 'a pool extent was taken');
    }
    // Past the gate: the next write behind unread bytes opens a run.
    write(1);
    write(20000);
    await arrived(pos);
    await oneRunThenClose({ c, s, checker }, 20000);
  });
});
