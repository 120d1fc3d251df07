'use strict';
// A hostile pool peer over a real connection: a Python client (standard
// library only: send_fds/recv_fds, memfd, mmap) does the local handshake with
// the pool fields, maps the ring and both pool regions, and forges
// descriptors and completions. Our server must fail that connection with
// EPROTO, keep running and serve the next client; the same peer sending an
// honest payload (the positive control) is read correctly, so the forgeries
// are refused for what they are, not for a broken test peer.
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const xenring = require('../..');
const { slice } = require('../helpers/pattern');

const PY = path.join(__dirname, 'hostile_peer.py');

/** A server on a free port, and the next accepted socket with what happened to it. */
async function server(options = {}) {
  const conns = [];
  const srv = xenring.createServer(options, (s) => {
    const c = { s, data: [], error: null, closed: null };
    s.on('data', (d) => c.data.push(Buffer.from(d)));
    s.on('error', (err) => (c.error = err));
    c.closed = new Promise((r) => s.once('close', r)); // (events.once would reject on 'error')
    conns.push(c);
  });
  srv.listen({ port: 0 });
  await once(srv, 'listening');
  return { srv, conns, path: srv.address().address };
}

/** Runs the Python client; resolves with its report; kill() ends it. */
async function pyClient(opts) {
  const py = spawn('python3', [PY, 'client', JSON.stringify(opts)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: py.stdout });
  const [line] = await Promise.race([once(lines, 'line'), once(py, 'exit').then(() => { throw new Error('python peer exited'); })]);
  return {
    report: JSON.parse(line),
    async end() {
      py.stdin.end();
      await once(py, 'exit');
    },
  };
}

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('pool: a hostile peer over a real connection (Python client)', function () {
  this.timeout(30000);
  const POOL = 1 << 20;

  it('positive control: the Python peer\'s honest payload arrives as sent', async () => {
    const { srv, conns, path: p } = await server();
    const py = await pyClient({ path: p, poolSize: POOL, scenario: 'honest', length: 10000 });
    assert.equal(py.report.replyBytes, 24);
    assert.equal(py.report.nfds, 3);
    assert.equal(py.report.toServer, POOL);
    assert.equal(py.report.toClient, POOL);
    await until('the payload', () => conns[0] && conns[0].data.reduce((n, d) => n + d.length, 0) >= 10000);
    const got = Buffer.concat(conns[0].data);
    const want = Buffer.from(Array.from({ length: 10000 }, (_, i) => (i * 7 + 3) % 251));
    assert.ok(got.equals(want));
    assert.equal(conns[0].s.poolStats().receivedByRef, 1);
    assert.equal(conns[0].error, null);
    await py.end();
    srv.close();
  });

  for (const scenario of ['out-of-range', 'wraps', 'overlap', 'backwards', 'rewound-index']) {
    it(`a forged descriptor (${scenario}) fails the connection with EPROTO; the server goes on`, async () => {
      const { srv, conns, path: p } = await server();
      const py = await pyClient({ path: p, poolSize: POOL, scenario });
      await until('the connection to fail', () => conns[0] && conns[0].error);
      assert.equal(conns[0].error.code, 'EPROTO');
      await conns[0].closed;
      assert.equal(conns[0].data.length, 0, 'nothing of the forgery was delivered');
      await py.end();
      // The server still serves: an honest client after the hostile one.
      const ok = await pyClient({ path: p, poolSize: POOL, scenario: 'honest', length: 5000 });
      await until('the honest payload', () => conns[1] && conns[1].data.length > 0);
      assert.equal(conns[1].error, null);
      await ok.end();
      srv.close();
    });
  }

  for (const scenario of ['forged-completion', 'double-release']) {
    it(`a ${scenario} fails the connection with EPROTO when we next send`, async () => {
      const { srv, conns, path: p } = await server();
      const first = pyClient({ path: p, poolSize: POOL, scenario });
      await until('the connection', () => conns[0]);
      const s = conns[0].s;
      // One payload by reference, for the double release to return twice.
      const buf = s.allocBuffer(8192);
      buf.set(slice(0, 8192));
      s.write(buf);
      // (a forged completion may already be waiting: then even this first send refuses it)
      if (scenario === 'double-release') assert.equal(s.poolStats().sentByRef, 1);
      const py = await first;
      assert.equal(py.report.error, undefined);
      // Our next write takes completions first, and refuses the bad one.
      await until('the completion to be refused', () => {
        if (!s.destroyed) s.write(s.allocBuffer(4096));
        return conns[0].error;
      });
      assert.equal(conns[0].error.code, 'EPROTO');
      await conns[0].closed;
      await py.end();
      srv.close();
    });
  }

  it('an older client without pool fields gets the old ACCEPT and no pool', async () => {
    const { srv, conns, path: p } = await server();
    const py = await pyClient({ path: p, poolSize: null });
    assert.equal(py.report.replyBytes, 16);
    assert.equal(py.report.nfds, 2);
    await until('the connection', () => conns[0]);
    assert.equal(conns[0].s.poolStats().size, 0);
    const b = conns[0].s.allocBuffer(100000);
    assert.equal(conns[0].s.poolStats().sentByRef, 0);
    assert.equal(b.length, 100000);
    await py.end();
    srv.close();
  });

  it('a pool:false server answers a pool offer with size 0 and no region fd', async () => {
    const { srv, path: p } = await server({ pool: false });
    const py = await pyClient({ path: p, poolSize: POOL });
    assert.equal(py.report.replyBytes, 24);
    assert.equal(py.report.nfds, 2);
    assert.equal(py.report.toServer, 0);
    assert.equal(py.report.toClient, 0);
    await py.end();
    srv.close();
  });
});

