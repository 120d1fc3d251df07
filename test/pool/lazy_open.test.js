'use strict';
// The pool's lazy opening on the local transport (lib/pool/lazy_open.ts):
// a receiver opens its half only once the peer's sender has, so a connection
// that never sends by reference touches nothing of either pool region. Real
// processes: the server is a forked child (lazy_peer.js); every byte is
// checked against the position pattern; a peer killed before or as its pool
// opens leaves no mapping and no fd behind.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { once } = require('node:events');
const xenring = require('../..');
const { poolNative } = require('../../dist/pool');
const { slice, PatternChecker } = require('../helpers/pattern');
const { forkPeer } = require('./peer_process');
const { poolRss } = require('./pool_rss');
const { poolInodes } = require('../helpers/fixtures');

const MiB = 1 << 20;
const fdCount = () => fs.readdirSync('/proc/self/fd').length;

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A server child and our client connected to it; `got` checks what the server sends. */
async function connected() {
  const peer = forkPeer('lazy_peer.js', {});
  const { port } = await peer.next('listening');
  const sock = xenring.connect({ port });
  const got = new PatternChecker();
  const state = { error: null, closed: false };
  sock.on('data', (d) => got.update(d));
  sock.on('error', (err) => (state.error = err));
  const closed = new Promise((r) => sock.once('close', r)).then(() => (state.closed = true)); // (events.once would reject on 'error')
  await once(sock, 'connect');
  await peer.next('connection');
  return { peer, sock, got, state, closed };
}

/** Ring bytes both ways, so that both readers have polled the pool. */
async function ringBothWays({ peer, sock, got }) {
  sock.write(Buffer.from(slice(0, 100)));
  const r = await peer.next('got');
  assert.deepEqual([r.bytes, r.ok, r.byRef], [100, true, 0]);
  peer.child.send('ring 100');
  await until('the server\'s ring bytes', () => got.received === 100);
  assert.ok(got.ok);
}

async function serverRss(peer) {
  peer.child.send('rss');
  return (await peer.next('rss')).kb;
}

/**
 * Fds and pool mappings of this process once earlier tests' views are
 * collected. In one mocha process an earlier file may still hold views (and
 * so regions) on purpose; those stay, and are counted here, not failed on.
 */
async function baseline() {
  let alive = poolNative.poolRegionsAlive();
  for (let i = 0, still = 0; i < 300 && alive > 0 && still < 20; i++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 10));
    const now = poolNative.poolRegionsAlive();
    still = now === alive ? still + 1 : 0;
    alive = now;
  }
  return { fds: fdCount(), regions: alive, inodes: poolInodes() };
}

/** Collects garbage until fn() (a received view holds the peer's region until V8 collects it). */
async function gcUntil(what, fn) {
  for (let i = 0; i < 300 && !fn(); i++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(fn(), what);
}

describe('pool: receivers open lazily, at the peer\'s first payload (local)', function () {
  this.timeout(60000);

  it('no page of either region is touched before a payload; the first payload each way arrives by reference, every byte checked', async () => {
    const { inodes } = await baseline();
    const c = await connected();
    await ringBothWays(c);
    // Before: the receivers watched the peers' pool bytes only (an eager
    // receiver touched the peer's queue page: 4 kB on each side).
    assert.equal(poolRss(inodes), 0, 'client: nothing of the pool regions resident');
    assert.equal(await serverRss(c.peer), 0, 'server: nothing of the pool regions resident');
    // First payload client -> server: the server's receiver opens on it.
    const buf = c.sock.allocBuffer(MiB);
    assert.equal(c.sock.poolStats().inUse > 0, true, 'a loan from the pool');
    buf.set(slice(100, MiB));
    c.sock.write(buf);
    let r;
    do r = await c.peer.next('got');
    while (r.bytes < 100 + MiB);
    assert.deepEqual([r.bytes, r.ok, r.byRef], [100 + MiB, true, 1]);
    assert.equal(c.sock.poolStats().sentByRef, 1);
    // First payload server -> client: ours opens on it.
    c.peer.child.send(`send ${2 * MiB}`);
    await c.peer.next('sent');
    await until('the server\'s payload', () => c.got.received === 100 + 2 * MiB);
    assert.ok(c.got.ok, `byte ${c.got.badOffset} differs`);
    assert.equal(c.sock.poolStats().receivedByRef, 1);
    assert.ok(poolRss(inodes) > 0 && (await serverRss(c.peer)) > 0, 'both opened now');
    // And the stream goes on in both directions: ring, then reference again.
    c.sock.write(Buffer.from(slice(100 + MiB, 50)));
    const again = c.sock.allocBuffer(MiB);
    again.set(slice(150 + MiB, MiB));
    c.sock.write(again);
    do r = await c.peer.next('got');
    while (r.bytes < 150 + 2 * MiB);
    assert.deepEqual([r.bytes, r.ok, r.byRef], [150 + 2 * MiB, true, 2]);
    c.sock.end();
    await c.closed;
    c.peer.child.kill();
    await c.peer.exited;
  });

  it('a peer killed before its pool opened: the connection ends, no mapping or fd is left', async () => {
    const { fds, regions } = await baseline();
    const c = await connected();
    await ringBothWays(c);
    assert.equal(poolNative.poolRegionsAlive(), regions, 'regions on demand: none made or mapped before a payload');
    c.peer.child.send('die');
    await c.peer.exited;
    await c.closed;
    assert.equal(c.got.received, 100);
    await gcUntil('every pool region unmapped', () => poolNative.poolRegionsAlive() === regions);
    assert.equal(fdCount(), fds, 'no fd left');
  });

  it('a peer killed as its pool opens (first payload written, then SIGKILL): all of it or none arrives, checked; nothing is left', async () => {
    const { fds, regions } = await baseline();
    const c = await connected();
    await ringBothWays(c);
    c.peer.child.send(`sendAndDie ${4 * MiB}`);
    await c.peer.exited;
    await c.closed;
    assert.ok(c.got.ok, `byte ${c.got.badOffset} differs`);
    assert.ok(c.got.received === 100 || c.got.received === 100 + 4 * MiB, `${c.got.received} bytes: a payload arrives whole or not at all`);
    await gcUntil('every pool region unmapped', () => poolNative.poolRegionsAlive() === regions);
    assert.equal(fdCount(), fds, 'no fd left');
  });
});
