'use strict';
// The stream layer (Socket / Server / vchanServer / vchanClient) over real Xen
// links, inside dom0 (dom0 grants to itself, which the lab kernel supports).
// Every data test moves the stream byte i = i % 251 (xenlab-vchan's pattern)
// and checks every byte. Skips with a reason where the Xen devices are not
// usable (any host that is not a Xen domain); run with `npm run test:xen`.
const assert = require('node:assert');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { PATTERN, root, ownDomidOrSkip, vchanToolOrSkip, withDomu, domuSkipReason } = require('./helpers');
const xenring = require(path.join(root, 'dist', 'index.js'));
const { xenAvailable } = require(path.join(root, 'dist', 'transports', 'xen', 'handshake.js'));
const { xenStore } = require(path.join(root, 'dist', 'transports', 'xen', 'xenstore.js'));

const MiB = 1 << 20;
let self;
let seq = 0;
const vpath = () => `/local/domain/${self}/data/vchan/${self}/s${process.pid}-${++seq}`;

/** Writes `n` pattern bytes (continuing at stream offset `from`) with backpressure; resolves when all are accepted by the ring. */
function sendPattern(sock, n, from = 0) {
  return new Promise((resolve, reject) => {
    let off = from;
    const end = from + n;
    const onError = (err) => reject(err);
    sock.once('error', onError);
    const more = () => {
      while (off < end) {
        const start = off % 251;
        const len = Math.min(end - off, 64 * 1024, PATTERN.length - start);
        const chunk = PATTERN.subarray(start, start + len);
        off += len;
        const last = off === end;
        const ok = sock.write(chunk, last ? (err) => {
          sock.off('error', onError);
          if (err) reject(err);
          else resolve();
        } : undefined);
        if (!ok && !last) return sock.once('drain', more);
      }
      if (n === 0) {
        sock.off('error', onError);
        resolve();
      }
    };
    more();
  });
}

/**
 * Verifies every received byte against the pattern; resolves with the byte
 * count on 'end' (and the order of events seen), rejects on 'error' or a
 * mismatch.
 */
function receivePattern(sock) {
  let got = 0;
  let bad = -1;
  return new Promise((resolve, reject) => {
    sock.on('data', (buf) => {
      if (bad >= 0) return;
      let ok = true;
      for (let pos = 0; pos < buf.length && ok; ) {
        const s = (got + pos) % 251;
        const len = Math.min(buf.length - pos, PATTERN.length - s);
        if (buf.compare(PATTERN, s, s + len, pos, pos + len) !== 0) ok = false;
        pos += len;
      }
      if (!ok) {
        for (let i = 0; i < buf.length; i++) {
          if (buf[i] !== (got + i) % 251) {
            bad = got + i;
            break;
          }
        }
        return reject(new Error(`data mismatch at byte ${bad}`));
      }
      got += buf.length;
    });
    sock.once('end', () => resolve(got));
    sock.once('error', reject);
  });
}

/** Records 'connect' / 'end' / 'finish' / 'close(hadError)' in order; `.closed` resolves on 'close'. */
function track(sock) {
  const events = [];
  for (const ev of ['connect', 'end', 'finish']) sock.on(ev, () => events.push(ev));
  sock.on('error', (err) => events.push(`error:${err.code}`));
  const closed = new Promise((resolve) => sock.once('close', (hadError) => {
    events.push(`close:${hadError}`);
    resolve(hadError);
  }));
  return { events, closed };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

function listen(server, opts) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts, () => {
      server.off('error', reject);
      resolve(server.address());
    });
  });
}

function closeServer(server) {
  return new Promise((resolve) => server.close(() => resolve()));
}

function runTool(args) {
  const child = spawn('xenlab-vchan', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, out }));
    child.on('error', (err) => resolve({ code: -1, out: String(err) }));
  });
  return { child, done };
}


