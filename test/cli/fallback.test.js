'use strict';
// Transparent TCP fallback: one Server for ring and TCP clients, and
// connect({ fallback }) choosing the ring when it is there and TCP when not.
// The server runs in a child process; bytes are verified both ways.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const net = require('node:net');
const { spawn } = require('node:child_process');
require('../helpers/fixtures');
const xenring = require('../..');

// Server child: listen({ port: RING, tcp: { port: 0 } }), echo, report each connection's kind.
const SERVER = `
  const xenring = require(${JSON.stringify(require.resolve('../..'))});
  const server = xenring.createServer({ allowHalfOpen: true }, (s) => {
    process.stdout.write('conn ' + (s instanceof xenring.Socket ? 'ring' : 'tcp') + '\\n');
    s.pipe(s);
  });
  server.listen({ port: process.argv[1], tcp: { port: 0 } }, () => {
    process.stdout.write('ready ' + xenring.tcpAddress(server).port + '\\n');
    server.getConnections(() => {});
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

function startServer(ringPort) {
  const child = spawn(process.execPath, ['-e', SERVER, ringPort], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /ready ([0-9]+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, ready, out: () => out, stop: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))) };
}

/** Writes `data`, ends, resolves with what came back before 'end', and 'close''s hadError. */
function echo(socket, data) {
  return new Promise((resolve, reject) => {
    const got = [];
    socket.on('data', (d) => got.push(d));
    socket.on('error', reject);
    socket.on('end', () => {});
    socket.on('close', (hadError) => resolve({ data: Buffer.concat(got), hadError }));
    socket.end(data);
  });
}

describe('TCP fallback', function () {
  const ringPort = `fallback-${process.pid}`;

  it('one Server accepts ring and TCP clients through the same handler', async function () {
    const srv = startServer(ringPort);
    const tcpPort = await srv.ready;
    try {
      const a = crypto.randomBytes(300000);
      const b = crypto.randomBytes(300000);
      const [viaRing, viaTcp] = await Promise.all([
        echo(xenring.connect({ port: ringPort, allowHalfOpen: true }), a),
        echo(net.connect({ port: tcpPort, host: '127.0.0.1', allowHalfOpen: true }), b),
      ]);
      assert.ok(viaRing.data.equals(a));
      assert.ok(viaTcp.data.equals(b));
      assert.deepEqual(srv.out().match(/conn \w+/g).sort(), ['conn ring', 'conn tcp']);
    } finally {
      await srv.stop();
    }
  });

  it('connect({ fallback }) uses the ring when it is there, TCP when it is not, and says which', async function () {
    const srv = startServer(ringPort);
    const tcpPort = await srv.ready;
    const data = crypto.randomBytes(200000);
    const s1 = xenring.connect({ port: ringPort, allowHalfOpen: true, fallback: { host: '127.0.0.1', port: tcpPort } });
    assert.equal(s1.transport, null);
    assert.equal(s1.connecting, true);
    await new Promise((r) => s1.once('connect', r));
    assert.equal(s1.transport, 'local');
    const r1 = await echo(s1, data);
    assert.ok(r1.data.equals(data));
    assert.equal(r1.hadError, false);
    await srv.stop();

    // The ring server went away; a TCP server remains on the fallback port.
    const tcpOnly = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s)).listen(tcpPort, '127.0.0.1');
    await new Promise((r) => tcpOnly.once('listening', r));
    try {
      const t0 = Date.now();
      const s2 = xenring.connect({ port: ringPort, allowHalfOpen: true, fallback: { host: '127.0.0.1', port: tcpPort } }, () => {});
      await new Promise((r) => s2.once('connect', r));
      assert.ok(Date.now() - t0 < 5000, 'no ring listener: TCP is chosen without waiting out the bound');
      assert.equal(s2.transport, 'tcp');
      assert.equal(s2.ringError.code, 'ECONNREFUSED');
      const r2 = await echo(s2, data);
      assert.ok(r2.data.equals(data));
    } finally {
      tcpOnly.close();
    }
  });

  it('a ring listener that never answers: TCP after fallback.timeout', async function () {
    // A real process holds a UNIX seqpacket listener on the rendezvous path and never accepts.
    const path = require('node:path');
    const sockPath = path.join(process.env.XENRING_DIR, `${ringPort}-mute.sock`);
    const mute = spawn('python3', ['-c', [
      'import socket, sys, time',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)',
      's.bind(sys.argv[1]); s.listen(8)',
      'print("ready", flush=True); time.sleep(60)',
    ].join('\n'), sockPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => mute.stdout.once('data', r));
    const tcp = net.createServer((s) => s.end('tcp here')).listen(0, '127.0.0.1');
    await new Promise((r) => tcp.once('listening', r));
    try {
      const t0 = Date.now();
      const s = xenring.connect({ port: `${ringPort}-mute`, fallback: { host: '127.0.0.1', port: tcp.address().port, timeout: 300 } });
      const got = [];
      s.on('data', (d) => got.push(d));
      await new Promise((r, j) => s.once('close', r).once('error', j));
      assert.equal(s.transport, 'tcp');
      assert.equal(s.ringError.code, 'ETIMEDOUT');
      assert.ok(Date.now() - t0 >= 250, 'waited for the ring up to the bound');
      assert.equal(Buffer.concat(got).toString(), 'tcp here');
    } finally {
      mute.kill();
      tcp.close();
      require('node:fs').rmSync(sockPath, { force: true });
    }
  });

  it('neither reachable: the TCP error (ECONNREFUSED), then close(true)', async function () {
    const port = await new Promise((r) => {
      const t = net.createServer().listen(0, '127.0.0.1', () => {
        const p = t.address().port;
        t.close(() => r(p));
      });
    });
    const s = xenring.connect({ port: `${ringPort}-none`, fallback: { host: '127.0.0.1', port } });
    const events = [];
    s.on('error', (e) => events.push(`error ${e.code}`));
    await new Promise((r) => s.once('close', (hadError) => r(events.push(`close ${hadError}`))));
    assert.deepEqual(events, ['error ECONNREFUSED', 'close true']);
  });

  it("validates the fallback target and listen's tcp as net validates a port", function () {
    for (const port of [70000, -1, 1.5, 'abc']) {
      assert.throws(() => xenring.connect({ port: 1, fallback: { port } }), { code: 'ERR_SOCKET_BAD_PORT' }, String(port));
      assert.throws(() => net.connect({ port, host: '127.0.0.1' }), { code: 'ERR_SOCKET_BAD_PORT' }, `net ${port}`);
      assert.throws(() => xenring.createServer().listen({ port: 1, tcp: { port } }), { code: 'ERR_SOCKET_BAD_PORT' }, String(port));
    }
    assert.throws(() => xenring.connect({ port: 1, fallback: { port: null } }), { code: 'ERR_INVALID_ARG_TYPE' });
    // No fallback.port: the port connect() is given, which must then be a TCP port.
    assert.throws(() => xenring.connect({ port: 'named', fallback: {} }), { code: 'ERR_SOCKET_BAD_PORT' });
    assert.throws(() => new xenring.FallbackSocket({ fallback: {} }).connect(), { code: 'ERR_MISSING_ARGS' });
    assert.throws(() => xenring.connect({ port: 1, fallback: 'tcp' }), { code: 'ERR_INVALID_ARG_TYPE' });
    // A bad ring option with tcp: thrown at once, nothing left listening (it was an uncaught error later).
    const server = xenring.createServer();
    assert.throws(() => server.listen({ port: `bad-${process.pid}`, ringSize: 3, tcp: { port: 0 } }), { code: 'ERR_OUT_OF_RANGE' });
    assert.equal(server.listening, false);
    assert.equal(xenring.tcpAddress(server), null);
  });
});
