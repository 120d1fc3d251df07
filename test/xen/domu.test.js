'use strict';
// dom0 <-> domU on real Xen: the dom0 half. Runs only in the lab with
// --domu (XENLAB_DOMU_DOMID set in dom0); test/xen/domu-peer.js is the domU
// half and runs the same numbered steps in the same order.
const assert = require('node:assert');
const path = require('node:path');
const { pump, waitPeerState, run, root, connectRetry, withDomu, domuSkipReason } = require('./helpers');
const dist = path.join(root, 'dist', 'transports', 'xen');
const { vchanServer, vchanClient, xenAvailable } = require(path.join(dist, 'handshake.js'));
const { xenTransport } = require(path.join(dist, 'transport.js'));
const { poolTransfer, xenMappings, settleMappings } = require('./pool_helpers');
const { DEFAULT_XEN_POOL } = require(path.join(root, 'dist', 'pool', 'layout.js'));

const U = Number(process.env.XENLAB_DOMU_DOMID);
const MiB = 1 << 20;
const WAIT = 180000; // the domU boots ~20 s after dom0's command starts
const mine = (name) => `/local/domain/0/data/vchan/${U}/${name}`;
const theirs = (name) => `/local/domain/${U}/data/vchan/0/${name}`;

describe('xen lab: dom0 <-> domU', function () {
  this.timeout(WAIT + 60000);
  before(function () {
    if (!xenAvailable() || !process.env.XENLAB_DOM0 || !Number.isInteger(U) || !process.env.XENLAB_DOMU_DOMID) {
      console.log(`      (skipped: ${domuSkipReason('needs the lab with --domu; run `npm run test:xen`')})`);
      this.skip();
    }
  });

  it('1: dom0 xenring server, domU xenring client: 16 MiB each way verified', withDomu(async () => {
    const s = await vchanServer({ domid: U, path: mine('xr1'), readSize: 65536, writeSize: 65536 });
    await waitPeerState(s, 1, WAIT);
    const t0 = Date.now();
    await pump(s, { send: 16 * MiB, recv: 16 * MiB, timeout: WAIT });
    console.log(`      32 MiB moved (16 each way) in ${Date.now() - t0} ms`);
    s.release();
  }));

  it('2: domU xenring server, dom0 xenring client: 16 MiB each way verified', withDomu(async () => {
    const c = await vchanClient({ domid: U, path: theirs('xr2'), timeout: WAIT });
    await pump(c, { send: 16 * MiB, recv: 16 * MiB });
    c.release();
  }));

  it("3: transport 'xen': dom0 listener accepts 8 connections from the domU", withDomu(async () => {
    const done = [];
    const l = await Promise.resolve(
      xenTransport.listen(
        { port: 7001, domid: U },
        (link) => {
          assert.strictEqual(link.remote.address, String(U));
          done.push(pump(link, { send: 2 * MiB, recv: 2 * MiB }).then(() => link.release()));
        },
        new AbortController().signal,
      ),
    );
    const deadline = Date.now() + WAIT;
    while (done.length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await Promise.all(done);
    l.close();
    assert.strictEqual(done.length, 8);
  }));

  it("4: transport 'xen': dom0 opens 4 connections to a domU listener", withDomu(async () => {
    const deadline = Date.now() + WAIT;
    const links = await Promise.all(Array.from({ length: 4 }, () => connectRetry({ port: 7002, domid: U }, deadline)));
    await Promise.all(links.map((l) => pump(l, { send: 2 * MiB, recv: 2 * MiB })));
    links.forEach((l) => l.release());
  }));

  it('5: interop: libxenvchan client in dom0 -> xenring server in the domU', withDomu(async () => {
    const res = await run('xenlab-vchan', ['client', '--domid', String(U), '--path', theirs('xr5'), '--send', '8M', '--recv', '8M', '--timeout', '180']);
    console.log(`      ${res.out.trim()}`);
    assert.strictEqual(res.code, 0, res.out);
  }));

  it('6: interop: xenring server in dom0 <- libxenvchan client in the domU', withDomu(async () => {
    const s = await vchanServer({ domid: U, path: mine('xr6'), readSize: 65536, writeSize: 65536 });
    await pump(s, { send: 8 * MiB, recv: 8 * MiB, timeout: WAIT });
    s.release();
  }));

  it('7: interop: xenring client in dom0 -> libxenvchan server in the domU', withDomu(async () => {
    const c = await vchanClient({ domid: U, path: `/local/domain/${U}/data/xr7`, timeout: WAIT });
    await pump(c, { send: 8 * MiB, recv: 8 * MiB });
    c.release();
  }));

  it('8: interop: libxenvchan server in dom0 <- xenring client in the domU', withDomu(async () => {
    const res = await run('xenlab-vchan', ['server', '--domid', String(U), '--path', '/local/domain/0/data/xr8', '--send', '8M', '--recv', '8M', '--timeout', '180']);
    console.log(`      ${res.out.trim()}`);
    assert.strictEqual(res.code, 0, res.out);
  }));

  it('9: a domU client process killed with SIGKILL: dom0 server sees cli_live = 0', withDomu(async () => {
    const s = await vchanServer({ domid: U, path: mine('xr9') });
    await waitPeerState(s, 1, WAIT);
    const t0 = Date.now();
    await waitPeerState(s, 0, 30000);
    console.log(`      peer death seen ${Date.now() - t0} ms after connect`);
    s.release();
  }));

  it("11: transport 'xen' with the default pool: 8 MiB by reference each way between dom0 and the domU (every byte checked), grants and mappings back after", withDomu(async () => {
    const start = xenMappings();
    let link = null;
    const l = await Promise.resolve(xenTransport.listen({ port: 7011, domid: U }, (k) => (link = k), new AbortController().signal));
    for (const end = Date.now() + WAIT; link === null; ) {
      if (Date.now() > end) throw new Error('the domU did not connect');
      await new Promise((r) => setTimeout(r, 50));
    }
    l.close();
    assert.strictEqual(link.pool.stats().size, DEFAULT_XEN_POOL);
    const t0 = Date.now();
    await poolTransfer(link, { send: 32, recv: 32, size: 256 * 1024, timeout: WAIT });
    console.log(`      16 MiB by reference (8 each way, 256 KiB payloads, private copies) in ${Date.now() - t0} ms`);
    assert.strictEqual(link.pool.stats().sentByRef, 32);
    assert.strictEqual(link.pool.stats().receivedByRef, 32);
    await new Promise((r) => setTimeout(r, 500)); // the domU takes its last completions first
    link.release();
    assert.deepStrictEqual(await settleMappings(start), start);
  }));
});
