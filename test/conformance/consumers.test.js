'use strict';
/**
 * Real consumers over net and over xenring, the server always in another
 * process: http (server via emit('connection'), client via createConnection
 * and via a keep-alive Agent), stream.pipeline of 256 MiB with sha256 on both
 * sides, and tls.connect({ socket }) to a tls.Server fed via emit('connection').
 * Node: test/parallel/test-http-generic-streams.js, test-http-createConnection.js,
 * test-stream-pipeline.js (net blocks), test-tls-generic-stream.js.
 */
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { execFileSync } = require('node:child_process');
const { Writable, pipeline } = require('node:stream');
const { describeBoth, once, closed, forkRole, expectCleanExit, trackSocket } = require('./harness');

const SCRIPT = path.join(__dirname, 'consumer-child.js');
const fork = (impl, role, args = []) => forkRole(impl, role, args, { script: SCRIPT });

/** Collects the next IPC message that has `key`. */
const nextMessage = (child, key) =>
  new Promise((resolve) => {
    const on = (m) => {
      if (m && m[key] !== undefined) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
  });

/** Sends a request; resolves { res, body: Buffer }. */
function request(options, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ res, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describeBoth('consumer: http over the transport (server in another process)', (impl) => {
  let child;
  let port;
  beforeEach(async () => {
    const r = await fork(impl, 'http-server');
    child = r.child;
    port = r.msg.port;
  });
  afterEach(async () => {
    child.disconnect();
    await expectCleanExit(child);
  });

  it('http.request({ createConnection }) without an agent: one request, Connection: close', async () => {
    let sock;
    const { res, body } = await request({
      path: '/hello',
      createConnection: () => (sock = impl.connect(port)),
    });
    assert.strictEqual(res.statusCode, 200);
    assert.deepStrictEqual(JSON.parse(body), { url: '/hello', connId: 1, method: 'GET' });
    assert.strictEqual(res.headers.connection, 'close');
    assert.strictEqual(await closed(sock), false);
  });

  it('keep-alive Agent whose createConnection returns our socket: 100 requests on one connection, then 10 MB each way', async () => {
    const created = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agent.createConnection = (opts) => {
      const s = impl.connect(port);
      created.push(s);
      return s;
    };
    for (let i = 0; i < 100; i++) {
      const { res, body } = await request({ agent, path: `/r${i}` });
      assert.strictEqual(res.statusCode, 200);
      assert.deepStrictEqual(JSON.parse(body), { url: `/r${i}`, connId: 1, method: 'GET' });
    }
    assert.strictEqual(created.length, 1);
    // The Agent unref()s and setKeepAlive()s the idle socket, ref()s it on reuse.
    assert.strictEqual(created[0].destroyed, false);

    // 10 MB up (POST), hashed by the server.
    const up = crypto.randomBytes(10 * 1024 * 1024);
    const { body: upBody } = await request({ agent, method: 'POST', path: '/upload', headers: { 'content-length': up.length } }, up);
    const upResult = JSON.parse(upBody);
    assert.deepStrictEqual(upResult, { n: up.length, sha256: crypto.createHash('sha256').update(up).digest('hex'), connId: 1 });

    // 10 MB down, hashed on both sides.
    const serverSha = nextMessage(child, 'bigSha256');
    const { res, body: big } = await request({ agent, path: '/big' });
    assert.strictEqual(res.statusCode, 200);
    assert.strictEqual(big.length, 10 * 1024 * 1024);
    assert.strictEqual(crypto.createHash('sha256').update(big).digest('hex'), (await serverSha).bigSha256);

    assert.strictEqual(created.length, 1, 'all requests reused the one connection');
    child.send('stats');
    assert.deepStrictEqual(await nextMessage(child, 'conns'), { conns: 1 });
    agent.destroy();
    assert.strictEqual(await closed(created[0]), false);
  });

  it('100 concurrent requests through an Agent with maxSockets 4 (connections reused)', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    let made = 0;
    agent.createConnection = () => (made++, impl.connect(port));
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => request({ agent, path: `/c${i}` })));
    results.forEach(({ res, body }, i) => {
      assert.strictEqual(res.statusCode, 200);
      assert.strictEqual(JSON.parse(body).url, `/c${i}`);
    });
    assert.ok(made >= 1 && made <= 4, `connections made: ${made}`);
    agent.destroy();
  });
});