describe("xen lab: Socket/Server over transport 'xen' within one domain", function () {
  this.timeout(180000);
  before(async function () {
    self = await ownDomidOrSkip(this);
  });

  it('moves 8 MiB each way at once, every byte verified, then closes cleanly on both sides', async () => {
    const n = 8 * MiB;
    let serverSide;
    // Both sides half-open: each ends after its own last byte, whichever
    // direction finishes first (not half-open, the first 'end' would end the
    // other side while it is still writing).
    const server = xenring.createServer({ allowHalfOpen: true }, (sock) => {
      const t = track(sock);
      const rx = receivePattern(sock);
      const tx = sendPattern(sock, n).then(() => sock.end());
      serverSide = { sock, t, rx, tx };
    });
    const { port, family } = await listen(server, { port: 0, transport: 'xen' });
    assert.strictEqual(family, 'xen');
    const t0 = Date.now();
    const c = xenring.connect({ port, transport: 'xen', domid: self, allowHalfOpen: true });
    const ct = track(c);
    await withTimeout(new Promise((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
    }), 30000, 'connect');
    assert.strictEqual(c.remoteFamily, 'xen');
    assert.strictEqual(c.remoteAddress, String(self));
    const crx = receivePattern(c);
    const ctx = sendPattern(c, n).then(() => c.end());
    const [cgot] = await withTimeout(Promise.all([crx, ctx]), 150000, 'client data');
    assert.strictEqual(cgot, n);
    assert.ok(serverSide, 'server accepted');
    const [sgot] = await withTimeout(Promise.all([serverSide.rx, serverSide.tx]), 60000, 'server data');
    assert.strictEqual(sgot, n);
    assert.strictEqual(await withTimeout(ct.closed, 20000, 'client close'), false);
    assert.strictEqual(await withTimeout(serverSide.t.closed, 20000, 'server close'), false);
    const ms = Date.now() - t0;
    console.log(`      8 MiB each way through Sockets in ${ms} ms; client events ${ct.events.join(' ')}; server events ${serverSide.t.events.join(' ')}`);
    for (const ev of [ct.events, serverSide.t.events]) {
      assert.ok(ev.includes('end') && ev.includes('finish'), ev.join(' '));
      assert.strictEqual(ev[ev.length - 1], 'close:false', ev.join(' '));
      assert.ok(!ev.some((e) => e.startsWith('error')), ev.join(' '));
    }
    assert.strictEqual(c.bytesRead, n);
    assert.strictEqual(c.bytesWritten, n);
    await withTimeout(closeServer(server), 20000, 'server.close');
  });

  it("unref() while connecting: a listener that never answers does not hold the process, as net's connecting handle; ref'd, it does", async () => {
    const { listenPath } = require(path.join(root, 'dist', 'transports', 'xen', 'transport.js'));
    const xs = xenStore();
    const port = `ghost-unref-${process.pid}`;
    await xs.write(listenPath(self, port), '1'); // a listener node nobody serves: the connect waits for its whole timeout
    try {
      for (const unref of [true, false]) {
        const code = `require(${JSON.stringify(path.join(root, 'dist', 'index.js'))})
          .connect({ port: ${JSON.stringify(port)}, transport: 'xen', domid: ${self}, connectTimeout: 30000 })${unref ? '.unref()' : ''}.on('error', () => {});`;
        const t0 = Date.now();
        const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit'] });
        const [exitCode] = await Promise.race([new Promise((r) => child.once('exit', (c) => r([c]))), new Promise((r) => setTimeout(r, 12000, ['still running']))]);
        if (exitCode === 'still running') child.kill();
        // Before: the handshake's deadline timer held the process for the whole 30 s.
        if (unref) assert.strictEqual(exitCode, 0, `unref'd: ${exitCode} after ${Date.now() - t0} ms`);
        else assert.strictEqual(exitCode, 'still running', 'the control: a ref\'d connect holds the process');
      }
    } finally {
      await xs.rm(listenPath(self, port));
    }
  });

  it('half-close: the client ends, the server keeps sending, the client gets every byte then end', async () => {
    const up = 256 * 1024;
    const down = 8 * MiB;
    let serverSide;
    const server = xenring.createServer({ allowHalfOpen: true }, (sock) => {
      const t = track(sock);
      // The server sends only after the client's FIN: data after a half-close.
      const done = receivePattern(sock).then(async (got) => {
        t.events.push(`got:${got}`);
        assert.strictEqual(sock.writable, true, 'server still writable after the client ended');
        await sendPattern(sock, down);
        sock.end();
        return got;
      });
      serverSide = { t, done };
    });
    const { port } = await listen(server, { port: 'sock-halfclose', transport: 'xen' });
    const c = xenring.connect({ port, transport: 'xen', domid: self, allowHalfOpen: true });
    const ct = track(c);
    const crx = receivePattern(c);
    await new Promise((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
    });
    await sendPattern(c, up);
    c.end();
    const cgot = await withTimeout(crx, 150000, 'client receive');
    assert.strictEqual(cgot, down);
    assert.strictEqual(await withTimeout(serverSide.done, 30000, 'server side'), up);
    assert.strictEqual(await withTimeout(ct.closed, 20000, 'client close'), false);
    assert.strictEqual(await withTimeout(serverSide.t.closed, 20000, 'server close'), false);
    console.log(`      client events ${ct.events.join(' ')}; server events ${serverSide.t.events.join(' ')}`);
    // the client finished before it saw the end; 'close' comes last on both sides
    assert.ok(ct.events.indexOf('finish') < ct.events.indexOf('end'), ct.events.join(' '));
    assert.strictEqual(ct.events[ct.events.length - 1], 'close:false');
    assert.ok(serverSide.t.events.indexOf('end') < serverSide.t.events.indexOf('finish'), serverSide.t.events.join(' '));
    assert.strictEqual(serverSide.t.events[serverSide.t.events.length - 1], 'close:false');
    await withTimeout(closeServer(server), 20000, 'server.close');
  });

  it('ECONNREFUSED (error, then close(true)) when nobody listens on the port', async () => {
    const c = xenring.connect({ port: `nobody-${process.pid}`, transport: 'xen', domid: self });
    const ct = track(c);
    const err = await withTimeout(new Promise((resolve) => c.once('error', resolve)), 20000, 'error');
    assert.strictEqual(err.code, 'ECONNREFUSED');
    assert.strictEqual(await withTimeout(ct.closed, 5000, 'close'), true);
    assert.deepStrictEqual(ct.events, ['error:ECONNREFUSED', 'close:true']);
  });

  it('serves several concurrent connections (8 x 1 MiB echoed, verified), then server.close() completes', async () => {
    const N = 8;
    const n = MiB;
    const server = xenring.createServer((sock) => sock.pipe(sock));
    const { port } = await listen(server, { port: 0, transport: 'xen' });
    const t0 = Date.now();
    const results = await withTimeout(Promise.all(Array.from({ length: N }, async () => {
      const c = xenring.connect({ port, transport: 'xen', domid: self });
      const ct = track(c);
      const rx = receivePattern(c);
      await new Promise((resolve, reject) => {
        c.once('connect', resolve);
        c.once('error', reject);
      });
      await sendPattern(c, n);
      c.end();
      const got = await rx;
      return { got, hadError: await ct.closed };
    })), 170000, 'connections');
    for (const r of results) assert.deepStrictEqual(r, { got: n, hadError: false });
    console.log(`      ${N} connections x ${n >> 10} KiB echoed in ${Date.now() - t0} ms`);
    await withTimeout(closeServer(server), 20000, 'server.close');
    assert.strictEqual(await xenStore().readOptional(`/local/domain/${self}/data/xenring/${port}`), null);
  });
});

