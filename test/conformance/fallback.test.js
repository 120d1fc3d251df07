'use strict';
/**
 * The TCP fallback against node:net: connect({ fallback }) over its ring and
 * over its TCP path, and a Server listening with `tcp`, each next to the
 * same scenario on net (the reference). Servers run in a child process
 * (fixtures/fallback_server.js); clients here. Found by a differential
 * probe: each of these failed before lib/fallback.ts was reworked.
 */
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { fork, spawn } = require('node:child_process');
const { once } = require('node:events');
require('./harness'); // private XENRING_DIR, inherited by the children
const xenring = require('../..');

const FIXTURE = path.join(__dirname, 'fixtures', 'fallback_server.js');
let seq = 0;

/** A server child: { child, tcpPort, ring, events (every IPC event), next(event) }. */
async function startServer(kind, config = {}) {
  const ring = `fallback-conf-${process.pid}-${++seq}`;
  const child = fork(FIXTURE, [kind, JSON.stringify({ ring, ...config })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const events = [];
  /** Messages not yet taken by next(), and next()s waiting for one. */
  const unread = [];
  const waiters = [];
  child.on('message', (m) => {
    events.push(m.event);
    const i = waiters.findIndex((w) => w.event === m.event);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else unread.push(m);
  });
  /** The first `event` not taken yet, come or to come. */
  const next = (event) => {
    const i = unread.findIndex((m) => m.event === event);
    if (i >= 0) return Promise.resolve(unread.splice(i, 1)[0]);
    return new Promise((resolve) => waiters.push({ event, resolve }));
  };
  const { tcpPort } = await next('listening');
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    if (child.connected) child.disconnect();
    else child.kill();
    await exited;
  };
  return { child, tcpPort, ring, events, next, stop };
}

/** The three ways to reach a server: net straight to its TCP port, and xenring.connect with a fallback, over the ring or (no ring port) TCP. */
const PATHS = {
  net: (srv, opts = {}) => net.connect({ port: srv.tcpPort, host: '127.0.0.1', ...opts }),
  ring: (srv, opts = {}) => xenring.connect({ port: srv.ring, transport: 'local', fallback: { host: '127.0.0.1', port: srv.tcpPort }, ...opts }),
  tcp: (srv, opts = {}) => xenring.connect({ port: `${srv.ring}-none`, transport: 'local', fallback: { host: '127.0.0.1', port: srv.tcpPort }, ...opts }),
};
const serverKind = (p) => (p === 'net' ? 'net' : 'xenring');

/** Records a socket's events in order: connect, data(text), end, finish, error(code), close(hadError). */
function record(s) {
  const log = [];
  s.on('connect', () => log.push('connect'));
  s.on('data', (d) => log.push(`data(${d})`));
  s.on('end', () => log.push('end'));
  s.on('finish', () => log.push('finish'));
  s.on('error', (e) => log.push(`error(${e.code})`));
  const closed = new Promise((resolve) => s.on('close', (hadError) => resolve(log.push(`close(${Boolean(hadError)})`))));
  return { log, closed };
}

describe('TCP fallback against net', function () {
  for (const p of ['net', 'ring', 'tcp']) {
    it(`[${p}] a client that reads late still gets the server's bytes and 'end'`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'hello-end' });
      try {
        const s = PATHS[p](srv);
        s.pause();
        const { log, closed } = record(s);
        await new Promise((r) => setTimeout(r, 300)); // the server's end and close are long done
        s.resume();
        await closed;
        assert.deepEqual(log, ['connect', 'data(hello)', 'end', 'finish', 'close(false)']);
        if (p !== 'net') assert.equal(s.transport, p === 'ring' ? 'local' : 'tcp');
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] the peer ends first: writes still queued here reach it, then both close in order`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'bye-count' });
      try {
        const s = PATHS[p](srv);
        const chunk = Buffer.alloc(64 << 10, 97);
        for (let i = 0; i < 400; i++) s.write(chunk);
        s.end();
        s.resume();
        const { log, closed } = record(s);
        const received = srv.next('received');
        await closed;
        assert.equal((await received).bytes, 400 * chunk.length);
        const events = log.filter((e) => !e.startsWith('data') && e !== 'connect');
        assert.deepEqual([...events].sort(), ['close(false)', 'end', 'finish'], events.join(' '));
        assert.equal(events[events.length - 1], 'close(false)');
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] destroyed before 'connect': write and end callbacks get ERR_SOCKET_CLOSED_BEFORE_CONNECTION`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'idle' });
      try {
        const s = PATHS[p](srv);
        const codes = [];
        s.write('a', (err) => codes.push(`write ${err?.code}`));
        s.end('b', (err) => codes.push(`end ${err?.code}`));
        s.on('error', () => {});
        s.destroy();
        await once(s, 'close');
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(codes.sort(), ['end ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'write ERR_SOCKET_CLOSED_BEFORE_CONNECTION']);
        assert.equal(s.pending, true);
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] bufferSize is what is not sent yet, as net's (a peer that does not read)`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'idle' });
      try {
        const s = PATHS[p](srv);
        s.write(Buffer.alloc(32 << 20));
        assert.equal(s.bufferSize, 32 << 20, 'while connecting');
        await once(s, 'connect');
        await new Promise((r) => setTimeout(r, 300));
        assert.ok(s.bufferSize > 0 && s.bufferSize === s.writableLength, `bufferSize ${s.bufferSize}, writableLength ${s.writableLength}`);
        s.destroy();
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] an aborted signal ends the connect with ABORT_ERR (no fallback)`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'echo' });
      try {
        // net (Node 20) emits 'close' twice for a signal aborted before connect(): its reference is the other case.
        for (const when of p === 'net' ? ['at once'] : ['before', 'at once']) {
          const ac = new AbortController();
          if (when === 'before') ac.abort();
          const s = PATHS[p](srv, { signal: ac.signal });
          if (when === 'at once') ac.abort();
          const { log, closed } = record(s);
          await closed;
          assert.deepEqual(log, ['error(ABORT_ERR)', 'close(true)'], when);
          if (p !== 'net') assert.equal(s.transport, null, when);
        }
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] the timeout option: 'timeout' on an idle connection`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'idle' });
      try {
        const s = PATHS[p](srv, { timeout: 150 });
        s.on('error', () => {});
        await once(s, 'timeout');
        assert.equal(s.destroyed, false, "'timeout' does not close");
        s.destroy();
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] net's socket API: destroySoon, address, readyState, pending, bufferSize, setTimeout(0, cb), bytesWritten of queued writes`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'echo' });
      try {
        const s = PATHS[p](srv);
        assert.equal(s.pending, true);
        assert.equal(s.readyState, 'opening');
        const cb = () => {};
        s.setTimeout(1000, cb);
        s.setTimeout(0, cb);
        assert.equal(s.listenerCount('timeout'), 0, 'setTimeout(0, cb) removes cb');
        await once(s, 'connect');
        assert.equal(s.pending, false);
        assert.equal(s.readyState, 'open');
        assert.equal(s.bufferSize, 0);
        assert.equal(typeof s.address(), 'object');
        const chunk = Buffer.alloc(1 << 20, 7);
        for (let i = 0; i < 10; i++) s.write(chunk);
        assert.ok(s.bytesWritten >= 10 << 20, `bytesWritten counts queued writes: ${s.bytesWritten}`);
        let echoed = 0;
        s.on('data', (d) => {
          echoed += d.length;
          if (echoed === 10 << 20) s.destroySoon();
        });
        const { closed } = record(s);
        await closed;
        assert.equal(echoed, 10 << 20);
        assert.equal(s.readyState, 'closed');
      } finally {
        await srv.stop();
      }
    });
  }
});

