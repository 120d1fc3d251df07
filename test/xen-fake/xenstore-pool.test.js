'use strict';
// Issue 12 item 4: one stuck xenstore reply must not hold up the others.
// The client keeps one request on the wire per xenbus fd (what Linux's device
// takes) and a small pool of fds; these tests stall replies in the fake
// xenstored and check that independent requests, transactions and a whole
// connect/accept go on, that changes of one path keep their order, that the
// pool stays bounded and shrinks back, and that a request can be cancelled.
const assert = require('node:assert');
const path = require('node:path');
const { FakeXenHost } = require('./fake_xen');
const { listen, connect, pump, until, delay, setup, NOTHING_HELD, root } = require('./helpers');
const { XenStore, DEFAULT_MAX_CONNECTIONS } = require(path.join(root, 'transports', 'xen', 'xenstore.js'));

/** The fake xenstored's open connections from `domid` (one per xenbus fd). */
const fdsOf = (host, domid) => [...host.xs.conns].filter((c) => c.domid === domid).length;

/** A promise's state without waiting for it. */
function track(p) {
  const t = { settled: false, value: undefined, error: undefined };
  t.promise = p.then(
    (v) => {
      t.settled = true;
      t.value = v;
      return v;
    },
    (e) => {
      t.settled = true;
      t.error = e;
      return e;
    },
  );
  return t;
}

describe('xen (fake host): xenstore client, no request waits on a stuck one', function () {
  this.timeout(20000);
  let host;
  let xs;
  const open = (options) => (xs = new XenStore(host.domain(5), options));
  beforeEach(() => {
    host = new FakeXenHost();
  });
  afterEach(() => {
    xs?.close();
    xs = null;
    host.close();
  });

  it('independent requests complete while one reply is stuck (one request per fd, as xenbus needs); the stuck one fails alone with ETIMEDOUT', async () => {
    open({ requestTimeout: 3000 });
    await xs.write('data/a', 'A');
    host.xs.inject({ op: 'read', path: /\/data\/a$/, code: null });
    const stuck = track(xs.read('data/a'));
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => xs.write(`data/n${i}`, String(i)).then(() => xs.read(`data/n${i}`))));
    assert.deepStrictEqual(others, Array.from({ length: 20 }, (_, i) => String(i)));
    assert.strictEqual(stuck.settled, false, 'the others did not wait for the stuck reply');
    assert.ok(fdsOf(host, 5) <= DEFAULT_MAX_CONNECTIONS, `bounded: ${fdsOf(host, 5)} fds`);
    await stuck.promise;
    assert.strictEqual(stuck.error?.code, 'ETIMEDOUT');
    assert.strictEqual(await xs.read('data/a'), 'A', 'the client still works');
    assert.strictEqual(xs.outstanding, 0);
    // Idle again: the pool is back to one fd (the stuck one's fd is closed).
    await until(() => fdsOf(host, 5) === 1 && xs.connections === 1, 2000, 'pool back to one fd');
  });

  it('changes of one path (and of its parent or children) keep their order, reads see them; other paths pass them', async () => {
    open();
    host.xs.inject({ op: 'write', path: /\/data\/p$/, delay: 300 });
    const order = [];
    const first = xs.write('data/p', 'first').then(() => order.push('first'));
    const second = xs.write('data/p', 'second').then(() => order.push('second'));
    const read = xs.read('data/p').then((v) => order.push(`read ${v}`));
    const child = xs.write('data/p/child', 'c').then(() => order.push('child'));
    const other = xs.write('data/q', 'q').then(() => order.push('other'));
    await Promise.all([first, second, read, child, other]);
    assert.deepStrictEqual(order, ['other', 'first', 'second', 'read second', 'child']);
    assert.strictEqual(host.xs.get('/local/domain/5/data/p').value, 'second');
    // rm after a slow write of the same node: the node is gone at the end.
    host.xs.inject({ op: 'write', path: /\/data\/r$/, delay: 200 });
    await Promise.all([xs.write('data/r', 'x'), xs.rm('data/r')]);
    assert.strictEqual(host.xs.get('/local/domain/5/data/r'), null);
  });

  it('a transaction whose start never gets a reply holds up only its own scope; each transaction runs on its own fd', async () => {
    open({ requestTimeout: 2000 });
    host.xs.inject({ op: 'tx_start', code: null });
    const stuck = track(xs.transaction(async (tx) => xs.write('data/t1', 'x', tx), 1, 'data/a'));
    // Same scope (they would conflict): waits for the stuck one, then runs.
    const sameScope = track(xs.transaction(async (tx) => xs.write('data/t3', 'z', tx), 1, 'data/a'));
    const done = await xs.transaction(
      async (tx) => {
        await xs.write('data/t2', 'y', tx);
        await xs.setPerms('data/t2', [{ domid: 5, perm: 'n' }], tx);
        return xs.read('data/t2', tx);
      },
      32,
      'data/b',
    );
    assert.strictEqual(sameScope.settled, false, 'a transaction of the same scope waits');
    assert.strictEqual(done, 'y');
    assert.strictEqual(host.xs.get('/local/domain/5/data/t2').value, 'y');
    assert.strictEqual(stuck.settled, false, 'the second transaction did not wait for the first');
    await stuck.promise;
    assert.strictEqual(stuck.error?.code, 'ETIMEDOUT');
    assert.strictEqual(host.xs.get('/local/domain/5/data/t1'), null);
    await sameScope.promise;
    assert.strictEqual(sameScope.error, undefined);
    assert.strictEqual(host.xs.get('/local/domain/5/data/t3').value, 'z');
    await until(() => host.xs.openTransactions(5) === 0, 2000, 'no transaction left open');
  });

  it('bounded: 16 stuck requests use at most maxConnections fds, time out, and the pool recovers and shrinks back', async () => {
    open({ requestTimeout: 300, maxConnections: 4 });
    await xs.read('domid');
    host.xs.inject({ op: 'read', path: /\/data\/slow$/, code: null, times: 16 });
    let most = 0;
    const sample = setInterval(() => (most = Math.max(most, fdsOf(host, 5))), 5);
    const results = await Promise.all(Array.from({ length: 16 }, () => xs.read('data/slow').catch((e) => e.code)));
    clearInterval(sample);
    assert.deepStrictEqual(new Set(results), new Set(['ETIMEDOUT']));
    assert.ok(most <= 4, `at most 4 fds at once (saw ${most})`);
    await xs.write('data/slow', 'fine');
    assert.strictEqual(await xs.read('data/slow'), 'fine');
    await until(() => fdsOf(host, 5) === 1, 2000, 'pool back to one fd');
  });

  it('cancellable: an aborted request rejects at once with the reason, whether on the wire or still queued', async () => {
    open({ requestTimeout: 10000, maxConnections: 1 });
    await xs.read('domid');
    host.xs.inject({ op: 'read', path: /\/data\/held$/, code: null });
    const onWire = new AbortController();
    const queued = new AbortController();
    const a = track(xs.read('data/held', 0, { signal: onWire.signal }));
    const b = track(xs.read('domid', 0, { signal: queued.signal })); // behind it: one fd, one request at a time
    await delay(50);
    assert.strictEqual(b.settled, false, 'queued behind the held request');
    const reason = new Error('given up');
    queued.abort(reason);
    await b.promise;
    assert.strictEqual(b.error, reason);
    onWire.abort(reason);
    await a.promise;
    assert.strictEqual(a.error, reason);
    await assert.rejects(xs.read('domid', 0, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    // The held fd takes no more work; a fresh one serves the next request.
    assert.strictEqual(await xs.read('domid'), '5');
    assert.strictEqual(xs.outstanding, 0);
  });

  it('a watch lives on its fd: events keep coming while other requests are stuck, and close() unwatches there', async () => {
    open({ requestTimeout: 3000 });
    const seen = [];
    const w = await xs.watch('/local/domain/5/data/w', (p) => seen.push(p));
    host.xs.inject({ op: 'read', path: /\/data\/stuck$/, code: null, times: 3 });
    const stuck = Array.from({ length: 3 }, () => track(xs.read('data/stuck')));
    await xs.write('data/w/x', '1');
    await until(() => seen.includes('/local/domain/5/data/w/x'), 2000, 'watch event');
    w.close();
    await until(() => host.xs.log.some((e) => e.op === 'unwatch'), 2000, 'unwatch sent');
    const before = seen.length;
    await xs.write('data/w/y', '2');
    await delay(50);
    assert.strictEqual(seen.length, before, 'no event after close');
    assert.ok(stuck.every((s) => !s.settled));
    await Promise.all(stuck.map((s) => s.promise));
  });
});

