'use strict';
// The xs_wire client (lib/transports/xen/xenstore.ts) against the fake
// xenstored (its fd pool: xenstore-pool.test.js): requests in flight together, per-request timeouts, writes that
// meet a full device, XS_DIRECTORY_PART, and a dying connection.
const assert = require('node:assert');
const path = require('node:path');
const { FakeXenHost } = require('./fake_xen');
const { until, delay, root } = require('./helpers');
const { XenStore } = require(path.join(root, 'transports', 'xen', 'xenstore.js'));

describe('xen (fake host): xenstore client', function () {
  this.timeout(20000);
  let host;
  let xs;
  const open = (options) => (xs = new XenStore(host.domain(5), options));
  beforeEach(() => {
    host = new FakeXenHost({ partMax: 64 });
  });
  afterEach(() => {
    xs?.close();
    xs = null;
    host.close();
  });

  it('keeps several requests in flight where allowed: one stuck reply times out alone (ETIMEDOUT), the others complete', async () => {
    // The others' completion is compared with the stuck one's end, not with
    // a clock: a fixed "< 250 ms" failed whenever the host stalled the loop.
    open({ requestTimeout: 1000, maxInFlight: 8 });
    await xs.write('data/a', 'A');
    host.xs.inject({ op: 'read', path: /\/data\/a$/, code: null });
    const t = Date.now();
    let stuckSettled = false;
    const stuck = xs.read('data/a').then(
      () => 'resolved',
      (e) => e,
    ).finally(() => (stuckSettled = true));
    // Issued after the stuck one, answered while it still waits (it does not hold them up).
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => xs.write(`data/n${i}`, String(i)).then(() => stuckSettled)));
    assert.deepStrictEqual(others.filter(Boolean), [], 'a request issued after the stuck one waited for its timeout');
    const err = await stuck;
    assert.strictEqual(err.code, 'ETIMEDOUT');
    assert.ok(Date.now() - t >= 990, `timed out after ${Date.now() - t} ms, before the 1000 ms bound`);
    assert.strictEqual(await xs.read('data/a'), 'A', 'the client still works');
    assert.strictEqual(xs.outstanding, 0);
  });

  it('ends a transaction whose start reply came after its timeout (no transaction slot leaks)', async () => {
    open({ requestTimeout: 100 });
    host.xs.inject({ op: 'tx_start', delay: 250 });
    await assert.rejects(
      xs.transaction(async (tx) => xs.write('data/t', 'x', tx), 1),
      { code: 'ETIMEDOUT' },
    );
    await delay(300);
    await until(() => host.xs.openTransactions(5) === 0, 2000, 'late transaction ended');
    assert.strictEqual(host.xs.get('/local/domain/5/data/t'), null);
    await xs.transaction(async (tx) => xs.write('data/t', 'y', tx));
    assert.strictEqual(host.xs.get('/local/domain/5/data/t').value, 'y');
  });

  it('a full device (EAGAIN on write) delays requests instead of failing them', async () => {
    open({ requestTimeout: 10000, maxInFlight: 1000, maxConnections: 1 });
    await xs.read('domid');
    host.xs.pause(5);
    const value = 'v'.repeat(3000);
    const writes = Array.from({ length: 200 }, (_, i) => xs.write(`data/w${i}`, value + i));
    await delay(100);
    // 600 KB queued: more than a socket buffer holds, so some writes met EAGAIN.
    assert.ok(host.xenbusEagain > 0, 'the device was full');
    host.xs.resume(5);
    await Promise.all(writes);
    for (let i = 0; i < 200; i += 37) assert.strictEqual(host.xs.get(`/local/domain/5/data/w${i}`).value, value + i);
  });

  it('reads a long listing in parts (XS_DIRECTORY_PART), and falls back to XS_DIRECTORY', async () => {
    open();
    const names = Array.from({ length: 40 }, (_, i) => `child-${i}`);
    for (const n of names) await xs.write(`data/dir/${n}`, '');
    const all = await xs.directoryAll('/local/domain/5/data/dir');
    assert.deepStrictEqual(all, names);
    assert.ok(host.xs.log.filter((e) => e.op === 'directory_part').length >= 5);
    host.xs.inject({ op: 'directory_part', code: 'ENOSYS' });
    assert.deepStrictEqual(await xs.directoryAll('/local/domain/5/data/dir'), names);
    assert.deepStrictEqual(await xs.directoryAll('/local/domain/5/data'), ['dir']);
  });

  it('a dead connection fails every pending request and tells every watch', async () => {
    open({ requestTimeout: 5000 });
    const errors = [];
    await xs.watch('/local/domain/5/data', () => {}, false, (e) => errors.push(e));
    host.xs.inject({ op: 'read', code: null });
    const pending = xs.read('domid').catch((e) => e);
    await delay(20);
    host.xs.disconnect(5);
    const err = await pending;
    assert.ok(['ECONNRESET', 'EIO'].includes(err.code), err.code);
    await until(() => errors.length === 1, 2000, 'watch error');
    await assert.rejects(xs.read('domid'), { code: 'ECONNRESET' });
  });

  it('maps xenstore error strings to coded errors', async () => {
    open();
    await assert.rejects(xs.read('data/missing'), { code: 'ENOENT', syscall: 'xenstore read' });
    await assert.rejects(xs.read('/local/domain/0/domid'), { code: 'EACCES' });
    await assert.rejects(xs.setPerms('data', [{ domid: 7, perm: 'n' }]), { code: 'EPERM' });
  });
});
