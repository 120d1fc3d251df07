'use strict';
// A hostile server that recycles ring memfds on purpose (peer.py "recycle")
// attacks the client's ring cache (lib/transports/local_ring_cache.ts): a
// kept mapping is handed out again only for the same file, never while in
// use, and whatever the server wrote in it meanwhile is read as on a fresh
// mapping. The client must move every honest byte, fail cleanly on garbage
// (bounded in time), and leave no fd and no mapping once the cache expired.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { countFds, children } = require('../helpers/fixtures');
const { hostilePeer } = require('./helpers');
const xenring = require('../..');
const { ringCacheStats } = require('../../dist/transports/local_ring_cache');

let serial = 0;

/** Our mappings of the peer's ring memfds (peer.py names them "recycler"). */
function ringMappings() {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('memfd:recycler')).length;
}

/** A pattern that differs per connection (`seed`), so a stale ring's bytes cannot pass. */
function pattern(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed * 101 + (i >> 8)) & 0xff;
  return b;
}

/** Bounded: a client that hangs fails here, not by mocha's timeout. */
function within(promise, ms, what) {
  let t;
  const late = new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(t));
}

/** Whether the cache holds a mapping of the memfd with inode `ino`. */
const cached = (ino) => ringCacheStats().keys.some((k) => k.split(':')[1] === String(ino));

/**
 * The recycling server: `serve(cmd)` has it take the next connection as
 * `cmd` says and resolves with its "accepted" line; `closed(id)` with its
 * "closed" line. Its lines are routed by id (connections may overlap).
 */
async function recycler(opts = {}, connectOptions = {}) {
  const port = `recycle-${process.pid}-${serial++}`;
  const peer = hostilePeer('recycle', { path: path.join(process.env.XENRING_DIR, `${port}.sock`), ...opts });
  assert.equal(await peer.line(), 'ready');
  const got = [];
  const waiters = [];
  (async () => {
    for (;;) {
      const l = await peer.line().catch(() => null);
      if (l === null) return;
      if (l.event === 'error') throw new Error(`peer: ${l.error}`); // its thread failed: the test would hang, say why
      const i = waiters.findIndex((w) => w.id === l.id && w.event === l.event);
      if (i >= 0) waiters.splice(i, 1)[0].resolve(l);
      else got.push(l);
    }
  })();
  const next = (id, event) => {
    const i = got.findIndex((l) => l.id === id && l.event === event);
    if (i >= 0) return Promise.resolve(got.splice(i, 1)[0]);
    return within(new Promise((resolve) => waiters.push({ id, event, resolve })), 20000, `peer ${event} ${id}`);
  };
  let ids = 0;
  return {
    peer,
    port,
    connectOptions,
    serve(cmd) {
      const id = ids++;
      peer.child.stdin.write(JSON.stringify({ id, ...cmd }) + '\n');
      return { id, accepted: next(id, 'accepted'), closed: () => next(id, 'closed') };
    },
  };
}

/**
 * Connects to `srv` and writes `send` (then ends, unless `stayOpen`).
 * `connected` resolves with the cache's reused count at the connect (null if
 * none); `done` on 'close' with { ended, code, data }.
 */
function client(srv, send, stayOpen = false) {
  const s = xenring.connect({ port: srv.port, ...srv.connectOptions });
  const chunks = [];
  s.on('data', (d) => chunks.push(Buffer.from(d)));
  let ended = false;
  let code;
  s.on('end', () => (ended = true));
  s.on('error', (e) => (code = e.code));
  const connected = new Promise((resolve) => {
    s.once('connect', () => {
      resolve(ringCacheStats().reused);
      if (send) s.write(send);
      if (send && !stayOpen) s.end();
    });
    s.once('close', () => resolve(null));
  });
  const done = within(
    new Promise((resolve) => s.once('close', () => resolve({ ended, code, data: Buffer.concat(chunks) }))),
    20000,
    'client close',
  );
  return { socket: s, connected, done, received: () => Buffer.concat(chunks) };
}

/** One honest echo connection on ring `ring`: every byte checked; resolves with { reused (at connect), ino }. */
async function echoOnce(srv, ring, seed, extra = {}) {
  const conn = srv.serve({ ring, ...extra });
  const data = pattern(20000, seed); // five times round a 4 KiB ring each way
  const c = client(srv, data);
  const reused = await c.connected;
  const { ino } = await conn.accepted;
  assert.deepEqual(await c.done, { ended: true, code: undefined, data }, `echo ${seed}`);
  assert.deepEqual(await conn.closed(), { id: conn.id, event: 'closed', echoed: data.length });
  return { reused, ino };
}