describe('pool: a hostile peer that speaks the lazy opening (Python client)', function () {
  this.timeout(30000);
  const POOL = 1 << 20;

  /**
   * The Python client with "lazy": it announces, sends "lazy" through the
   * ring; once our server read it, the client reports how much of its region
   * the server touched, sets OPENED and plays `scenario`.
   */
  async function lazyClient(p, conns, scenario, extra = {}) {
    const py = spawn('python3', [PY, 'client', JSON.stringify({ path: p, poolSize: POOL, lazy: true, scenario, ...extra })], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: py.stdout })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value);
    assert.equal((await next()).ringSent, 4);
    await until('the ring message', () => conns.at(-1) && Buffer.concat(conns.at(-1).data).toString() === 'lazy');
    py.stdin.write('go\n');
    const report = await next();
    return {
      report,
      async end() {
        py.stdin.end();
        await once(py, 'exit');
      },
    };
  }

  it('positive control: our server announces, touches nothing of the peer\'s region before OPENED, then takes its payload', async () => {
    const { srv, conns, path: p } = await server();
    const py = await lazyClient(p, conns, 'honest', { length: 10000 });
    assert.equal(py.report.serverPoolByte, 1, 'the server announced (and has not opened its sender)');
    assert.equal(py.report.regionBlocks, 0, 'nothing of the client\'s region touched before OPENED');
    await until('the payload', () => conns[0].data.reduce((n, d) => n + d.length, 0) >= 4 + 10000);
    const got = Buffer.concat(conns[0].data).subarray(4);
    assert.ok(got.equals(Buffer.from(Array.from({ length: 10000 }, (_, i) => (i * 7 + 3) % 251))));
    assert.equal(conns[0].s.poolStats().receivedByRef, 1);
    assert.equal(conns[0].error, null);
    await py.end();
    srv.close();
  });

  for (const scenario of ['out-of-range', 'wraps', 'overlap', 'backwards', 'rewound-index']) {
    it(`a forged descriptor (${scenario}) at the opening fails the connection with EPROTO; nothing of it is delivered`, async () => {
      const { srv, conns, path: p } = await server();
      const py = await lazyClient(p, conns, scenario);
      assert.equal(py.report.regionBlocks, 0);
      await until('the connection to fail', () => conns[0].error);
      assert.equal(conns[0].error.code, 'EPROTO');
      await conns[0].closed;
      assert.equal(Buffer.concat(conns[0].data).toString(), 'lazy', 'only the ring bytes before the forgery');
      await py.end();
      srv.close();
    });
  }
});

describe('pool: our client against an older server (Python, 16-byte ACCEPT)', function () {
  this.timeout(30000);
  it('connects with no pool and moves bytes through the ring', async () => {
    const port = 40000 + Math.floor(Math.random() * 9000);
    const file = path.join(process.env.XENRING_DIR, `${port}.sock`);
    const py = spawn('python3', [path.join(__dirname, '../hostile/peer.py'), 'server', JSON.stringify({ path: file, version: 3, reply: 'honest' })], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: py.stdout });
    await once(lines, 'line'); // "ready"
    const s = xenring.connect({ port });
    await once(s, 'connect');
    assert.equal(s.poolStats().size, 0);
    assert.equal(s.allocBuffer(65536).length, 65536);
    assert.equal(s.poolStats().fallbacks, 0, 'no pool, so nothing to fall back from');
    s.destroy();
    py.stdin.end();
    await once(py, 'exit');
  });
});

