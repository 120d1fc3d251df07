'use strict';
// The page-reference path through the public API (issue 13), between real
// processes: connect({ pool }) / createServer({ pool }), allocBuffer(),
// release(), poolStats(). Every stream is the i % 251 pattern, checked byte
// by byte on the receiving side, with ring writes and pool payloads
// interleaved: a payload delivered out of order breaks the pattern.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { once } = require('node:events');
const xenring = require('../..');

const { poolNative } = require('../../dist/pool/native_pool');
const { PatternChecker } = require('../helpers/pattern');
const { closed, countFds, listenOnce } = require('../helpers/fixtures');
const { forkPeer } = require('./peer_process');
const { writePlan, mixedPlan } = require('./plan');

const MiB = 1 << 20;
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** Forks socket_peer.js; next(event) resolves with its next message of that kind. */
function peer(opts, execArgv = []) {
  return forkPeer('socket_peer.js', opts, execArgv);
}

const planBytes = (plan) => plan.reduce((n, [size]) => n + size, 0);

/** Receives a whole stream on `s`, checking the pattern; resolves at 'end'. */
function receiveAll(s, keep = null) {
  const checker = new PatternChecker();
  s.on('data', (d) => {
    checker.update(d);
    if (keep) keep.push(d);
  });
  return once(s, 'end').then(() => checker);
}

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await tick(2);
  }
}

/** Whether `views` read back as the pattern stream of `bytes` bytes. */
function checkViews(views, bytes) {
  const again = new PatternChecker();
  for (const v of views) again.update(v);
  return again.ok && again.received === bytes;
}

/** Pool mappings of this process (the pool's memfds are named xenring-pool). */
function poolMaps() {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('memfd:xenring-pool')).length;
}