describeBoth('consumer: stream.pipeline (source in another process)', (impl) => {
  it('256 MiB through pipeline() on both sides, sha256 equal, byte counters exact', async () => {
    const TOTAL = 256 * 1024 * 1024;
    const { child, msg } = await fork(impl, 'pipeline-source', [TOTAL]);
    const sent = nextMessage(child, 'sha256');
    const sock = impl.connect(msg.port);
    const hash = crypto.createHash('sha256');
    let n = 0;
    const sink = new Writable({
      write(chunk, _enc, cb) {
        n += chunk.length;
        hash.update(chunk);
        cb();
      },
    });
    await new Promise((resolve, reject) => pipeline(sock, sink, (err) => (err ? reject(err) : resolve())));
    const r = await sent;
    assert.strictEqual(r.err, null);
    assert.strictEqual(n, TOTAL);
    assert.strictEqual(r.sent, TOTAL);
    assert.strictEqual(sock.bytesRead, TOTAL);
    assert.strictEqual(hash.digest('hex'), r.sha256);
    child.disconnect();
    await expectCleanExit(child);
  });
});

describeBoth('consumer: tls.connect({ socket }) (TLS server in another process)', (impl) => {
  let dir;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-tls-'));
    try {
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
          '-addext', 'subjectAltName=DNS:localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
        { stdio: 'ignore' },
      );
    } catch {
      // No openssl: use the fixed test key committed for this purpose.
      const fx = path.join(__dirname, 'fixtures');
      fs.copyFileSync(path.join(fx, 'test-key.pem'), path.join(dir, 'key.pem'));
      fs.copyFileSync(path.join(fx, 'test-cert.pem'), path.join(dir, 'cert.pem'));
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('handshake verifies the certificate; 1 MiB echoed through TLS; clean close on both layers', async () => {
    const { child, msg } = await fork(impl, 'tls-server', [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')]);
    const serverSecure = nextMessage(child, 'secure');
    const raw = impl.connect(msg.port);
    const t = tls.connect({ socket: raw, ca: fs.readFileSync(path.join(dir, 'cert.pem')), servername: 'localhost' });
    await once(t, 'secureConnect');
    assert.strictEqual(t.authorized, true, String(t.authorizationError));
    assert.strictEqual(t.connecting, false);
    assert.match(t.getProtocol(), /^TLSv1\.[23]$/);
    const s = await serverSecure;
    assert.strictEqual(s.connecting, false);
    const payload = crypto.randomBytes(1024 * 1024).toString('latin1').replace(/[^a-z]/g, 'q');
    const parts = [];
    t.on('data', (d) => parts.push(d));
    t.end(payload);
    await once(t, 'end');
    const echoed = Buffer.concat(parts).toString('latin1');
    assert.strictEqual(echoed.length, payload.length);
    assert.ok(echoed === payload.toUpperCase(), 'echo is the upper-cased payload');
    assert.strictEqual(await closed(raw), false);
    child.disconnect();
    await expectCleanExit(child);
  });

  // Issue 12 item 2: the client ends right after writing; the server's
  // sockets have the default allowHalfOpen (false), so the raw socket sees
  // the FIN while TLS still has most of the echo to send.
  for (const mode of ['default', 'tlssocket']) {
    const form = mode === 'default' ? 'tls.Server + emit(connection)' : 'new tls.TLSSocket(socket, { isServer: true })';
    it(`${form} over a default (allowHalfOpen false) socket: the whole echo arrives after the client's FIN`, async () => {
      const { child, msg } = await fork(impl, 'tls-server', [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem'), mode]);
      const childRawClosed = nextMessage(child, 'rawClose');
      const raw = impl.connect(msg.port);
      const rawClosed = closed(raw);
      const t = tls.connect({ socket: raw, ca: fs.readFileSync(path.join(dir, 'cert.pem')), servername: 'localhost' });
      await once(t, 'secureConnect');
      const hash = crypto.createHash('sha256');
      let n = 0;
      t.on('data', (d) => {
        n += d.length;
        hash.update(d);
      });
      const size = 8 * 1024 * 1024;
      t.end(Buffer.alloc(size, 'a'));
      const events = trackSocket(t, ['end', 'error', 'close']);
      assert.strictEqual(await events.closed, false);
      assert.deepStrictEqual(events, ['end:destroyed=false:writable=false', 'close:false']);
      assert.strictEqual(n, size);
      assert.strictEqual(hash.digest('hex'), crypto.createHash('sha256').update(Buffer.alloc(size, 'A')).digest('hex'));
      assert.strictEqual(await rawClosed, false);
      assert.strictEqual((await childRawClosed).rawClose, false);
      child.disconnect();
      await expectCleanExit(child);
    });
  }
});
