'use strict';
// The `transport: 'xen'` accept protocol against a fake Xen host (no Xen
// needed): real handshake and xenstore client code, real shared memory and
// fds; the fake counts every grant, mapping, port and channel fd so each path
// is checked to release everything.
const assert = require('node:assert');
const path = require('node:path');
const { listen, connect, pump, delay, until, setup, NOTHING_HELD, root } = require('./helpers');
const { listenPath, grantsFor, requestTrusted } = require(path.join(root, 'transports', 'xen', 'transport.js'));
const { XenStore } = require(path.join(root, 'transports', 'xen', 'xenstore.js'));

const NONCE = () => require('node:crypto').randomBytes(8).toString('hex');

/** Writes a request node as a client does: value and permissions in one transaction. */
function writeRequest(store, req, value, perms) {
  return store.transaction(async (tx) => {
    await store.write(req, value, tx);
    await store.setPerms(req, perms, tx);
  });
}

/** A raw xenstore client of domain `domid` on the fake host (a hostile or hand-driven peer). */
function rawStore(host, domid) {
  return new XenStore(host.domain(domid));
}

describe('xen (fake host): accept protocol', function () {
  this.timeout(20000);
  let env;
  const extra = [];
  beforeEach(() => {
    env = setup();
  });
  afterEach(() => {
    for (const x of extra.splice(0)) x.close();
    env.host.close();
  });

  it('connects, moves 1 MiB each way (every byte checked), and releases every grant, port, fd and node', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'echo' });
    const c = await connect(t5, { port: 'echo', domid: 0 });
    const s = await l.nextLink();
    assert.deepStrictEqual(c.remote, { address: '0', family: 'xen', port: 'echo' });
    assert.deepStrictEqual(s.remote, { address: '5', family: 'xen', port: 'echo' });
    const [rc, rs] = await Promise.all([pump(c, { send: 1 << 20, recv: 1 << 20 }), pump(s, { send: 1 << 20, recv: 1 << 20 })]);
    assert.deepStrictEqual([rc, rs], [{ sent: 1 << 20, recv: 1 << 20 }, { sent: 1 << 20, recv: 1 << 20 }]);
    // Connected: the vchan nodes and the request are gone already.
    await until(() => host.xs.list('/local/domain/0/data/vchan/5').length === 1, 2000, 'vchan nodes removed');
    assert.deepStrictEqual(host.xs.get(listenPath(0, 'echo')).children, []);
    c.release();
    await until(() => (s.endpoint.peerState() & 0xff) === 0, 2000, 'peer death seen by the server');
    s.release();
    l.close();
    await until(() => !host.xs.get(listenPath(0, 'echo')), 2000, 'listener node removed');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    assert.deepStrictEqual(host.xs.list('/local/domain/5/data'), ['/local/domain/5/data']);
  });

  it('refuses at once when nobody listens, and when the listener is for another domain (refusal in the client node, not the server quota)', async () => {
    const { host, t0, t5 } = env;
    await assert.rejects(connect(t5, { port: 'nobody', domid: 0 }), { code: 'ECONNREFUSED' });
    const l = await listen(t0, { port: 'only7', domid: 7 });
    const owned = host.xs.ownedBy(0);
    const t = Date.now();
    await assert.rejects(connect(t5, { port: 'only7', domid: 0, timeout: 5000 }), { code: 'ECONNREFUSED' });
    assert.ok(Date.now() - t < 2000, 'refused promptly, not by the timeout');
    assert.strictEqual(host.xs.ownedBy(0), owned, 'the refusal took no node of the server');
    await until(() => host.xs.get(listenPath(0, 'only7')).children.length === 0, 2000, 'request deleted by the client');
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it("caps the ring size at the listener's: a client asking 1 MiB gets 8 KiB rings (5 grants)", async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'small', ringSize: 8192, pool: { size: 0 } }); // ring grants only
    const c = await connect(t5, { port: 'small', domid: 0, ringSize: 1 << 20 });
    const s = await l.nextLink();
    assert.strictEqual(c.endpoint.info().rxSize, 8192);
    assert.strictEqual(s.endpoint.info().rxSize, 8192);
    assert.strictEqual(host.liveGrants(0), grantsFor(8192));
    assert.strictEqual(grantsFor(8192), 5);
    // A smaller request than the listener's is honoured.
    const c2 = await connect(t5, { port: 'small', domid: 0, ringSize: 4096 });
    const s2 = await l.nextLink();
    assert.strictEqual(s2.endpoint.info().txSize, 4096);
    for (const k of [c, s, c2, s2]) k.release();
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('creates the request writable by its client only: another domain cannot rewrite it', async () => {
    const { host, t0 } = env;
    const l = await listen(t0, { port: 'p' });
    // Hold the accept: no reply to the server's first get_perms of a request.
    host.xs.inject({ op: 'get_perms', domid: 0, path: /\/xenring\/p\/5-/, code: null });
    const t5 = env.t5;
    const pending = connect(t5, { port: 'p', domid: 0, timeout: 3000 }).catch((e) => e);
    const name = await until(() => host.xs.get(listenPath(0, 'p')).children[0], 2000, 'request');
    const req = `${listenPath(0, 'p')}/${name}`;
    assert.deepStrictEqual(host.xs.get(req).perms, [{ domid: 5, perm: 'n' }, { domid: 0, perm: 'b' }]);
    const evil = rawStore(host, 9);
    extra.push(evil);
    await assert.rejects(evil.write(req, '1048576'), { code: 'EACCES' });
    await assert.rejects(evil.rm(req), { code: 'EACCES' });
    assert.strictEqual(host.xs.get(req).value, '65536');
    l.close();
    await pending;
  });

  it("publishes the vchan without a transaction: the directory gets the vchan's permissions first, every node inherits them, event-channel comes last", async () => {
    const { host, t0 } = env;
    const l = await listen(t0, { port: 'p' });
    // A client that asks and never maps: the vchan stays published.
    const c5 = rawStore(host, 5);
    extra.push(c5);
    const nonce = NONCE();
    await writeRequest(c5, `${listenPath(0, 'p')}/5-${nonce}`, '65536', [{ domid: 5, perm: 'n' }, { domid: 0, perm: 'b' }]);
    const vpath = `/local/domain/0/data/vchan/5/xenring-p-${nonce}`;
    await until(() => host.xs.get(`${vpath}/event-channel`), 2000, 'vchan published');
    const want = [{ domid: 0, perm: 'n' }, { domid: 5, perm: 'r' }];
    assert.deepStrictEqual(host.xs.get(vpath).perms, want);
    for (const name of host.xs.get(vpath).children) assert.deepStrictEqual(host.xs.get(`${vpath}/${name}`).perms, want, name);
    const mine = host.xs.log.filter((e) => e.domid === 0 && e.path && e.path.startsWith(vpath));
    assert.deepStrictEqual(mine.slice(0, 2).map((e) => [e.op, e.path]), [['write', vpath], ['set_perms', vpath]]);
    assert.deepStrictEqual(mine.filter((e) => e.op === 'set_perms').length, 1, 'one set_perms, on the directory');
    assert.strictEqual(mine.filter((e) => e.op === 'write').pop().path, `${vpath}/event-channel`);
    assert.ok(!host.xs.log.some((e) => e.domid === 0 && e.op === 'tx_start' && host.xs.log.indexOf(e) > host.xs.log.indexOf(mine[0])), 'no transaction');
    // Another domain cannot read it.
    const evil = rawStore(host, 9);
    extra.push(evil);
    await assert.rejects(evil.read(`${vpath}/ring-ref`), { code: 'EACCES' });
    l.close();
    await until(() => host.xs.list('/local/domain/0/data/vchan/5').length <= 1, 3000, 'vchan removed at close');
  });

  it('acts only on requests owned by the domain they name and writable by nobody else', async () => {
    const { host, t0 } = env;
    const l = await listen(t0, { port: 'p' });
    const evil = rawStore(host, 9);
    extra.push(evil);
    const lp = listenPath(0, 'p');
    // Domain 9 claims to be domain 5.
    await evil.write(`${lp}/5-${NONCE()}`, '65536');
    // Domain 9's own request, but left writable by everyone.
    const open = `${lp}/9-${NONCE()}`;
    await writeRequest(evil, open, '65536', [{ domid: 9, perm: 'b' }]);
    await delay(200);
    assert.strictEqual(host.liveGrants(0), 0, 'nothing was granted for either');
    assert.deepStrictEqual(host.xs.list('/local/domain/0/data/vchan'), []);
    await until(() => host.xs.get(lp).children.length === 0, 2000, 'untrusted requests removed');
    assert.strictEqual(requestTrusted([{ domid: 5, perm: 'n' }, { domid: 0, perm: 'b' }], 5, 0), true);
    assert.strictEqual(requestTrusted([{ domid: 5, perm: 'r' }], 5, 0), true);
    assert.strictEqual(requestTrusted([{ domid: 0, perm: 'b' }], 5, 0), false);
    assert.strictEqual(requestTrusted([{ domid: 5, perm: 'n' }, { domid: 9, perm: 'w' }], 5, 0), false);
    assert.strictEqual(requestTrusted([{ domid: 5, perm: 'w' }], 5, 0), false);
    l.close();
  });

  it('a privileged (dom0) client of a domU listener owns its request (it would otherwise inherit the listener)', async () => {
    // The held reply below must not hold the listener's other requests (its close): several in flight.
    env.host.close();
    env = setup({ storeOptions: { maxInFlight: 4 } });
    const { host, t0, t5 } = env;
    const l = await listen(t5, { port: 'up' });
    host.xs.inject({ op: 'get_perms', domid: 5, path: /\/xenring\/up\/0-/, code: null });
    const pending = connect(t0, { port: 'up', domid: 5, timeout: 3000 }).catch((e) => e);
    const name = await until(() => host.xs.get(listenPath(5, 'up')).children[0], 2000, 'request');
    assert.deepStrictEqual(host.xs.get(`${listenPath(5, 'up')}/${name}`).perms, [{ domid: 0, perm: 'n' }, { domid: 5, perm: 'b' }]);
    l.close();
    assert.strictEqual((await pending).code, 'ECONNREFUSED', 'the listener closing refuses waiting clients at once');
    // And the honest path works both ways round.
    const l2 = await listen(t5, { port: 'up2' });
    const c = await connect(t0, { port: 'up2', domid: 5 });
    const s = await l2.nextLink();
    await Promise.all([pump(c, { send: 100000, recv: 100000 }), pump(s, { send: 100000, recv: 100000 })]);
    c.release();
    s.release();
    l2.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('grant flood: caps pending offers per domain, defers the rest (refused with EAGAIN past the backlog), keeps room for other domains', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'flood', maxPendingPerDomain: 3, maxPending: 8, backlog: 5, timeout: 10000 });
    const lp = listenPath(0, 'flood');
    const evil = rawStore(host, 9);
    extra.push(evil);
    const names = [];
    for (let i = 0; i < 10; i++) {
      const name = `9-${NONCE()}`;
      names.push(name);
      await writeRequest(evil, `${lp}/${name}`, '65536', [{ domid: 9, perm: 'n' }, { domid: 0, perm: 'b' }]);
    }
    // 3 offers published for domain 9 (never mapped), 5 deferred (the backlog), 2 refused in its own nodes.
    await until(() => names.filter((n) => host.xs.get(`${lp}/${n}`)?.value === 'EAGAIN').length === 2, 3000, '2 refusals');
    await delay(100);
    assert.strictEqual(names.filter((n) => host.xs.get(`${lp}/${n}`)?.value === 'EAGAIN').length, 2);
    assert.strictEqual(host.liveGrants(0), 3 * grantsFor(65536));
    // An honest domain still gets in, and moves data.
    const c = await connect(t5, { port: 'flood', domid: 0 });
    const s = await l.nextLink();
    await Promise.all([pump(c, { send: 65536, recv: 65536 }), pump(s, { send: 65536, recv: 65536 })]);
    c.release();
    s.release();
    // Domain 9 gives up: deleting its requests frees its offers promptly, long before the 10 s timeout.
    const t = Date.now();
    for (const n of names) await evil.rm(`${lp}/${n}`);
    await until(() => host.liveGrants(0) === 0, 2000, 'abandoned offers freed');
    // Their nodes go by their own xenstore requests, which may finish after the grants.
    const vchanDir = '/local/domain/0/data/vchan/9';
    await until(() => host.xs.list(vchanDir).length === 1, 2000, "abandoned offers' nodes removed");
    assert.ok(Date.now() - t < 2000);
    assert.deepStrictEqual(host.xs.list(vchanDir), [vchanDir]);
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('a burst from one honest domain beyond its pending cap waits its turn instead of being refused', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'burst', maxPendingPerDomain: 1 });
    const conns = await Promise.all(Array.from({ length: 6 }, () => connect(t5, { port: 'burst', domid: 0 })));
    const accepted = [];
    for (let i = 0; i < 6; i++) accepted.push(await l.nextLink());
    await Promise.all([...conns, ...accepted].map((k) => pump(k, { send: 10000, recv: 10000 })));
    for (const k of [...conns, ...accepted]) k.release();
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('caps offers in grants too: one 1 MiB offer at a time when the budget is smaller', async () => {
    const { host, t0 } = env;
    const l = await listen(t0, { port: 'big', ringSize: 1 << 20, maxPendingGrants: 600, maxPendingPerDomain: 8 });
    const lp = listenPath(0, 'big');
    const evil = rawStore(host, 9);
    extra.push(evil);
    for (let i = 0; i < 3; i++) {
      const name = `9-${NONCE()}`;
      await writeRequest(evil, `${lp}/${name}`, '', [{ domid: 9, perm: 'n' }, { domid: 0, perm: 'b' }]);
    }
    await until(() => host.liveGrants(0) === grantsFor(1 << 20), 3000, 'one offer');
    await delay(100);
    assert.strictEqual(host.liveGrants(0), grantsFor(1 << 20), 'the other two wait (deferred)');
    l.close();
    await until(() => host.liveGrants(0) === 0, 2000, 'offer freed by close');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('a client that maps, connects and deletes its request before the listener has its own publish answered: the accept completes', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'quick' });
    // The listener's last publish (event-channel) is done at once, so the
    // client maps and connects, but its reply reaches the listener late: the
    // client's request is gone before the listener knows its vchan is up.
    host.xs.inject({ op: 'write', path: /\/event-channel$/, domid: 0, replyDelay: 300 });
    const c = await connect(t5, { port: 'quick', domid: 0 });
    await until(() => !host.xs.get(listenPath(0, 'quick')).children.length, 2000, 'request deleted by the client');
    const s = await l.nextLink();
    const [rc, rs] = await Promise.all([pump(c, { send: 256 << 10, recv: 256 << 10 }), pump(s, { send: 256 << 10, recv: 256 << 10 })]);
    assert.deepStrictEqual([rc, rs], [{ sent: 256 << 10, recv: 256 << 10 }, { sent: 256 << 10, recv: 256 << 10 }]);
    c.release();
    await until(() => (s.endpoint.peerState() & 0xff) === 0, 2000, 'peer death seen by the server');
    s.release();
    l.close();
    await until(() => !host.xs.get(listenPath(0, 'quick')), 2000, 'listener node removed');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('accept timeout: a client that never maps its vchan loses it (grants, channel, nodes freed)', async () => {
    const { host, t0 } = env;
    const l = await listen(t0, { port: 'slow', timeout: 150 });
    const lp = listenPath(0, 'slow');
    const evil = rawStore(host, 9);
    extra.push(evil);
    const name = `9-${NONCE()}`;
    await writeRequest(evil, `${lp}/${name}`, '8192', [{ domid: 9, perm: 'n' }, { domid: 0, perm: 'b' }]);
    await until(() => host.liveGrants(0) > 0, 2000, 'offer published');
    await until(() => host.liveGrants(0) === 0 && host.ports.size === 0, 2000, 'offer dropped');
    await until(() => !host.xs.get(`${lp}/${name}`), 2000, 'request removed');
    assert.deepStrictEqual(host.xs.list('/local/domain/0/data/vchan/9'), ['/local/domain/0/data/vchan/9']);
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('connect timeout (ETIMEDOUT) when the listener never answers; the request is deleted', async () => {
    const { host, t5 } = env;
    // A listener node with nobody behind it (e.g. a hung server).
    const d0 = rawStore(host, 0);
    extra.push(d0);
    await d0.write(listenPath(0, 'hung'), '1');
    await d0.setPerms(listenPath(0, 'hung'), [{ domid: 0, perm: 'b' }]);
    await assert.rejects(connect(t5, { port: 'hung', domid: 0, timeout: 150 }), { code: 'ETIMEDOUT' });
    await until(() => host.xs.get(listenPath(0, 'hung')).children.length === 0, 2000, 'request deleted');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('quota errors: the client cannot create its request (ENOSPC / EQUOTA), nothing is left behind', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'q' });
    host.xs.inject({ op: 'write', domid: 5, path: /\/xenring\/q\//, code: 'EQUOTA' });
    await assert.rejects(connect(t5, { port: 'q', domid: 0 }), { code: 'ENOSPC' });
    host.xs.quota = host.xs.ownedBy(5); // domain 5 may not create one more node
    await assert.rejects(connect(t5, { port: 'q', domid: 0 }), { code: 'ENOSPC' });
    host.xs.quota = 1000;
    assert.deepStrictEqual(host.xs.get(listenPath(0, 'q')).children, []);
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('server-side failures refuse the client with their code and release what was taken', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'f' });
    // gntalloc exhausted
    host.faults.gntShareError = 'ENOSPC';
    await assert.rejects(connect(t5, { port: 'f', domid: 0 }), { code: 'ENOSPC' });
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    // xenstore refuses the vchan nodes (quota) after grants and a port were taken
    host.xs.inject({ op: 'write', domid: 0, path: /\/data\/vchan\/5\//, code: 'ENOSPC', times: 40 });
    await assert.rejects(connect(t5, { port: 'f', domid: 0 }), { code: 'ENOSPC' });
    await until(() => host.held().grants === 0, 2000, 'grants freed');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    host.xs.faults.length = 0;
    // the client cannot bind the channel: the client fails, the server drops the offer
    host.faults.bindInterdomainError = 'EINVAL';
    await assert.rejects(connect(t5, { port: 'f', domid: 0 }), { code: 'EINVAL' });
    await until(() => host.held().grants === 0 && host.held().ports === 0, 2000, 'offer freed');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    // and then it works
    const c = await connect(t5, { port: 'f', domid: 0 });
    const s = await l.nextLink();
    c.release();
    s.release();
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    assert.deepStrictEqual(host.xs.list('/local/domain/0/data/vchan/5'), ['/local/domain/0/data/vchan/5']);
  });

  it('gntdev EAGAIN is retried on timers (the loop keeps running); a map that never succeeds fails in ~1 s and frees both sides', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'g' });
    host.faults.gntMapEagain = 5;
    let ticks = 0;
    const iv = setInterval(() => ticks++, 1);
    const c = await connect(t5, { port: 'g', domid: 0 });
    const s = await l.nextLink();
    assert.strictEqual(host.faults.gntMapEagain, 0);
    c.release();
    s.release();
    host.faults.gntMapEagain = 1e9;
    ticks = 0;
    const t = Date.now();
    await assert.rejects(connect(t5, { port: 'g', domid: 0 }), { code: 'EAGAIN' });
    const took = Date.now() - t;
    clearInterval(iv);
    host.faults.gntMapEagain = 0;
    assert.ok(took >= 900 && took < 5000, `gave up after ${took} ms`);
    assert.ok(ticks > 20, `the event loop ran meanwhile (${ticks} timer ticks)`);
    await until(() => host.held().grants === 0, 2000, 'offer freed after the client gave up');
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('a listener whose xenstore connection dies reports it through onError', async () => {
    const { host, t0 } = env;
    let reported = null;
    await listen(t0, { port: 'w' }, { onError: (e) => (reported = e) });
    host.xs.disconnect(0);
    await until(() => reported, 2000, 'onError');
    assert.ok(['ECONNRESET', 'EIO'].includes(reported.code), reported.code);
    // A fresh client is opened for the next use: listening again works.
    const l2 = await listen(t0, { port: 'w2' });
    const c = await connect(env.t5, { port: 'w2', domid: 0 });
    (await l2.nextLink()).release();
    c.release();
    l2.close();
  });

  it('reads a listing larger than one reply with XS_DIRECTORY_PART and accepts every request', async () => {
    env.host.close();
    env = setup({ partMax: 80 });
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'many', maxPendingPerDomain: 16 });
    const conns = await Promise.all(Array.from({ length: 12 }, () => connect(t5, { port: 'many', domid: 0 })));
    const accepted = [];
    for (let i = 0; i < 12; i++) accepted.push(await l.nextLink());
    assert.ok(host.xs.log.filter((e) => e.op === 'directory_part' && e.path === listenPath(0, 'many')).length > 1);
    for (const k of [...conns, ...accepted]) k.release();
    l.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  it('remembers request names it cannot read instead of re-reading them on every change', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'r' });
    const lp = listenPath(0, 'r');
    const evil = rawStore(host, 9);
    extra.push(evil);
    const name = `9-${NONCE()}`;
    await writeRequest(evil, `${lp}/${name}`, '65536', [{ domid: 9, perm: 'n' }]);
    // Dom0's listener is privileged here (it can read anything); make the server a domU to test this.
    l.close();
    const l5 = await listen(t5, { port: 'r' });
    const lp5 = listenPath(5, 'r');
    const name5 = `9-${NONCE()}`;
    await writeRequest(evil, `${lp5}/${name5}`, '65536', [{ domid: 9, perm: 'n' }]);
    const reads = () => host.xs.log.filter((e) => e.domid === 5 && e.path === `${lp5}/${name5}`).length;
    // xenstored sends no watch event for a node the watcher cannot read: the
    // listener meets the name on its next scan, caused here by an honest client.
    const honest = async () => {
      const c = await connect(t0, { port: 'r', domid: 5 });
      (await l5.nextLink()).release();
      c.release();
    };
    await honest();
    await until(() => reads() >= 1, 2000, 'first look');
    const first = reads();
    for (let i = 0; i < 3; i++) {
      const c = await connect(t0, { port: 'r', domid: 5 });
      (await l5.nextLink()).release();
      c.release();
    }
    assert.strictEqual(reads(), first, 'the unreadable name was not read again');
    l5.close();
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });
});