describe('pool: the page-reference path through connect/createServer (real processes)', function () {
  this.timeout(60000);

  it('mixed small and large writes, both directions: every byte in order, pool and ring interleaved', async () => {
    const back = mixedPlan(3);
    const p = peer({ receive: 'release', plan: back });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port });
    await once(s, 'connect');
    const received = receiveAll(s);
    const plan = mixedPlan(4);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, planBytes(plan));
    assert.ok(r.ok, `server saw a wrong byte at ${r.badOffset}`);
    const mine = await received;
    assert.equal(mine.received, planBytes(back));
    assert.ok(mine.ok, `client saw a wrong byte at ${mine.badOffset}`);
    const st = s.poolStats();
    // Both kinds of traffic really happened, both ways.
    assert.equal(st.size, 64 * MiB);
    assert.ok(st.sentByRef >= 4 * 4, `sentByRef ${st.sentByRef}`);
    assert.ok(st.bytesSentByRef < planBytes(plan), 'some bytes went through the ring');
    assert.ok(r.stats.receivedByRef === st.sentByRef, `server received ${r.stats.receivedByRef} of ${st.sentByRef} references`);
    assert.equal(r.stats.released, r.stats.receivedByRef);
    assert.ok(st.receivedByRef >= 3 * 4, `receivedByRef ${st.receivedByRef}`);
    await closed(s);
    await p.exited;
  });

  it('release() returns pages that are reused: 8 MB through a 1 MiB pool, no fallback', async () => {
    const p = peer({ receive: 'release' });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port, pool: { size: MiB } });
    await once(s, 'connect');
    let pos = 0;
    const N = 40;
    for (let i = 0; i < N; i++) {
      pos = await writePlan(s, [[200003, 'alloc']], pos);
      // Paced: the next loan once the receiver gave this one back.
      await until('the extent to come back', () => s.poolStats().inUse === 0);
    }
    s.end();
    const r = await p.next('received');
    assert.ok(r.ok);
    const st = s.poolStats();
    assert.equal(st.size, MiB);
    assert.equal(st.fallbacks, 0);
    assert.equal(st.sentByRef, N);
    assert.equal(st.returned, N);
    assert.equal(r.stats.released, N);
    await closed(s);
    await p.exited;
  });

  it('a full pool falls back to the ring: no stall, no lost byte, fallbacks counted', async () => {
    const p = peer({ receive: 'hold' });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port, pool: { size: MiB } });
    await once(s, 'connect');
    const plan = Array.from({ length: 30 }, () => [100003, 'alloc']);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, planBytes(plan));
    assert.ok(r.ok, `wrong byte at ${r.badOffset}`);
    assert.ok(r.heldViewsOk, 'views held by the receiver changed');
    const st = s.poolStats();
    assert.ok(st.sentByRef >= 1 && st.sentByRef <= 10, `sentByRef ${st.sentByRef}`);
    assert.equal(st.fallbacks, 30 - st.sentByRef);
    await closed(s);
    await p.exited;
  });

  it('views dropped by the receiver come back through the garbage collector (--expose-gc child)', async () => {
    const p = peer({ receive: 'gc' }, ['--expose-gc']);
    const { port } = await p.next('ready');
    const s = xenring.connect({ port, pool: { size: 4 * MiB } });
    await once(s, 'connect');
    await writePlan(s, Array.from({ length: 16 }, () => [200003, 'alloc']));
    assert.equal(s.poolStats().sentByRef, 16);
    await until('completions from the collector', () => s.poolStats().returned >= 8);
    s.end();
    const r = await p.next('received');
    assert.ok(r.ok);
    assert.ok(r.stats.releasedByGC >= 8, `releasedByGC ${r.stats.releasedByGC}`);
    await closed(s);
    await p.exited;
  });

  it('views held across close stay readable; nothing leaks once they are dropped', async () => {
    for (let i = 0; i < 3; i++) global.gc(); // earlier tests' views, so that "before" is settled
    await tick(10);
    const before = { fds: countFds(), maps: poolMaps(), regions: poolNative.poolRegionsAlive() };
    const back = [[300007, 'buf'], [11, 'buf'], [500009, 'alloc'], [70001, 'buf']];
    const p = peer({ receive: 'release', plan: back, gatesOpen: true }); // the 300007-byte Buffer by reference too
    const { port } = await p.next('ready');
    let s = xenring.connect({ port });
    await once(s, 'connect');
    let views = [];
    const received = receiveAll(s, views);
    s.end();
    const checker = await received;
    assert.equal(checker.received, planBytes(back));
    assert.ok(s.poolStats().receivedByRef >= 2);
    await closed(s);
    await p.exited;
    assert.equal(s.poolStats().held, 0, 'every held extent counts as returned at close');
    assert.ok(s.poolStats().releasedAtClose >= 2);
    // The connection is gone; its pages are still mapped for the views.
    assert.ok(poolMaps() > before.maps, 'the views keep their mapping');
    // In a function of its own: a suspended async frame may keep a loop variable (a view) alive.
    assert.ok(checkViews(views, planBytes(back)), 'views read back the stream after close');
    views.length = 0; // the 'data' handler's array too
    views = null;
    s.removeAllListeners();
    s = null;
    for (let i = 0; i < 50 && (poolMaps() > before.maps || poolNative.poolRegionsAlive() > before.regions); i++) {
      global.gc();
      await tick(10);
    }
    // No more than before (earlier tests' collectable views may go too).
    assert.ok(poolMaps() <= before.maps, `pool mappings ${before.maps} -> ${poolMaps()}`);
    assert.ok(poolNative.poolRegionsAlive() <= before.regions, `pool regions ${before.regions} -> ${poolNative.poolRegionsAlive()}`);
    assert.ok(countFds() <= before.fds, `fds ${before.fds} -> ${countFds()}`);
  });

  it("end() right after a by-reference write: the payload comes before 'end'", async () => {
    const p = peer({ receive: 'hold' });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port });
    await once(s, 'connect');
    const plan = [[7, 'buf'], [300007, 'alloc']];
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, planBytes(plan));
    assert.ok(r.ok);
    assert.equal(r.dataAfterEnd, false);
    assert.equal(r.stats.receivedByRef, 1);
    await closed(s);
    await p.exited;
  });

  it('an onread receiver gets every pool payload copied into its own buffer', async () => {
    const { server, port, accepted } = await listenOnce();
    const p = peer({ role: 'client', port, receive: 'onread', onreadSize: 3001 });
    const s = await accepted;
    const plan = mixedPlan(2);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, planBytes(plan));
    assert.ok(r.ok, `wrong byte at ${r.badOffset}`);
    assert.ok(r.stats.receivedByRef >= 8, `receivedByRef ${r.stats.receivedByRef}`);
    assert.equal(r.stats.held, 0);
    await p.exited;
    server.close();
  });

  it('views: false delivers private copies: extents go back at once, nothing held', async () => {
    const p = peer({ receive: 'hold', pool: { views: false } });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port });
    await once(s, 'connect');
    const plan = mixedPlan(2);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.ok(r.ok && r.bytes === planBytes(plan));
    assert.ok(r.stats.receivedByRef >= 8);
    assert.equal(r.stats.held, 0);
    assert.equal(r.stats.released, 0);
    assert.ok(r.heldViewsOk);
    // (held 0 and nothing released by hand: each extent went back as it was copied)
    await closed(s);
    await p.exited;
  });

  it('a sender opens its queues at its first payload, not at connect; payloads then go by reference both ways', async () => {
    // The server sends back a small write, then a payload: its queues too open late.
    const back = [[64, 'buf'], [MiB, 'alloc'], [100, 'buf']];
    const p = peer({ receive: 'release', plan: back });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port });
    await once(s, 'connect');
    const received = receiveAll(s);
    const sender = s.channel.link.pool.sender;
    let pos = await writePlan(s, [[100, 'buf']]);
    assert.equal(sender.opened, null, 'the queues were opened before any payload');
    pos = await writePlan(s, [[MiB, 'alloc'], [300, 'buf']], pos);
    assert.notEqual(sender.opened, null);
    s.end();
    const r = await p.next('received');
    assert.equal(r.bytes, pos);
    assert.ok(r.ok, `server saw a wrong byte at ${r.badOffset}`);
    assert.equal(r.stats.receivedByRef, 1, 'the payload went by reference');
    const mine = await received;
    assert.equal(mine.received, planBytes(back));
    assert.ok(mine.ok, `client saw a wrong byte at ${mine.badOffset}`);
    assert.equal(s.poolStats().receivedByRef, 1, "the server's payload came by reference");
    await closed(s);
    await p.exited;
  });

  it('pool: false, or a peer offering none: no pool, the ring carries everything', async () => {
    const p = peer({ receive: 'release', pool: false });
    const { port } = await p.next('ready');
    const s = xenring.connect({ port });
    await once(s, 'connect');
    const plan = mixedPlan(1);
    await writePlan(s, plan);
    s.end();
    const r = await p.next('received');
    assert.ok(r.ok && r.bytes === planBytes(plan));
    assert.equal(s.poolStats().size, 0);
    assert.equal(s.poolStats().sentByRef, 0);
    assert.equal(r.stats.receivedByRef, 0);
    await closed(s);
    await p.exited;
  });
});