describe('xen (fake host): connect, accept and close go on while xenstore replies are stuck', function () {
  this.timeout(20000);
  let env;
  beforeEach(() => {
    env = setup();
  });
  afterEach(() => env.host.close());

  it('a full connect/accept/echo/close completes while an unrelated request of each domain gets no reply', async () => {
    const { host, t0, t5, d0, d5 } = env;
    const { xenStoreFor } = require(path.join(root, 'transports', 'xen', 'xenstore.js'));
    const xs0 = xenStoreFor(d0);
    const xs5 = xenStoreFor(d5);
    await Promise.all([xs0.write('data/stuck', 's'), xs5.write('data/stuck', 's')]);
    host.xs.inject({ op: 'read', path: /\/data\/stuck$/, code: null, times: 2 });
    const stuck = [track(xs0.read('data/stuck')), track(xs5.read('data/stuck'))];
    const l = await listen(t0, { port: 'busy' });
    const c = await connect(t5, { port: 'busy', domid: 0 });
    const s = await l.nextLink();
    const [rc, rs] = await Promise.all([pump(c, { send: 65536, recv: 65536 }), pump(s, { send: 65536, recv: 65536 })]);
    assert.deepStrictEqual([rc, rs], [{ sent: 65536, recv: 65536 }, { sent: 65536, recv: 65536 }]);
    c.release();
    s.release();
    l.close();
    await until(() => !host.xs.get('/local/domain/0/data/xenring/busy'), 2000, 'listener node removed');
    assert.ok(stuck.every((t) => !t.settled), 'all of it happened while the stuck replies were outstanding');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    // Not waiting 10 s for the stuck ones: the client goes with the host.
    xs0.close();
    xs5.close();
    await Promise.all(stuck.map((t) => t.promise));
  });
});
