'use strict';
// The Xen transport on real Xen, inside one domain (dom0 grants to itself and
// maps its own grants, which the lab supports). Skips with a reason where
// the Xen devices are not usable (any host that is not a Xen domain).
const assert = require('node:assert');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { pump, waitPeerState, run, root, ownDomidOrSkip, vchanToolOrSkip } = require('./helpers');
const dist = path.join(root, 'dist', 'transports', 'xen');
const { vchanServer, vchanClient } = require(path.join(dist, 'handshake.js'));
const { xenTransport, listenPath } = require(path.join(dist, 'transport.js'));
const { xenStore } = require(path.join(dist, 'xenstore.js'));
const { xen } = require(path.join(dist, 'native_xen.js'));

const MiB = 1 << 20;
let self;
let seq = 0;
const vpath = () => `/local/domain/${self}/data/vchan/${self}/t${process.pid}-${++seq}`;

function listen(req, onLink) {
  return Promise.resolve(xenTransport.listen(req, onLink, new AbortController().signal));
}

function connect(req) {
  return xenTransport.connect(req, new AbortController().signal);
}

function spawnPeer(args) {
  const child = spawn(process.execPath, [path.join(__dirname, 'peer.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`peer exited early (${code})`)));
  });
  return { child, ready };
}

/** A request as a client writes it: owned by us, nobody else may write it (one transaction). */
async function writeRequest(xs, port, nonce, value) {
  const req = `${listenPath(self, port)}/${self}-${nonce}`;
  await xs.transaction(async (tx) => {
    await xs.write(req, value, tx);
    await xs.setPerms(req, [{ domid: self, perm: 'n' }], tx);
  });
  return req;
}

const exited = (child) => new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.once('exit', r)));