describe('xen lab: vchanServer / vchanClient Sockets with libxenvchan (xenlab-vchan)', function () {
  this.timeout(180000);
  before(async function () {
    self = await ownDomidOrSkip(this);
    await vchanToolOrSkip(this);
  });

  it('vchanServer Socket -> libxenvchan client --recv: all bytes read, end() closes once drained', async () => {
    const n = 8 * MiB;
    const p = vpath();
    const s = xenring.vchanServer({ domid: self, path: p, readSize: 65536, writeSize: 65536 });
    const st = track(s);
    s.on('data', () => assert.fail('unexpected data'));
    // the socket may be written before the peer is there: the data waits in the ring
    const tx = sendPattern(s, n).then(() => s.end());
    await new Promise((r) => setTimeout(r, 300));
    assert.strictEqual(s.connecting, true);
    const tool = runTool(['client', '--domid', String(self), '--path', p, '--recv', String(n), '--timeout', '60']);
    await withTimeout(tx, 150000, 'send');
    const res = await withTimeout(tool.done, 150000, 'xenlab-vchan');
    console.log(`      ${res.out.trim()}`);
    assert.strictEqual(res.code, 0, res.out);
    assert.match(res.out, new RegExp(`client OK .*recv=${n}`));
    assert.strictEqual(await withTimeout(st.closed, 20000, 'close'), false);
    console.log(`      server socket events ${st.events.join(' ')}`);
    assert.strictEqual(st.events[0], 'connect');
    assert.strictEqual(st.events[st.events.length - 1], 'close:false');
    assert.ok(!st.events.some((e) => e.startsWith('error')), st.events.join(' '));
    assert.strictEqual(await xenStore().readOptional(`${p}/ring-ref`), null);
  });

  it('vchanServer Socket <- libxenvchan client --send --recv: both ways verified, closes when the C peer closes', async () => {
    const n = 4 * MiB;
    const p = vpath();
    const s = xenring.vchanServer({ domid: self, path: p });
    const st = track(s);
    const rx = receivePattern(s);
    const connected = new Promise((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    const tool = runTool(['client', '--domid', String(self), '--path', p, '--send', String(n), '--recv', String(n), '--timeout', '60']);
    await withTimeout(connected, 30000, 'connect');
    await withTimeout(sendPattern(s, n), 150000, 'send');
    // the C client closes once it got our bytes and we consumed its own
    assert.strictEqual(await withTimeout(rx, 150000, 'receive'), n);
    const res = await withTimeout(tool.done, 60000, 'xenlab-vchan');
    console.log(`      ${res.out.trim()}`);
    assert.strictEqual(res.code, 0, res.out);
    assert.strictEqual(await withTimeout(st.closed, 20000, 'close'), false);
    console.log(`      server socket events ${st.events.join(' ')}`);
    assert.strictEqual(st.events[st.events.length - 1], 'close:false');
  });

  it('libxenvchan server --send -> vchanClient Socket: connect, every byte, end, close(false)', async () => {
    const n = 8 * MiB;
    const p = `/local/domain/${self}/data/sock${process.pid}-${++seq}`;
    const tool = runTool(['server', '--domid', String(self), '--path', p, '--send', String(n), '--timeout', '60']);
    const c = xenring.vchanClient({ domid: self, path: p, connectTimeout: 30000 });
    const ct = track(c);
    const rx = receivePattern(c);
    assert.strictEqual(await withTimeout(rx, 150000, 'receive'), n);
    const res = await withTimeout(tool.done, 60000, 'xenlab-vchan');
    console.log(`      ${res.out.trim()}`);
    assert.strictEqual(res.code, 0, res.out);
    assert.match(res.out, new RegExp(`server OK .*sent=${n}`));
    assert.strictEqual(await withTimeout(ct.closed, 20000, 'close'), false);
    console.log(`      client socket events ${ct.events.join(' ')}`);
    assert.strictEqual(ct.events[0], 'connect');
    assert.strictEqual(ct.events[ct.events.length - 1], 'close:false');
    assert.ok(!ct.events.some((e) => e.startsWith('error')), ct.events.join(' '));
  });

  it('libxenvchan server --recv <- vchanClient Socket: xenlab-vchan gets all N bytes, end() closes once drained', async () => {
    const n = 8 * MiB;
    const p = `/local/domain/${self}/data/sock${process.pid}-${++seq}`;
    const tool = runTool(['server', '--domid', String(self), '--path', p, '--recv', String(n), '--timeout', '60']);
    const c = xenring.vchanClient({ domid: self, path: p, connectTimeout: 30000 });
    const ct = track(c);
    c.on('data', () => assert.fail('unexpected data'));
    await withTimeout(new Promise((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
    }), 30000, 'connect');
    await withTimeout(sendPattern(c, n), 150000, 'send');
    c.end();
    const res = await withTimeout(tool.done, 150000, 'xenlab-vchan');
    console.log(`      ${res.out.trim()}`);
    assert.strictEqual(res.code, 0, res.out);
    assert.match(res.out, new RegExp(`server OK .*recv=${n}`));
    assert.strictEqual(await withTimeout(ct.closed, 20000, 'close'), false);
    console.log(`      client socket events ${ct.events.join(' ')}`);
    assert.strictEqual(ct.events[ct.events.length - 1], 'close:false');
    assert.ok(!ct.events.some((e) => e.startsWith('error')), ct.events.join(' '));
  });
});

describe("xen lab: Socket across domains (dom0 Server, domU client Socket, transport 'xen')", function () {
  this.timeout(300000);
  const U = Number(process.env.XENLAB_DOMU_DOMID);
  before(function () {
    if (!xenAvailable() || !process.env.XENLAB_DOMU_DOMID || !Number.isInteger(U)) {
      console.log(`      (skipped: ${domuSkipReason('needs the lab with --domu and test/xen/domu-peer.js steps 10, 12, 13; run `npm run test:xen`')})`);
      this.skip();
    }
  });

  it('10: domU connect() Socket -> dom0 Server: 4 MiB each way verified, close(false) on both sides', withDomu(async () => {
    const n = 4 * MiB;
    let accepted;
    const conn = new Promise((resolve) => (accepted = resolve));
    const server = xenring.createServer({ allowHalfOpen: true }, (sock) => {
      const t = track(sock);
      const rx = receivePattern(sock);
      const tx = sendPattern(sock, n).then(() => sock.end());
      accepted({ sock, t, rx, tx });
    });
    await listen(server, { port: 7010, transport: 'xen', domid: U });
    try {
      const s = await withTimeout(conn, 280000, 'domU connection (is domu-peer step 10 running?)');
      assert.strictEqual(s.sock.remoteAddress, String(U));
      const t0 = Date.now();
      const [got] = await withTimeout(Promise.all([s.rx, s.tx]), 120000, 'data');
      assert.strictEqual(got, n);
      assert.strictEqual(await withTimeout(s.t.closed, 30000, 'close'), false);
      console.log(`      domU ${U} -> dom0: 4 MiB each way in ${Date.now() - t0} ms; server events ${s.t.events.join(' ')}`);
      const ps = s.sock.poolStats();
      console.log(`      dom0 pool: size ${ps.size}, sent by reference ${ps.sentByRef}, received by reference ${ps.receivedByRef}, fallbacks ${ps.fallbacks}`);
      assert.strictEqual(s.t.events[s.t.events.length - 1], 'close:false');
    } finally {
      await withTimeout(closeServer(server), 20000, 'server.close');
    }
  }));

  it("12: a fresh domU process's server.address() right after listen() names the domU; dom0 connects to that address", withDomu(async () => {
    const deadline = Date.now() + 280000;
    for (;;) {
      const text = await new Promise((resolve, reject) => {
        const c = xenring.connect({ port: 7012, transport: 'xen', domid: U });
        let t = '';
        c.setEncoding('utf8');
        c.on('data', (d) => (t += d));
        c.on('error', (err) => (err.code === 'ECONNREFUSED' ? resolve(null) : reject(err)));
        c.on('end', () => resolve(t));
      });
      if (text !== null) {
        assert.deepStrictEqual(JSON.parse(text), { address: String(U), family: 'xen', port: 7012 });
        return;
      }
      if (Date.now() > deadline) throw new Error('the domU never listened on 7012 (is domu-peer step 12 running?)');
      await new Promise((r) => setTimeout(r, 300));
    }
  }));

  it('13: Socket allocBuffer payloads both ways with the domU: 8 MiB each way by reference, every byte checked, sentByRef/receivedByRef, mappings back', withDomu(async () => {
    const { socketPoolExchange, xenMappings, settleMappings } = require('./pool_helpers');
    const start = xenMappings();
    let accepted;
    const conn = new Promise((resolve) => (accepted = resolve));
    const server = xenring.createServer({ allowHalfOpen: true }, (sock) => accepted(socketPoolExchange(sock, { count: 32, size: 256 * 1024, timeout: 200000 })));
    await listen(server, { port: 7013, transport: 'xen', domid: U });
    try {
      const t0 = Date.now();
      const r = await withTimeout(withTimeout(conn, 280000, 'domU connection (is domu-peer step 13 running?)'), 280000, 'exchange');
      console.log(`      8 MiB each way as 32 allocBuffer payloads in ${Date.now() - t0} ms; dom0 pool: sentByRef ${r.stats.sentByRef}, receivedByRef ${r.stats.receivedByRef}, pool-full waits ${r.waits}`);
      assert.strictEqual(r.got, 32 * 256 * 1024);
      assert.strictEqual(r.sent, 32 * 256 * 1024);
      assert.strictEqual(r.stats.sentByRef, 32);
      assert.strictEqual(r.stats.receivedByRef, 32);
    } finally {
      await withTimeout(closeServer(server), 20000, 'server.close');
    }
    assert.deepStrictEqual(await settleMappings(start), start, 'gntalloc/gntdev mappings back to their start');
  }));
});

describe("xen lab: server.address() right after listen() (transport 'xen')", function () {
  this.timeout(60000);
  before(async function () {
    self = await ownDomidOrSkip(this);
  });

  it('dom0 knows its domain id without xenstore: the address is there when listen() returns, and is the one it listens on', async () => {
    const { addonBindings } = require(path.join(root, 'dist', 'transports', 'xen', 'bindings.js'));
    if (self === 0) assert.strictEqual(addonBindings.knownDomid(), 0, '/proc/xen/capabilities says control_d');
    const server = xenring.createServer();
    server.listen({ port: 0, transport: 'xen' });
    const early = server.address();
    assert.ok(early, 'address() right after listen()');
    assert.strictEqual(early.address, String(self));
    assert.strictEqual(early.family, 'xen');
    assert.ok(Number.isInteger(early.port) && early.port >= 49152, `port ${early.port}`);
    await withTimeout(new Promise((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    }), 30000, 'listening');
    assert.deepStrictEqual(server.address(), early);
    await withTimeout(closeServer(server), 20000, 'server.close');
  });
});
