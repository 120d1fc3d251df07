'use strict';
// The page-reference pool on the xen transport, against the fake Xen host:
// negotiation in xenstore (only between xenring peers), the agreed sizes,
// no pool (not a failure) when grants run out, and every grant, mapping and
// node freed on each path. Payloads move through the real PoolSender /
// PoolReceiver over the granted and mapped regions (the channel's use of
// them is tested in test/pool and in the lab).
const assert = require('node:assert');
const path = require('node:path');
const { listen, connect, until, setup, NOTHING_HELD, root } = require('./helpers');
const { listenPath } = require(path.join(root, 'transports', 'xen', 'transport.js'));
const { vchanServer, vchanClient } = require(path.join(root, 'transports', 'xen', 'handshake.js'));
const { poolGrants, poolGrantsHeld } = require(path.join(root, 'transports', 'xen', 'xen_pool.js'));
const { XenStore } = require(path.join(root, 'transports', 'xen', 'xenstore.js'));
const { DEFAULT_XEN_POOL } = require(path.join(root, 'pool', 'layout.js'));

// The collector, to see the last loan or view go (the pages stay mapped until then).
require('node:v8').setFlagsFromString('--expose-gc');
const gc = require('node:vm').runInNewContext('gc');

const KiB = 1024;
const MiB = 1 << 20;
const pool = (size, views) => ({ size, views });

/** Sends `n` bytes (byte i = (i * 7 + seed) % 256) by reference from one link to the other; returns what arrived. */
function transfer(from, to, n, seed) {
  const buf = from.pool.sender.allocBuffer(n);
  assert.ok(buf && from.pool.sender.isLoaned(buf), `a ${n}-byte loan from the pool`);
  for (let i = 0; i < n; i++) buf[i] = (i * 7 + seed) & 0xff;
  assert.strictEqual(from.pool.sender.send(buf, 0), true, 'sent by reference');
  to.pool.receiver.poll(0);
  const got = to.pool.receiver.take(0);
  assert.ok(got, 'a payload arrived');
  assert.strictEqual(got.length, n);
  for (let i = 0; i < n; i++) if (got[i] !== ((i * 7 + seed) & 0xff)) assert.fail(`byte ${i} differs`);
  return got;
}

/** The requests (and their pool nodes) under a listener, and every xenring vchan directory (with its pool nodes). */
function storeNodes(host, port) {
  const lpath = listenPath(0, port);
  return [...host.xs.list(lpath).filter((p) => p !== lpath), ...host.xs.list('/local/domain/0/data/vchan').filter((p) => /xenring-/.test(p))];
}