describe('a Server listening with tcp, against net', function () {
  for (const p of ['net', 'tcp', 'ring']) {
    it(`[${p}] maxConnections counts and refuses (with 'drop') clients of either kind; socket.transport says which`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'idle', maxConnections: 1 });
      try {
        const a = PATHS[p](srv);
        await once(a, 'connect');
        const accepted = await srv.next('connection');
        if (p !== 'net') assert.equal(accepted.transport, p === 'ring' ? 'local' : 'tcp');
        if (p !== 'net') assert.equal(a.transport, p === 'ring' ? 'local' : 'tcp');
        const b = PATHS[p](srv);
        b.on('error', () => {});
        const bGone = new Promise((resolve) => (b.once('end', resolve), b.once('close', resolve)));
        await srv.next('drop');
        await bGone; // refused: closed by the server
        a.destroy();
        b.destroy();
        assert.deepEqual(srv.events.filter((e) => e === 'connection' || e === 'drop'), ['connection', 'drop']);
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] close(): the server's 'close' and callback before its last connection's 'close'`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'idle' });
      try {
        const s = PATHS[p](srv);
        await once(s, 'connect');
        await srv.next('connection');
        srv.child.send({ cmd: 'close' });
        s.end(); // the server's socket ends too (allowHalfOpen false) and closes
        await srv.next('conn-close');
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(srv.events.filter((e) => ['server-close', 'close-cb', 'conn-close'].includes(e)), ['server-close', 'close-cb', 'conn-close']);
      } finally {
        await srv.stop();
      }
    });
  }

  it("no 'connection' before 'listening', also when the ring is up before TCP (a slow host lookup)", async function () {
    // libuv's threads busy: the TCP side's lookup of 'localhost' waits, the ring accepts at once.
    const crypto = require('node:crypto');
    for (let i = 0; i < 4; i++) crypto.pbkdf2('x', 'y', 200000, 64, 'sha512', () => {});
    const port = `fallback-conf-early-${process.pid}`;
    const order = [];
    const server = xenring.createServer((s) => {
      order.push(`connection(listening=${server.listening})`);
      s.destroy();
    });
    server.on('listening', () => order.push('listening'));
    server.listen({ port, transport: 'local', tcp: { host: 'localhost', port: 0 } });
    const c = xenring.connect({ port, transport: 'local' });
    c.on('error', () => {});
    await once(c, 'close');
    await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => server.close(r));
    assert.deepEqual(order, ['listening', 'connection(listening=true)']);
  });

  it('listen(); close(); listen() on the same TCP port at once: the second one listens', async function () {
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const tcpPort = probe.address().port;
    await new Promise((r) => probe.close(r));
    const server = xenring.createServer();
    const errors = [];
    server.on('error', (e) => errors.push(e.code));
    const opts = { port: `fallback-conf-again-${process.pid}`, transport: 'local', tcp: { port: tcpPort } };
    server.listen(opts);
    server.close();
    server.listen(opts);
    await once(server, 'listening');
    assert.deepEqual(errors, []);
    assert.equal(xenring.tcpAddress(server).port, tcpPort);
    const c = net.connect(tcpPort, '127.0.0.1');
    await once(c, 'connect');
    c.destroy();
    await new Promise((r) => server.close(r));
  });

  it('unref() lets the process exit with both listeners open', async function () {
    const srv = await startServer('xenring', { handler: 'idle', unref: true });
    const [code] = await Promise.race([once(srv.child, 'exit'), new Promise((r) => setTimeout(r, 5000, ['still running']))]);
    if (code === 'still running') srv.child.kill();
    assert.equal(code, 0);
  });

  it('a second listen() while the TCP side is binding throws, and leaves no TCP listener behind', async function () {
    const server = xenring.createServer();
    server.listen({ port: `fallback-conf-twice-${process.pid}`, transport: 'local', tcp: { port: 0 } });
    assert.throws(() => server.listen({ port: `fallback-conf-twice2-${process.pid}`, transport: 'local', tcp: { port: 0 } }), { code: 'ERR_SERVER_ALREADY_LISTEN' });
    await once(server, 'listening');
    assert.equal(server.listening, true);
    const { port } = xenring.tcpAddress(server);
    await new Promise((r) => server.close(r));
    const c = net.connect(port, '127.0.0.1');
    const [err] = await once(c, 'error');
    assert.equal(err.code, 'ECONNREFUSED', 'the TCP port is closed');
  });

  it("EADDRINUSE on the ring port is the server's 'error' (uncaught without a listener, as net's), the TCP listener closed", async function () {
    const port = `fallback-conf-inuse-${process.pid}`;
    const first = xenring.createServer().listen({ port, transport: 'local' });
    await once(first, 'listening');
    try {
      const second = xenring.createServer();
      second.listen({ port, transport: 'local', tcp: { port: 0 } });
      const [err] = await once(second, 'error');
      assert.equal(err.code, 'EADDRINUSE');
      assert.equal(second.listening, false);
      assert.equal(xenring.tcpAddress(second), null);
      // No 'error' listener: the process dies of it (it was swallowed, the process left running).
      const code = `require(${JSON.stringify(require.resolve('../..'))}).createServer().listen({ port: ${JSON.stringify(port)}, transport: 'local', tcp: { port: 0 } })`;
      const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const [exitCode] = await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 10000, ['still running']))]);
      if (exitCode === 'still running') child.kill();
      assert.equal(exitCode, 1, stderr);
      assert.match(stderr, /EADDRINUSE/);
    } finally {
      await new Promise((r) => first.close(r));
    }
  });
});

describe('new FallbackSocket() and connect(), against new net.Socket() and connect()', function () {
  /** An unconnected socket of each path; `connect(srv, s)` connects it the way pg does: connect(port, host). */
  const UNCONNECTED = {
    net: () => new net.Socket(),
    ring: (srv) => new xenring.FallbackSocket({ port: srv.ring, transport: 'local' }),
    tcp: (srv) => new xenring.FallbackSocket({ port: `${srv.ring}-none`, transport: 'local' }),
  };
  const dial = (srv, s) => s.connect(srv.tcpPort, '127.0.0.1');
  const EVENTS = ['connect', 'ready', 'data', 'end', 'finish', 'error', 'close'];
  /** Every event of `s` in order, with its argument where it says something. */
  function events(s) {
    const log = [];
    for (const ev of EVENTS) {
      s.on(ev, (x) => log.push(ev === 'data' ? `data(${x})` : ev === 'error' ? `error(${x.code})` : ev === 'close' ? `close(${x})` : ev));
    }
    return log;
  }

  for (const p of ['net', 'ring', 'tcp']) {
    it(`[${p}] connect(port, host) as pg calls it: the ring port from the constructor, TCP from the arguments; a closed socket connects again`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'hello-end' });
      try {
        const s = UNCONNECTED[p](srv);
        assert.equal(s.connecting, false);
        assert.equal(s.pending, true);
        const log = events(s);
        dial(srv, s);
        assert.equal(s.connecting, true);
        await once(s, 'close');
        if (p !== 'net') assert.equal(s.transport, p === 'ring' ? 'local' : 'tcp');
        log.push(`bytesRead ${s.bytesRead}`, '--');
        dial(srv, s);
        await once(s, 'close');
        log.push(`bytesRead ${s.bytesRead}`);
        if (p !== 'net') assert.equal(s.transport, p === 'ring' ? 'local' : 'tcp');
        const once1 = ['connect', 'ready', 'data(hello)', 'end', 'finish', 'close(false)', 'bytesRead 5'];
        assert.deepEqual(log, [...once1, '--', ...once1]);
        // The server saw both connections (its reports may trail our 'close').
        await srv.next('connection');
        await srv.next('connection');
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] a write before connect() fails with ERR_SOCKET_CLOSED; connect() while connecting fails with EALREADY, then close(true)`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'hello-end' });
      try {
        const early = UNCONNECTED[p](srv);
        const log = events(early);
        const closed = new Promise((r) => early.once('close', r)); // events.once() would reject on 'error'
        early.write('x', (err) => log.push(`cb(${err?.code})`));
        await closed;
        // net's 'close' of a socket that never had a handle carries no hadError.
        assert.deepEqual(log, ['cb(ERR_SOCKET_CLOSED)', 'error(ERR_SOCKET_CLOSED)', 'close(undefined)']);

        const twice = UNCONNECTED[p](srv);
        const log2 = events(twice);
        const closed2 = new Promise((r) => twice.once('close', r));
        dial(srv, twice);
        dial(srv, twice);
        await closed2;
        assert.deepEqual(log2, ['error(EALREADY)', 'close(true)']);
      } finally {
        await srv.stop();
      }
    });
  }

  for (const p of ['net', 'ring', 'tcp']) {
    it(`[${p}] an idle timeout set before connect() fires on the connection; destroy() clears it, a reconnected socket has none`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'idle' });
      try {
        const s = UNCONNECTED[p](srv);
        s.on('error', () => {});
        s.setTimeout(150);
        const t0 = Date.now();
        dial(srv, s);
        await once(s, 'timeout');
        assert.ok(Date.now() - t0 >= 140, `'timeout' after ${Date.now() - t0} ms`);
        s.destroy();
        await once(s, 'close');
        let late = 0;
        s.on('timeout', () => late++);
        dial(srv, s);
        await once(s, 'connect');
        await new Promise((r) => setTimeout(r, 400));
        assert.equal(late, 0, "no 'timeout' on the reconnected socket");
        s.destroy();
      } finally {
        await srv.stop();
      }
    });

    it(`[${p}] resetAndDestroy() before connect() is an ERR_SOCKET_CLOSED error, as net's`, async function () {
      const srv = await startServer(serverKind(p), { handler: 'idle' });
      try {
        const s = UNCONNECTED[p](srv);
        const log = events(s);
        const closed = new Promise((r) => s.once('close', r));
        s.resetAndDestroy();
        await closed;
        assert.deepEqual(log, ['error(ERR_SOCKET_CLOSED)', 'close(undefined)']);
      } finally {
        await srv.stop();
      }
    });
  }

  it("setTimeout() before connect() also times the ring's attempt: 'timeout' while a stopped ring server holds the connect", async function () {
    const srv = await startServer('xenring', { handler: 'idle' });
    srv.child.kill('SIGSTOP');
    try {
      const s = new xenring.FallbackSocket({ port: srv.ring, transport: 'local', fallback: { timeout: 3000 } });
      s.on('error', () => {});
      s.setTimeout(200);
      const t0 = Date.now();
      s.connect(srv.tcpPort, '127.0.0.1');
      await once(s, 'timeout');
      assert.equal(s.connecting, true, `'timeout' after ${Date.now() - t0} ms, still connecting`);
      assert.ok(Date.now() - t0 < 2000, `'timeout' after ${Date.now() - t0} ms (the ring wait is 3000)`);
      s.destroy();
    } finally {
      srv.child.kill('SIGCONT');
      await srv.stop();
    }
  });

  it("net's TCP-only options (localAddress, family, lookup) reach the TCP path, as they would reach net.connect()", async function () {
    const srv = await startServer('xenring', { handler: 'hello-end' });
    try {
      for (const p of ['net', 'tcp']) {
        const looked = [];
        const lookup = (host, opts, cb) => {
          looked.push(`${host}/${opts.family}`);
          cb(null, '127.0.0.1', 4);
        };
        const opts = { localAddress: '127.0.0.2', family: 4, lookup };
        const s = p === 'net' ? net.connect({ port: srv.tcpPort, host: 'ring.test', ...opts }) : xenring.connect({ port: `${srv.ring}-none`, transport: 'local', fallback: { host: 'ring.test', port: srv.tcpPort }, ...opts });
        await once(s, 'connect');
        assert.equal(s.localAddress, '127.0.0.2', p);
        assert.deepEqual(looked, ['ring.test/4'], p);
        s.destroy();
      }
    } finally {
      await srv.stop();
    }
  });

  for (const p of ['ring', 'tcp']) {
    it(`[${p}] a socket from xenring.connect({ port, fallback: { host } }) connects again with plain connect(): the same ring port, TCP on that port`, async function () {
      const srv = await startServer('xenring', { handler: 'hello-end' });
      try {
        // [tcp]: the ring port is the TCP port's number (no ring listens there) and fallback names no port: TCP to that port.
        const s = p === 'ring' ? xenring.connect({ port: srv.ring, transport: 'local', fallback: { host: '127.0.0.1', port: srv.tcpPort } }) : xenring.connect({ port: srv.tcpPort, host: '127.0.0.1', transport: 'local', fallback: {} });
        for (let round = 0; round < 2; round++) {
          const chunks = [];
          s.on('data', (d) => chunks.push(d));
          await once(s, 'close');
          s.removeAllListeners('data');
          assert.equal(Buffer.concat(chunks).toString(), 'hello', `round ${round}`);
          assert.equal(s.transport, p === 'ring' ? 'local' : 'tcp');
          if (round === 0) s.connect();
        }
      } finally {
        await srv.stop();
      }
    });
  }

  it("resetAndDestroy() while connecting: connected, then reset (the server's side sees it), the same events as net's", async function () {
    const logs = {};
    for (const p of ['net', 'ring', 'tcp']) {
      const srv = await startServer(serverKind(p), { handler: 'idle' });
      try {
        const s = UNCONNECTED[p](srv);
        const log = events(s);
        const closed = new Promise((r) => s.once('close', r));
        dial(srv, s);
        s.resetAndDestroy();
        await closed;
        await srv.next('conn-close'); // the server's connection ended too (reset, not left open)
        logs[p] = log;
      } finally {
        await srv.stop();
      }
    }
    assert.deepEqual(logs.ring, logs.net);
    assert.deepEqual(logs.tcp, logs.net);
    assert.equal(logs.net[0], 'connect');
  });

  it("unref() before or while connecting, as net's handle: a stopped ring server's unanswered handshake does not hold the process (xenring.connect and FallbackSocket); ref() again does", async function () {
    const srv = await startServer('xenring', { handler: 'idle' });
    srv.child.kill('SIGSTOP');
    const lib = JSON.stringify(require.resolve('../..'));
    const ring = JSON.stringify(srv.ring);
    const cases = {
      'xenring.connect().unref()': `xenring.connect({ port: ${ring}, transport: 'local' }).unref().on('error', () => {});`,
      'FallbackSocket unref() before connect()': `const s = new xenring.FallbackSocket({ port: ${ring}, transport: 'local', fallback: { timeout: 8000 } });
        s.unref(); s.on('error', () => {}); s.connect(${srv.tcpPort}, '127.0.0.1');`,
      // The control: ref'd again, the handshake holds the process until it times out (the test stops waiting first).
      'unref() then ref()': `xenring.connect({ port: ${ring}, transport: 'local' }).unref().ref().on('error', () => {});`,
    };
    try {
      for (const [name, body] of Object.entries(cases)) {
        const t0 = Date.now();
        const child = spawn(process.execPath, ['-e', `const xenring = require(${lib}); ${body}`], { stdio: ['ignore', 'inherit', 'inherit'] });
        const [exitCode] = await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 3000, ['still running']))]);
        if (exitCode === 'still running') child.kill();
        // Before: the handshake's watcher stayed ref'd and held the process until its 10 s timeout.
        if (name === 'unref() then ref()') assert.equal(exitCode, 'still running', name);
        else assert.equal(exitCode, 0, `${name}: ${exitCode} after ${Date.now() - t0} ms`);
      }
    } finally {
      srv.child.kill('SIGCONT');
      await srv.stop();
    }
  });

  it("a TCP-only option net refuses (localAddress 'not-an-ip'): the socket's 'error' once the ring failed, never an uncaught one", async function () {
    const s = xenring.connect({ port: `fallback-conf-none-${process.pid}`, transport: 'local', localAddress: 'not-an-ip', fallback: { port: 1 } });
    const log = events(s);
    await new Promise((r) => s.once('close', r));
    assert.deepEqual(log, ['error(ERR_INVALID_IP_ADDRESS)', 'close(true)']);
  });

  it("options net.connect() refuses that connect() checks at once (keepAliveInitialDelay, host), as net's", function () {
    const srvless = { ring: `fallback-conf-none-${process.pid}`, tcpPort: 1 };
    for (const p of ['net', 'ring', 'tcp']) {
      const s = UNCONNECTED[p](srvless);
      assert.throws(() => s.connect({ port: 1, host: 5 }), { code: 'ERR_INVALID_ARG_TYPE' }, p);
      if (p !== 'net') assert.equal(s.connecting, false, `${p}: nothing started`); // net has set its flag by then
      s.destroy();
    }
    assert.throws(() => net.connect({ port: 1, keepAliveInitialDelay: '1000' }), { code: 'ERR_INVALID_ARG_TYPE' });
    // Before, the ring's failure led to net.connect() throwing inside its 'error' handler: an uncaught error.
    assert.throws(() => xenring.connect({ port: srvless.ring, transport: 'local', keepAliveInitialDelay: '1000', fallback: { port: 1 } }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new xenring.FallbackSocket({ host: 5 }), { code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('connect() without a TCP port anywhere is ERR_MISSING_ARGS; a bad one ERR_SOCKET_BAD_PORT, both before anything starts', function () {
    assert.throws(() => new xenring.FallbackSocket({ fallback: {} }).connect(), { code: 'ERR_MISSING_ARGS' });
    // No TCP port given: the constructor's, here a name, which TCP cannot use.
    assert.throws(() => new xenring.FallbackSocket({ port: 'named' }).connect(), { code: 'ERR_SOCKET_BAD_PORT' });
    const s = new xenring.FallbackSocket({ port: 'named' });
    assert.throws(() => s.connect('named'), { code: 'ERR_SOCKET_BAD_PORT' });
    assert.equal(s.connecting, false);
    assert.throws(() => s.connect(70000), { code: 'ERR_SOCKET_BAD_PORT' });
    assert.throws(() => new xenring.FallbackSocket({ port: 1, fallback: 'tcp' }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new xenring.FallbackSocket('tcp'), { code: 'ERR_INVALID_ARG_TYPE' });
    // Callable without new, as net.Socket (and xenring.Socket).
    const called = xenring.FallbackSocket({ port: 'named' });
    assert.ok(called instanceof xenring.FallbackSocket);
    assert.equal(called.connecting, false);
  });
});