describe('pool: options and methods', () => {
  it('bad pool options fail as net fails bad options', () => {
    assert.throws(() => xenring.connect({ port: 1, pool: 5 }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xenring.connect({ port: 1, pool: { size: '1' } }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xenring.connect({ port: 1, pool: { size: 1000 } }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xenring.connect({ port: 1, pool: { size: 2 ** 31 } }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xenring.createServer({ pool: { views: 'yes' } }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xenring.createServer().listen({ port: 0, pool: null }), { code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('without a pool: allocBuffer() is an ordinary Buffer, release() false, poolStats() zeros', () => {
    const s = new xenring.Socket();
    const b = s.allocBuffer(10);
    assert.ok(Buffer.isBuffer(b) && b.length === 10);
    assert.equal(s.release(b), false);
    assert.deepEqual(s.poolStats(), {
      size: 0, inUse: 0, held: 0, sentByRef: 0, receivedByRef: 0, bytesSentByRef: 0, bytesReceivedByRef: 0,
      fallbacks: 0, released: 0, releasedByGC: 0, releasedAtClose: 0, returned: 0,
    });
    assert.throws(() => s.allocBuffer(-1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => s.allocBuffer('1'), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => s.release('x'), { code: 'ERR_INVALID_ARG_TYPE' });
    s.destroy();
  });

  it('a pool Buffer written twice, or from a subarray, takes the ring: the bytes still arrive', async () => {
    const { server, port, accepted } = await listenOnce();
    const s = xenring.connect({ port });
    await once(s, 'connect');
    const a = await accepted;
    const got = [];
    a.on('data', (d) => got.push(Buffer.from(d)));
    const buf = s.allocBuffer(50000).fill(9);
    s.write(buf.subarray(1000)); // not from its first byte: ring
    s.write(s.allocBuffer(40000).fill(8));
    s.end();
    await once(a, 'end');
    const all = Buffer.concat(got);
    assert.equal(all.length, 49000 + 40000);
    assert.ok(all.subarray(0, 49000).every((x) => x === 9) && all.subarray(49000).every((x) => x === 8));
    assert.equal(s.poolStats().sentByRef, 1);
    assert.equal(s.poolStats().fallbacks, 1);
    a.destroy();
    server.close();
  });
});