describe('xen (fake host): page-reference pool negotiation', function () {
  this.timeout(20000);
  let env;
  beforeEach(() => {
    env = setup();
  });
  afterEach(() => env.host.close());

  async function pair(server, client) {
    const l = await listen(env.t0, { port: 'p', ...server });
    const c = await connect(env.t5, { port: 'p', domid: 0, ...client });
    const s = await l.nextLink();
    return { l, c, s };
  }

  async function closeAll({ l, c, s }) {
    c.release();
    s.release();
    l.close();
    await until(() => !env.host.xs.get(listenPath(0, 'p')), 2000, 'listener node removed');
    assert.deepStrictEqual(env.host.held(), NOTHING_HELD);
    assert.strictEqual(poolGrantsHeld(env.d0), 0);
    assert.strictEqual(poolGrantsHeld(env.d5), 0);
  }

  it(`agrees on the default (${DEFAULT_XEN_POOL / MiB} MiB each way), moves verified payloads both ways, private copies by default, frees every grant, mapping and node`, async () => {
    const { host } = env;
    const p = await pair({}, {});
    const { c, s } = p;
    assert.strictEqual(c.pool.stats().size, DEFAULT_XEN_POOL);
    assert.strictEqual(s.pool.stats().size, DEFAULT_XEN_POOL);
    // Each side holds its own region (the grant lists are gone once mapped); the server its ring too.
    assert.strictEqual(host.liveGrants(5), poolGrants(DEFAULT_XEN_POOL) - 1);
    assert.strictEqual(host.poolPagesMapped(), 4, 'each region mapped by its granter and by its peer');
    await until(() => storeNodes(host, 'p').length === 0, 2000, 'request and vchan nodes removed');
    for (const [from, to, seed] of [[c, s, 1], [s, c, 2], [c, s, 3]]) {
      const got = transfer(from, to, 300 * KiB, seed);
      // Between domains the default is a private copy: the extent is back at once.
      assert.strictEqual(to.pool.stats().held, 0);
      got.fill(0); // ours, not the sender's pages
      assert.strictEqual(from.pool.sender.reclaim(), 1, 'the extent came back');
    }
    assert.strictEqual(c.pool.stats().sentByRef, 2);
    assert.strictEqual(s.pool.stats().receivedByRef, 2);
    await closeAll(p);
    // Our own loans are views of our region too: unmapped once collected.
    // Counted per host: poolRegionsAlive() also moves when earlier test files'
    // garbage is collected (under load it fell below a baseline taken before).
    await until(() => (gc(), host.poolPagesMapped() === 0), 3000, 'regions unmapped');
  });

  it('pool.views: true delivers views of the mapped pages; they stay readable after both links are released', async () => {
    const p = await pair({ pool: pool(256 * KiB, true) }, { pool: pool(256 * KiB, true) });
    const view = transfer(p.c, p.s, 64 * KiB, 9);
    assert.strictEqual(p.s.pool.stats().held, 64 * KiB, 'a view holds its extent');
    p.c.release();
    p.s.release();
    for (let i = 0; i < view.length; i += 4096) assert.strictEqual(view[i], (i * 7 + 9) & 0xff);
    assert.ok(env.host.poolPagesMapped() > 0, 'the view keeps its pages mapped');
    p.l.close();
    await until(() => !env.host.xs.get(listenPath(0, 'p')), 2000, 'listener node removed');
    assert.strictEqual(poolGrantsHeld(env.d0) + poolGrantsHeld(env.d5), 0);
  });

  it("each direction gets the smaller of the two sizes; the listener's is the ceiling", async () => {
    const p = await pair({ pool: pool(512 * KiB) }, { pool: pool(128 * KiB) });
    assert.strictEqual(p.c.pool.stats().size, 128 * KiB);
    assert.strictEqual(p.s.pool.stats().size, 128 * KiB);
    transfer(p.c, p.s, 128 * KiB, 4);
    // A payload larger than the agreed pool is not a loan: the socket sends it through the ring.
    assert.strictEqual(p.s.pool.sender.allocBuffer(129 * KiB), null);
    await closeAll(p);
  });

  it('size 0 on either side: no pool either way, no pool node written, no pool grant taken', async () => {
    for (const [server, client] of [[{}, { pool: pool(0) }], [{ pool: pool(0) }, {}]]) {
      const p = await pair(server, client);
      assert.strictEqual(p.c.pool, null);
      assert.strictEqual(p.s.pool, null);
      assert.strictEqual(env.host.liveGrants(5), 0, 'the client granted nothing (or gave it back)');
      await closeAll(p);
    }
  });

  it('gntalloc out of grants (ENOSPC) in one direction: that direction has no pool, the other has, the connection works', async () => {
    env.host.faults.gntSharePoolError = 'ENOSPC'; // the client's region
    const p = await pair({}, {});
    assert.strictEqual(p.c.pool.sender, null, 'client→server: none');
    assert.strictEqual(p.s.pool.receiver, null);
    transfer(p.s, p.c, 100 * KiB, 5);
    await closeAll(p);
  });

  it("a grant limit too small for any pool: both directions without one, rings unaffected; the process budget caps pool grants", async () => {
    env.host.close();
    env = setup({ grantLimit: 200 });
    let p = await pair({}, {});
    assert.strictEqual(p.c.pool, null);
    assert.strictEqual(p.s.pool, null);
    await closeAll(p);
    // The budget: one 1 MiB region fits, a second does not (it would starve the rings).
    env.host.close();
    env = setup();
    Object.defineProperty(env.d0, 'poolGrantBudget', { value: poolGrants(MiB) + 10 });
    Object.defineProperty(env.d5, 'poolGrantBudget', { value: 10 * poolGrants(MiB) });
    const first = await pair({}, {});
    const c2 = await connect(env.t5, { port: 'p', domid: 0 });
    const s2 = await first.l.nextLink();
    assert.ok(first.s.pool.sender, 'first connection: the server granted its region');
    assert.strictEqual(s2.pool.sender, null, 'second: over the budget, no server→client pool');
    assert.ok(s2.pool.receiver, 'but it maps the client’s region');
    c2.release();
    s2.release();
    await closeAll(first);
  });

  it('frees the client’s pool grants when the listener refuses, and when the wait times out', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'only7', domid: 7 });
    await assert.rejects(connect(t5, { port: 'only7', domid: 0 }), { code: 'ECONNREFUSED' });
    assert.strictEqual(host.liveGrants(5), 0);
    l.close();
    // A listener node nobody serves: the client times out.
    const store = new XenStore(env.d0);
    await store.write(listenPath(0, 'dead'), '1');
    await store.setPerms(listenPath(0, 'dead'), [{ domid: 0, perm: 'b' }]);
    await assert.rejects(connect(t5, { port: 'dead', domid: 0, timeout: 200 }), { code: 'ETIMEDOUT' });
    await until(() => host.xs.get(listenPath(0, 'dead')).children.length === 0, 2000, 'request removed');
    await store.rm(listenPath(0, 'dead'));
    store.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    assert.strictEqual(poolGrantsHeld(env.d5), 0);
  });

  it('frees both pools when xenstore refuses the vchan nodes, and when the client cannot bind the channel', async () => {
    const { host } = env;
    const l = await listen(env.t0, { port: 'p' });
    host.xs.inject({ op: 'write', domid: 0, path: /\/data\/vchan\/5\//, code: 'ENOSPC', times: 40 });
    await assert.rejects(connect(env.t5, { port: 'p', domid: 0 }), { code: 'ENOSPC' });
    await until(() => host.held().grants === 0, 2000, 'grants freed');
    host.xs.faults.length = 0;
    host.faults.bindInterdomainError = 'EINVAL';
    await assert.rejects(connect(env.t5, { port: 'p', domid: 0 }), { code: 'EINVAL' });
    await until(() => host.held().grants === 0 && host.held().mappings === 0, 2000, 'offer freed');
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    assert.strictEqual(poolGrantsHeld(env.d0) + poolGrantsHeld(env.d5), 0);
  });

  it('a hostile client (malformed pool nodes, reserved or repeated refs in its grant list) is refused with EPROTO, nothing held', async () => {
    const { host, d5 } = env;
    const l = await listen(env.t0, { port: 'p' });
    const store = new XenStore(d5);
    const list = d5.xen.gntShare(0, 1, false, -1, -1);
    const cases = [
      { 'pool-size': '4097' }, // not whole pages
      { 'pool-size': '4096', 'pool-ref': 'x' },
      { 'pool-size': '4096', 'pool-ref': `${list.refs[0]} ${list.refs[0]}` }, // two list pages for a 2-page region
      { 'pool-size': '4096', 'pool-ref': String(list.refs[0]), refs: [3, 9] }, // reserved ref
      { 'pool-size': '4096', 'pool-ref': String(list.refs[0]), refs: [1000, 1000] }, // one page twice
    ];
    for (const [i, nodes] of cases.entries()) {
      if (nodes.refs) d5.xen.poke(list.mapping, 0, Buffer.from(new Uint32Array(nodes.refs).buffer));
      const req = `${listenPath(0, 'p')}/5-${String(i).padStart(16, '0')}`;
      await store.transaction(async (tx) => {
        await store.write(req, '65536', tx);
        await store.setPerms(req, [{ domid: 5, perm: 'n' }, { domid: 0, perm: 'b' }], tx);
        for (const [k, v] of Object.entries(nodes)) if (k !== 'refs') await store.write(`${req}/${k}`, v, tx);
      });
      await until(async () => (await store.readOptional(req)) === 'EPROTO', 2000, `refusal of case ${i}`);
      await store.rm(req);
    }
    store.close();
    list.mapping.unmap();
    l.close();
    await until(() => host.held().grants === 0, 2000, 'everything freed');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    assert.strictEqual(poolGrantsHeld(env.d0), 0);
  });

  it('a server answering with more than was offered is EPROTO for the client, which frees everything', async () => {
    const { host } = env;
    // A hand-made "xenring server": vchanServer with forged pool nodes.
    const store = new XenStore(env.d0);
    const port = 'forged';
    await store.write(listenPath(0, port), '1');
    await store.setPerms(listenPath(0, port), [{ domid: 0, perm: 'b' }]);
    let started = false;
    const serving = new Promise((resolve) => {
      const w = store.watch(listenPath(0, port), async () => {
        const names = await store.directory(listenPath(0, port)).catch(() => []);
        if (names.length === 0 || started) return;
        started = true;
        const nonce = names[0].split('-')[1];
        (await w).close();
        const link = await vchanServer({
          domid: 5,
          path: `/local/domain/0/data/vchan/5/xenring-${port}-${nonce}`,
          ext: true,
          pool: { setup: { close() {}, link: () => null, dropList() {} }, nodes: [['pool-size', String(2 * MiB)], ['pool-peer-size', '0']] },
        }, env.d0);
        resolve(link);
      }, true);
    });
    await assert.rejects(connect(env.t5, { port, domid: 0 }), { code: 'EPROTO' });
    (await serving).release();
    await store.rm(listenPath(0, port));
    store.close();
    await until(() => host.held().grants === 0 && host.held().mappings === 0, 2000, 'everything freed');
    assert.strictEqual(poolGrantsHeld(env.d5), 0);
  });

  it('a plain vchan pair (no xenring extension) writes and reads no pool node, even when handed one', async () => {
    const { host } = env;
    const vpath = '/local/domain/0/data/vchan/5/plain';
    let closed = 0;
    const plan = { setup: { close: () => closed++, link: () => assert.fail('no pool link without the extension'), dropList() {} }, nodes: [['pool-size', '4096']] };
    const s = await vchanServer({ domid: 5, path: vpath, pool: plan }, env.d0);
    assert.deepStrictEqual(host.xs.get(vpath).children.sort(), ['event-channel', 'ring-ref']);
    const offer = { size: 4096, region: null };
    const c = await vchanClient({ domid: 0, path: vpath, pool: { options: { size: 4096 }, offer } }, env.d5);
    assert.strictEqual(s.pool, null);
    assert.strictEqual(c.pool, null);
    assert.strictEqual(closed, 1, 'the pool handed to a plain server is freed at once');
    c.release();
    s.release();
    await until(() => host.held().grants === 0, 2000, 'grants freed');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });
});
