'use strict';
// The page-reference pool on real Xen, inside dom0 (it grants to itself and
// maps its own grants): negotiation through the real xenstored, regions
// granted with gntalloc and mapped with gntdev, payloads moved by reference
// both ways with every byte checked, and every grant and mapping given back.
// The dom0 <-> domU transfer is step 11 of domu.test.js.
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { ownDomidOrSkip, root } = require('./helpers');
const { poolTransfer, xenMappings, settleMappings, gc } = require('./pool_helpers');
const dist = path.join(root, 'dist', 'transports', 'xen');
const { xenTransport } = require(path.join(dist, 'transport.js'));
const { xen } = require(path.join(dist, 'native_xen.js'));
const { poolGrantsHeld } = require(path.join(dist, 'xen_pool.js'));
const { addonBindings } = require(path.join(dist, 'bindings.js'));

const KiB = 1024;
let self;

function listen(req, onLink) {
  return Promise.resolve(xenTransport.listen(req, onLink, new AbortController().signal));
}
const connect = (req) => xenTransport.connect(req, new AbortController().signal);

/** A connected pair over the transport in this domain. */
async function pair(port, pool) {
  const links = [];
  const l = await listen({ port, pool }, (link) => links.push(link));
  const c = await connect({ port, domid: self, pool });
  for (const end = Date.now() + 30000; links.length === 0; ) {
    if (Date.now() > end) throw new Error('no accepted link');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { l, c, s: links[0] };
}

function gntallocLimit() {
  try {
    return Number(fs.readFileSync('/sys/module/xen_gntalloc/parameters/limit', 'utf8'));
  } catch {
    return 1024;
  }
}

describe('xen lab: page-reference pool in dom0', function () {
  this.timeout(300000);
  before(async function () {
    self = await ownDomidOrSkip(this);
  });
  beforeEach(() => gc()); // loans of an earlier test are not counted in the next one's start

  it('agrees on a pool each way, moves 4 MiB by reference each way (every byte checked), then gives every grant and mapping back', async () => {
    const start = xenMappings();
    // Both ends live in this process and share its pool budget (half of gntalloc's limit): 256 KiB each way fits.
    const pool = { size: 256 * KiB, views: undefined };
    const { l, c, s } = await pair('pool-dom0', pool);
    assert.strictEqual(c.pool.stats().size, 256 * KiB);
    assert.strictEqual(s.pool.stats().size, 256 * KiB);
    const t0 = Date.now();
    await Promise.all([poolTransfer(c, { send: 64, recv: 64, size: 64 * KiB }), poolTransfer(s, { send: 64, recv: 64, size: 64 * KiB })]);
    console.log(`      8 MiB by reference (4 each way, 64 KiB payloads, private copies) in ${Date.now() - t0} ms`);
    assert.strictEqual(c.pool.stats().sentByRef, 64);
    assert.strictEqual(s.pool.stats().receivedByRef, 64);
    c.release();
    s.release();
    l.close();
    assert.strictEqual(poolGrantsHeld(addonBindings), 0);
    assert.deepStrictEqual(await settleMappings(start), start);
  });

  it('views (pool.views: true) stay readable after the links are released, and unmap when collected', async () => {
    const start = xenMappings();
    const pool = { size: 128 * KiB, views: true };
    const { l, c, s } = await pair('pool-views', pool);
    let view = null;
    // In a function of its own: the sender's loan must not stay reachable from this test.
    (() => {
      const buf = c.pool.sender.allocBuffer(8 * KiB);
      buf.fill(0x5a);
      assert.ok(c.pool.sender.send(buf, 0));
    })();
    for (const end = Date.now() + 10000; view === null && Date.now() < end; ) {
      s.pool.receiver.poll(0);
      view = s.pool.receiver.take(0);
      if (view === null) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(view && view.length === 8 * KiB);
    assert.strictEqual(s.pool.stats().held, 8 * KiB, 'a view holds its extent');
    c.release();
    s.release();
    l.close();
    assert.ok(view.every((b) => b === 0x5a), 'still readable');
    assert.ok(xenMappings().gntdev > start.gntdev, 'the view keeps its pages mapped');
    view = null;
    assert.deepStrictEqual(await settleMappings(start), start);
  });

  it('20 connect / transfer / close cycles leak nothing: gntalloc can still hand out all but a few of its grants', async () => {
    const start = xenMappings();
    const pool = { size: 64 * KiB, views: undefined };
    for (let i = 0; i < 20; i++) {
      const p = await pair(`pool-cycle-${i}`, pool);
      await Promise.all([poolTransfer(p.c, { send: 4, recv: 4, size: 16 * KiB }), poolTransfer(p.s, { send: 4, recv: 4, size: 16 * KiB })]);
      p.c.release();
      p.s.release();
      p.l.close();
    }
    assert.deepStrictEqual(await settleMappings(start), start);
    const n = gntallocLimit() - 64;
    const share = xen.gntSharePool(self, n); // ENOSPC here would mean grants leaked
    share.mapping.close();
  });

  it('gntalloc out of grants: the connection goes on without a pool (size 0) and moves data on the ring', async () => {
    // Hold nearly all of gntalloc's grants, leaving room for a ring but not a pool.
    const hog = xen.gntSharePool(self, gntallocLimit() - 40);
    try {
      const { l, c, s } = await pair('pool-enospc', { size: 256 * KiB, views: undefined });
      assert.strictEqual(c.pool, null);
      assert.strictEqual(s.pool, null);
      const { pump } = require('./helpers');
      await Promise.all([pump(c, { send: 1 << 20, recv: 1 << 20 }), pump(s, { send: 1 << 20, recv: 1 << 20 })]);
      c.release();
      s.release();
      l.close();
    } finally {
      hog.mapping.close();
    }
  });
});