describe('xen lab: vchan within one domain', function () {
  this.timeout(180000);
  before(async function () {
    self = await ownDomidOrSkip(this);
  });

  it('moves verified data both ways at every ring order (10..20)', async () => {
    const cases = [
      [1024, 2048], [2048, 1024], [2048, 4096], [4096, 2048], [4096, 4096], [8192, 8192], [16384, 16384],
      [32768, 32768], [65536, 65536], [131072, 131072], [262144, 262144], [524288, 524288], [MiB, MiB], [MiB, 1024],
    ];
    const rows = [];
    for (const [readSize, writeSize] of cases) {
      const p = vpath();
      const s = await vchanServer({ domid: self, path: p, readSize, writeSize });
      const c = await vchanClient({ domid: self, path: p });
      const si = s.endpoint.info();
      // Small rings cost one wake-up per ring-full: keep their runs short under emulation.
      const small = Math.min(si.rxSize, si.txSize);
      const n = Math.max(si.rxSize, si.txSize) < 4096 ? 256 * 1024 : small < 8192 ? MiB : 4 * MiB;
      const t0 = process.hrtime.bigint();
      await Promise.all([pump(s, { send: n, recv: n }), pump(c, { send: n, recv: n })]);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      rows.push(`orders L${Math.log2(si.rxSize)}/R${Math.log2(si.txSize)}: ${n >> 10} KiB each way ok in ${ms.toFixed(0)} ms`);
      assert.strictEqual(c.endpoint.info().rxSize, si.txSize);
      c.release();
      s.release();
    }
    console.log(rows.map((r) => `      ${r}`).join('\n'));
  });

  it('interop: xenring server, libxenvchan client (xenlab-vchan), several ring layouts', async function () {
    await vchanToolOrSkip(this);
    for (const [readSize, writeSize, n] of [[1024, 2048, 256 * 1024], [2048, 1024, 256 * 1024], [4096, MiB, 4 * MiB], [65536, 65536, 16 * MiB], [MiB, MiB, 16 * MiB]]) {
      const p = vpath();
      const s = await vchanServer({ domid: self, path: p, readSize, writeSize });
      const [res] = await Promise.all([
        run('xenlab-vchan', ['client', '--domid', String(self), '--path', p, '--recv', String(n), '--send', String(n), '--timeout', '60']),
        pump(s, { send: n, recv: n }),
      ]);
      console.log(`      ${res.out.trim()}`);
      assert.strictEqual(res.code, 0, res.out);
      assert.match(res.out, new RegExp(`client OK .*sent=${n} recv=${n}`));
      s.release();
    }
  });

  it('interop: libxenvchan server (xenlab-vchan), xenring client, every --ring size', async function () {
    await vchanToolOrSkip(this);
    for (const ring of [1024, 2048, 4096, 65536, MiB]) {
      const p = vpath();
      const n = ring < 4096 ? 256 * 1024 : 8 * MiB;
      const server = run('xenlab-vchan', ['server', '--domid', String(self), '--path', p, '--ring', String(ring), '--send', String(n), '--recv', String(n), '--timeout', '60']);
      const c = await vchanClient({ domid: self, path: p, timeout: 30000 });
      const info = c.endpoint.info();
      await pump(c, { send: n, recv: n });
      const res = await server;
      console.log(`      ring ${ring}: client rx ${info.rxSize} tx ${info.txSize}; ${res.out.trim()}`);
      assert.strictEqual(res.code, 0, res.out);
      c.release();
    }
  });

  it('client death: the kernel unmap-notify clears cli_live and signals the server', async () => {
    const p = vpath();
    const s = await vchanServer({ domid: self, path: p });
    const peer = spawnPeer(['client', String(self), p, 'hold']);
    await peer.ready;
    await waitPeerState(s, 1);
    peer.child.kill('SIGKILL');
    await waitPeerState(s, 0, 10000);
    await exited(peer.child);
    s.release();
  });

  it('server death: srv_live cleared, pending data still readable by the client', async () => {
    const p = vpath();
    const peer = spawnPeer(['server', String(self), p, 'hold']);
    await peer.ready;
    const c = await vchanClient({ domid: self, path: p });
    assert.strictEqual(c.endpoint.peerState() & 0xff, 1);
    peer.child.kill('SIGKILL');
    await waitPeerState(c, 0, 10000);
    await exited(peer.child);
    c.release();
  });

  it('orderly release: peer sees live 0 after reading the last bytes', async () => {
    const p = vpath();
    const s = await vchanServer({ domid: self, path: p });
    const c = await vchanClient({ domid: self, path: p });
    await pump(s, { send: 5000, noDrain: true });
    s.release();
    const r = await pump(c, { recv: 5000 });
    assert.strictEqual(r.recv, 5000);
    await waitPeerState(c, 0);
    c.release();
    // the server removed its xenstore directory
    assert.strictEqual(await xenStore().readOptional(`${p}/ring-ref`), null);
  });

  it('frees grants on release (100 x 64 KiB vchans = 3300 grants > the 1024-grant gntalloc limit)', async () => {
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) {
      const p = vpath();
      const s = await vchanServer({ domid: self, path: p });
      const c = await vchanClient({ domid: self, path: p });
      c.release();
      s.release();
    }
    console.log(`      100 vchans created, connected and released in ${Date.now() - t0} ms`);
  });

  it('refuses bad xenstore values, bad orders and foreign paths', async () => {
    const xs = xenStore();
    for (const [ref, ev] of [['0', '5'], ['7', '5'], ['abc', '5'], ['12', '0'], ['12', '-3'], ['012', '5']]) {
      const p = vpath();
      await xs.write(`${p}/ring-ref`, ref);
      await xs.write(`${p}/event-channel`, ev);
      await assert.rejects(vchanClient({ domid: self, path: p, timeout: 0 }), { code: 'EPROTO' }, `${ref} ${ev}`);
      await xs.rm(p);
    }
    // an order the server never wrote: patch the control page before the client maps it
    const p = vpath();
    const s = await vchanServer({ domid: self, path: p });
    xen.poke(s.mappings[s.mappings.length - 1], 16, Buffer.from([21, 0]));
    await assert.rejects(vchanClient({ domid: self, path: p }), { code: 'EPROTO', message: /ring order 21/ });
    s.release();
    await assert.rejects(vchanClient({ domid: self, path: vpath(), timeout: 0 }), { code: 'ECONNREFUSED' });
    await assert.rejects(vchanClient({ domid: self, path: vpath(), timeout: 300 }), { code: 'ETIMEDOUT' });
    await assert.rejects(vchanClient({ domid: self, path: `/local/domain/${self + 1}/data/x` }), { code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('publishes ring-ref and event-channel readable by the client domain only', async () => {
    const p = vpath();
    const s = await vchanServer({ domid: self, path: p });
    const perms = await xenStore().getPerms(`${p}/event-channel`);
    assert.deepStrictEqual(perms, [{ domid: self, perm: 'n' }, { domid: self, perm: 'r' }]);
    s.release();
  });
});

describe("xen lab: transport 'xen' within one domain", function () {
  this.timeout(180000);
  before(async function () {
    self = await ownDomidOrSkip(this);
  });

  it('accepts many concurrent connections, each with verified data both ways, and cleans up', async () => {
    const N = 16;
    const n = 512 * 1024;
    const serverDone = [];
    const l = await listen({ port: 0 }, (link) => {
      serverDone.push(pump(link, { send: n, recv: n }).then(() => link.release()));
    });
    const port = l.address().port;
    const t0 = Date.now();
    let links;
    try {
      links = await Promise.all(Array.from({ length: N }, () => connect({ port, domid: self })));
    } catch (err) {
      l.close();
      throw err;
    }
    for (const link of links) {
      assert.strictEqual(link.ext, true);
      assert.strictEqual(link.hangupFd, null);
      assert.strictEqual(link.remote.family, 'xen');
    }
    await Promise.all(links.map((link) => pump(link, { send: n, recv: n })));
    while (serverDone.length < N) await new Promise((r) => setTimeout(r, 10));
    await Promise.all(serverDone);
    links.forEach((link) => link.release());
    console.log(`      ${N} connections x ${n >> 10} KiB each way in ${Date.now() - t0} ms`);
    l.close();
    await new Promise((r) => setTimeout(r, 200));
    const xs = xenStore();
    assert.strictEqual(await xs.readOptional(listenPath(self, port)), null);
    const left = (await xs.directory(`/local/domain/${self}/data/vchan/${self}`).catch(() => [])).filter((n) => n.startsWith(`xenring-${port}-`));
    assert.deepStrictEqual(left, []);
  });

  it('half-close flags travel through the extension area', async () => {
    let accepted;
    const got = new Promise((r) => (accepted = r));
    const l = await listen({ port: 'halfclose' }, (link) => accepted(link));
    const c = await connect({ port: 'halfclose', domid: self, ringSize: 8192 });
    const s = await got;
    assert.strictEqual(c.endpoint.info().txSize, 8192);
    assert.strictEqual(c.endpoint.setFin(), true);
    c.endpoint.kick();
    await new Promise((r) => setTimeout(r, 50));
    assert.strictEqual(s.endpoint.peerState(), 1 | (1 << 8));
    c.release();
    await waitPeerState(s, 0);
    s.release();
    l.close();
  });

  it('refuses: no listener, a listener for another domain, a second listener on a port', async () => {
    await assert.rejects(connect({ port: 'nobody-here', domid: self }), { code: 'ECONNREFUSED' });
    const l = await listen({ port: 'only-other', domid: self + 1 }, () => assert.fail('accepted'));
    await assert.rejects(connect({ port: 'only-other', domid: self, timeout: 5000 }), { code: 'ECONNREFUSED' });
    await assert.rejects(listen({ port: 'only-other' }, () => {}), { code: 'EADDRINUSE' });
    l.close();
  });

  it('times out when nobody serves the request, and removes it', async () => {
    const xs = xenStore();
    await xs.write(listenPath(self, 'ghost'), '1'); // a listener that died without cleanup
    const t0 = Date.now();
    await assert.rejects(connect({ port: 'ghost', domid: self, timeout: 500 }), { code: 'ETIMEDOUT' });
    assert.ok(Date.now() - t0 >= 450);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepStrictEqual(await xs.directory(listenPath(self, 'ghost')), []);
    await xs.rm(listenPath(self, 'ghost'));
  });

  it('server drops an accepted vchan the client never maps (timeout), freeing its nodes', async () => {
    const xs = xenStore();
    const l = await listen({ port: 'slowpoke', timeout: 500 }, () => assert.fail('accepted'));
    const nonce = '0123456789abcdef';
    await writeRequest(xs, 'slowpoke', nonce, '');
    const vp = `/local/domain/${self}/data/vchan/${self}/xenring-slowpoke-${nonce}`;
    let seen = false;
    for (let i = 0; i < 100 && !seen; i++) {
      seen = (await xs.readOptional(`${vp}/ring-ref`)) !== null;
      if (!seen) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(seen, 'server published a vchan');
    await new Promise((r) => setTimeout(r, 1000));
    assert.strictEqual(await xs.readOptional(`${vp}/ring-ref`), null);
    l.close();
  });

  it("the listener's ring size is the ceiling: a 1 MiB request gets 64 KiB rings", async () => {
    let accepted;
    const got = new Promise((r) => (accepted = r));
    const l = await listen({ port: 'ceiling', ringSize: 65536 }, (link) => accepted(link));
    const c = await connect({ port: 'ceiling', domid: self, ringSize: MiB });
    const s = await got;
    assert.strictEqual(c.endpoint.info().rxSize, 65536);
    assert.strictEqual(s.endpoint.info().txSize, 65536);
    await Promise.all([pump(c, { send: 256 * 1024, recv: 256 * 1024 }), pump(s, { send: 256 * 1024, recv: 256 * 1024 })]);
    c.release();
    s.release();
    l.close();
  });

  it("a client's request is created with owner-only permissions in its own transaction", async () => {
    const xs = xenStore();
    await xs.write(listenPath(self, 'permcheck'), '1'); // a listener node with nobody serving it
    await xs.setPerms(listenPath(self, 'permcheck'), [{ domid: self, perm: 'b' }]);
    const pending = connect({ port: 'permcheck', domid: self, timeout: 3000 }).catch((e) => e);
    let names = [];
    for (let i = 0; i < 100 && names.length === 0; i++) {
      names = await xs.directory(listenPath(self, 'permcheck'));
      if (names.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.strictEqual(names.length, 1);
    assert.deepStrictEqual(await xs.getPerms(`${listenPath(self, 'permcheck')}/${names[0]}`), [{ domid: self, perm: 'n' }]);
    assert.strictEqual((await pending).code, 'ETIMEDOUT');
    await xs.rm(listenPath(self, 'permcheck'));
  });

  it('caps pending offers per domain, defers the rest up to the backlog, refuses beyond it in their own nodes, frees abandoned offers at once', async () => {
    const xs = xenStore();
    const l = await listen({ port: 'flood', maxPendingPerDomain: 3, backlog: 4, timeout: 20000 }, () => assert.fail('accepted'));
    const reqs = [];
    for (let i = 0; i < 8; i++) reqs.push(await writeRequest(xs, 'flood', `00000000000000${String(i).padStart(2, '0')}`, ''));
    const vdir = `/local/domain/${self}/data/vchan/${self}`;
    const offers = async () => (await xs.directory(vdir).catch(() => [])).filter((n) => n.startsWith('xenring-flood-')).length;
    // 3 offers, 4 deferred (backlog 4), 1 refused.
    let refused = 0;
    for (let i = 0; i < 200 && refused < 1; i++) {
      refused = (await Promise.all(reqs.map((r) => xs.readOptional(r)))).filter((v) => v === 'EAGAIN').length;
      if (refused < 1) await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 500));
    refused = (await Promise.all(reqs.map((r) => xs.readOptional(r)))).filter((v) => v === 'EAGAIN').length;
    assert.strictEqual(refused, 1);
    assert.strictEqual(await offers(), 3);
    const t0 = Date.now();
    for (const r of reqs) await xs.rm(r);
    while ((await offers()) > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    assert.strictEqual(await offers(), 0);
    console.log(`      3 abandoned offers freed ${Date.now() - t0} ms after their requests were deleted (accept timeout 20 s)`);
    l.close();
  });

  it('lists a directory beyond one 4 KiB payload with XS_DIRECTORY_PART', async () => {
    const xs = xenStore();
    const dir = `/local/domain/${self}/data/xr-dirpart-${process.pid}`;
    const names = Array.from({ length: 150 }, (_, i) => `a-rather-long-child-name-${String(i).padStart(4, '0')}`);
    await Promise.all(names.map((n) => xs.write(`${dir}/${n}`, '')));
    const all = await xs.directoryAll(dir);
    assert.deepStrictEqual([...all].sort(), names);
    await xs.rm(dir);
  });
});