describe('hostile peer: a server that recycles ring memfds (the client ring cache)', function () {
  this.timeout(60000);

  before(function () {
    const [major, minor] = os.release().split('.').map(Number);
    // reason: before Linux 5.9 shmem inode numbers wrap, so the cache keeps nothing there (local_ring_cache.ts)
    if (major < 5 || (major === 5 && minor < 9)) this.skip();
  });

  let fdsBefore;
  let srv;
  beforeEach(async function () {
    fdsBefore = countFds();
    srv = await recycler();
  });

  /** The server gone, the cache expired (RECYCLE_IDLE_MS): no fd and no mapping of its rings left. */
  afterEach(async function () {
    await srv.peer.end();
    for (let i = 0; i < 60 && ringCacheStats().keys.length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(ringCacheStats().keys, [], 'mappings still kept after their expiry');
    assert.equal(ringMappings(), 0, 'ring pages left mapped');
    assert.equal(countFds(), fdsBefore, 'fds left open');
  });

  // Catches a cache that never reuses (reused flat), keeps at the first
  // close (reused from the 2nd), or a reused mapping read with stale state
  // (the bytes: a new pattern each time).
  it('one memfd over five sequential connections: every byte echoed, reused from the third', async function () {
    const base = ringCacheStats().reused;
    const seen = [];
    let first;
    for (let i = 0; i < 5; i++) {
      const { reused, ino } = await echoOnce(srv, 'P', i);
      seen.push(reused - base);
      first ??= ino;
      assert.equal(ino, first, 'the peer did not recycle');
      assert.equal(cached(ino), i > 0, `kept after close ${i + 1}`);
    }
    assert.deepEqual(seen, [0, 0, 1, 2, 3]);
  });

  // The same garbage on a recycled ring (its mapping handed out again) and
  // on a fresh memfd must give the same outcome: catches a client that
  // trusts anything of the kept mapping's past (EPROTO missed, or other
  // bytes read), crashes or hangs on it, or leaks the reused mapping when
  // the connect then fails (the ring count in afterEach).
  for (const [how, expected] of [
    ['page', 'EPROTO at connect (the whole control page garbage)'],
    ['over', 'EPROTO (a producer index past the ring)'],
    ['readable', 'exactly the 1000 bytes its indices allow, then the end'],
  ]) {
    it(`garbage on a recycled ring ("${how}"): ${expected}, as on a fresh memfd`, async function () {
      await echoOnce(srv, 'S', 1);
      await echoOnce(srv, 'S', 2); // kept from here
      const outcomes = [];
      for (const fresh of [false, true]) {
        const before = ringCacheStats().reused;
        const conn = srv.serve({ ring: 'S', fresh, scribble: how, seed: 42 });
        const c = client(srv, null);
        const res = await c.done;
        const { expect } = await conn.accepted;
        assert.equal(ringCacheStats().reused - before, fresh ? 0 : 1, 'the cache path was (not) taken');
        await conn.closed();
        if (how === 'readable') assert.deepEqual(res, { ended: true, code: undefined, data: Buffer.from(expect, 'hex') });
        else assert.deepEqual(res, { ended: false, code: 'EPROTO', data: Buffer.alloc(0) });
        outcomes.push(res);
      }
      assert.deepEqual(outcomes[0], outcomes[1], 'recycled and fresh differ');
    });
  }

  // Catches a cache that hands out a mapping still in use (reused rises
  // for B, or A and B share one mapping: one line in /proc/self/maps).
  it('one memfd to two overlapping connections: B gets its own mapping, both move their bytes', async function () {
    await echoOnce(srv, 'C', 1);
    await echoOnce(srv, 'C', 2); // kept
    const dataA = pattern(6000, 3);
    const connA = srv.serve({ ring: 'C', echo: dataA.length }); // echoes, then no fin: A stays open
    const a = client(srv, dataA, true);
    const reusedA = await a.connected;
    const { ino } = await connA.accepted;
    await within(
      (async () => {
        while (a.received().length < dataA.length) await new Promise((r) => setTimeout(r, 5));
      })(),
      10000,
      'A echo',
    );
    assert.ok(a.received().equals(dataA), 'A bytes differ');
    assert.equal(cached(ino), false, 'A mapping still listed in the cache');
    assert.equal(ringMappings(), 1);

    const connB = srv.serve({ ring: 'C' }); // the same memfd, its control page zeroed under A
    const dataB = pattern(20000, 4);
    const b = client(srv, dataB);
    assert.equal(await b.connected, reusedA, 'B was handed a mapping while A is open');
    assert.equal((await connB.accepted).ino, ino);
    assert.equal(ringMappings(), 2, 'A and B do not have a mapping each');
    assert.deepEqual(await b.done, { ended: true, code: undefined, data: dataB });
    await connB.closed();

    // A ends on the page B's life rewrote (the peer kicks it): indices
    // 14000 past its own read as a corrupt ring, so EPROTO, in time.
    a.socket.end();
    assert.deepEqual(await a.done, { ended: false, code: 'EPROTO', data: dataA });
    await connA.closed();
    assert.equal(ringCacheStats().reused, reusedA);
  });

  // Catches a cache that stands in for an mmap the fd would fail: the same
  // file reopened read-only is refused with EPROTO whether a mapping of it
  // is kept or not (memfdCheck wants O_RDWR), and the kept one stays unused.
  it('the kept ring reopened read-only: EPROTO, as on a file not kept', async function () {
    await echoOnce(srv, 'O', 1);
    const { ino } = await echoOnce(srv, 'O', 2);
    assert.equal(cached(ino), true);
    const before = ringCacheStats().reused;
    for (const fresh of [false, true]) {
      const conn = srv.serve({ ring: 'O', fresh, readonly: true });
      const res = await client(srv, null).done;
      await conn.accepted;
      assert.deepEqual(res, { ended: false, code: 'EPROTO', data: Buffer.alloc(0) }, `fresh: ${fresh}`);
      await conn.closed();
    }
    assert.equal(ringCacheStats().reused, before, 'the kept mapping was handed out for a read-only fd');
  });

  // Catches a key without the inode (e.g. size only, or the memfd's name):
  // the old file's mapping would show a new memfd's pages as the old ones.
  it('a new memfd of the same size after a kept one: mapped afresh, bytes right', async function () {
    await echoOnce(srv, 'R', 1);
    const { ino: old } = await echoOnce(srv, 'R', 2);
    assert.equal(cached(old), true);
    const before = ringCacheStats().reused;
    const { reused, ino } = await echoOnce(srv, 'R', 3, { fresh: true });
    assert.notEqual(ino, old);
    assert.equal(reused, before, 'a kept mapping handed out for another file');
    assert.equal(cached(ino), false, 'kept at its first close');
    assert.equal(cached(old), true);
  });

  // Catches a cache that keeps the rings of a server of another uid (which
  // never recycles for us: local_recycle.ts), allowed by allowUid.
  it('a server of another uid that recycles: nothing kept, nothing reused', async function () {
    if (process.getuid() !== 0) this.skip(); // switching to another uid needs root
    await srv.peer.end();
    srv = await recycler({ listenUid: 65534 }, { allowUid: 65534 });
    const base = ringCacheStats().reused;
    for (let i = 0; i < 3; i++) {
      const { reused, ino } = await echoOnce(srv, 'U', i);
      assert.equal(reused, base, 'a ring of another uid handed out again');
      assert.equal(cached(ino), false, 'a ring of another uid kept');
    }
  });

  // Catches XENRING_RECYCLE=0 not reaching the client's cache; the same
  // child with recycling on is the control (it does reuse).
  for (const [env, want] of [
    ['0', { keys: 0, reused: 0 }],
    [undefined, { keys: 1, reused: 1 }],
  ]) {
    it(`a client process with XENRING_RECYCLE=${env ?? '(unset)'}: ${want.reused ? 'reuses' : 'keeps nothing'}`, async function () {
      const script = `
        const { once } = require('node:events');
        const xenring = require(${JSON.stringify(path.resolve(__dirname, '../..'))});
        const { ringCacheStats } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/transports/local_ring_cache'))});
        (async () => {
          let ok = true;
          for (let i = 0; i < 3; i++) {
            const s = xenring.connect({ port: ${JSON.stringify(srv.port)} });
            await once(s, 'connect');
            const got = [];
            s.on('data', (d) => got.push(d));
            s.end(Buffer.from('round ' + i));
            await once(s, 'close');
            ok &&= Buffer.concat(got).toString() === 'round ' + i;
          }
          const { keys, reused } = ringCacheStats();
          console.log(JSON.stringify({ ok, keys: keys.length, reused }));
        })();`;
      const conns = [0, 1, 2].map(() => srv.serve({ ring: 'E' }));
      const childEnv = { ...process.env };
      if (env === undefined) delete childEnv.XENRING_RECYCLE;
      else childEnv.XENRING_RECYCLE = env;
      const child = spawn(process.execPath, ['-e', script], { env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] });
      children.add(child);
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      const [code] = await within(once(child, 'exit'), 20000, 'child');
      children.delete(child);
      assert.equal(code, 0);
      assert.deepEqual(JSON.parse(text), { ok: true, ...want });
      for (const c of conns) await c.closed();
    });
  }
});