describe('pool: regions on demand from a hostile client (Python, REGION messages)', function () {
  this.timeout(30000);
  const POOL = 1 << 20;
  const want = Buffer.from(Array.from({ length: 10000 }, (_, i) => (i * 7 + 3) % 251));

  it("positive control: a region sent in a REGION message, then a payload in it, arrives as sent", async () => {
    const { srv, conns, path: p } = await server();
    const py = await pyClient({ path: p, poolSize: POOL, regions: 'honest', length: want.length });
    // The ACCEPT to a HELLO with regions on demand: the flags field, no region fd.
    assert.equal(py.report.replyBytes, 28);
    assert.equal(py.report.nfds, 2);
    assert.deepEqual([py.report.toServer, py.report.toClient, py.report.flags], [POOL, POOL, 1]);
    await until('the payload', () => conns[0] && conns[0].data.reduce((n, d) => n + d.length, 0) >= want.length);
    assert.ok(Buffer.concat(conns[0].data).equals(want));
    assert.equal(conns[0].s.poolStats().receivedByRef, 1);
    assert.equal(conns[0].error, null);
    await py.end();
    await conns[0].closed;
    srv.close();
  });

  for (const mode of ['wrong-size', 'twice', 'two-fds', 'not-memfd', 'unsealed', 'garbage', 'opened-without']) {
    it(`a bad REGION (${mode}) fails that connection with EPROTO; the server goes on`, async () => {
      const { srv, conns, path: p } = await server();
      const py = await pyClient({ path: p, poolSize: POOL, regions: mode });
      assert.equal(py.report.replyBytes, 28);
      await until('the connection to fail', () => conns[0]?.error);
      assert.equal(conns[0].error.code, 'EPROTO', conns[0].error.message);
      await conns[0].closed;
      // ('twice': the first region was good, so its payload may have come first.)
      const got = Buffer.concat(conns[0].data);
      assert.ok(got.length === 0 || (mode === 'twice' && got.equals(want)), `${got.length} bytes arrived`);
      await py.end();
      // The same server serves an honest client after it.
      const ok = await pyClient({ path: p, poolSize: POOL, regions: 'honest', length: want.length });
      await until('the payload', () => conns[1] && conns[1].data.reduce((n, d) => n + d.length, 0) >= want.length);
      assert.ok(Buffer.concat(conns[1].data).equals(want));
      await ok.end();
      srv.close();
    });
  }
});

describe('pool: regions on demand from a hostile server (Python, REGION messages)', function () {
  this.timeout(30000);
  const { poolInodes } = require('../helpers/fixtures');
  /** Which of the regions the server sent are mapped here (by inode: other tests' regions may come and go). */
  const mappedOf = (report) => report.inodes.map(String).filter((ino) => poolInodes().has(ino));

  /** Our client against test/hostile/peer.py's `regions` server: { s, report, end() }. */
  async function againstServer(region) {
    const port = 40000 + Math.floor(Math.random() * 9000);
    const file = path.join(process.env.XENRING_DIR, `${port}.sock`);
    const py = spawn('python3', [path.join(__dirname, '../hostile/peer.py'), 'regions', JSON.stringify({ path: file, region })], { stdio: ['pipe', 'pipe', 'inherit'] });
    // Every line kept: the report may come before we wait for it.
    const got = [];
    let wake = () => {};
    readline.createInterface({ input: py.stdout }).on('line', (l) => {
      got.push(l);
      wake();
    });
    const exited = once(py, 'exit');
    const next = async () => {
      while (got.length === 0) await Promise.race([new Promise((r) => (wake = r)), exited.then(() => { throw new Error('python peer exited'); })]);
      return got.shift();
    };
    await next(); // "ready"
    const s = xenring.connect({ port });
    const errored = new Promise((resolve) => s.once('error', resolve));
    const closed = new Promise((resolve) => s.once('close', resolve));
    await once(s, 'connect');
    const report = JSON.parse(await next());
    return {
      s,
      report,
      errored,
      closed,
      async end() {
        s.destroy();
        py.stdin.end();
        await exited;
      },
    };
  }

  it('positive control: the server\'s region, then its pool opened: our client maps it and lives', async () => {
    const c = await againstServer('honest');
    assert.equal(c.report.helloBytes, 24, 'our HELLO asks for regions on demand');
    assert.equal(c.report.inodes.length, 1);
    await until('the server\'s region mapped', () => mappedOf(c.report).length === 1);
    const err = await Promise.race([c.errored, new Promise((r) => setTimeout(() => r(null), 200))]);
    assert.equal(err, null, `the client failed: ${err?.message}`);
    await c.end();
  });

  for (const region of ['wrong-size', 'twice', 'two-fds', 'not-memfd', 'unsealed', 'garbage', 'opened-without']) {
    it(`a bad REGION from the server (${region}): our client fails with EPROTO, nothing left mapped`, async () => {
      const c = await againstServer(region);
      const err = await c.errored;
      assert.equal(err.code, 'EPROTO', err.message);
      await c.closed;
      await c.end();
      assert.deepEqual(mappedOf(c.report), [], 'a region of the server\'s left mapped');
    });
  }
});
