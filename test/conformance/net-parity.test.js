'use strict';
/**
 * Behaviours Node's own test/parallel/test-net-* tests check that the other
 * conformance files do not: listen/close ordering, what keeps a process
 * alive, AbortSignal options, argument errors, counters across reconnects,
 * captureRejections, constructor forms. Each runs on node:net first, then on
 * xenring (see harness.js). Our own tests of the same behaviours; no Node
 * test code is copied. The Node test each follows is named in a comment.
 */
const assert = require('node:assert');
const events = require('node:events');
const {
  describeBoth,
  once,
  startServer,
  closeServer,
  closed,
  trackSocket,
  forkRole,
  expectCleanExit,
  immediate,
  delay,
} = require('./harness');

/**
 * A server whose one connection is read as utf8 to its end, then ended;
 * `received` resolves with the text.
 */
async function utf8Collector(impl) {
  let done;
  const received = new Promise((r) => (done = r));
  const { server, port } = await startServer(impl, (s) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (text += d));
    s.on('end', () => {
      s.end();
      done(text);
    });
  });
  return { server, port, received };
}

/** listen() with no host, so net binds synchronously as it does for a path. */
const listenAny = (impl, server, ...rest) => server.listen(0, ...rest);

describeBoth('net parity: listen and close ordering', (impl) => {
  // Node: test/parallel/test-net-listen-close-server.js, test-net-server-close-before-calling-lookup-callback.js
  it('listen(0) then close() in the same tick: no listening, close cb without error, one close', async () => {
    const server = impl.createServer();
    const log = [];
    server.on('listening', () => log.push('listening'));
    server.on('close', () => log.push('close'));
    listenAny(impl, server);
    const err = await new Promise((resolve) => server.close(resolve));
    await delay(50);
    assert.strictEqual(err, undefined);
    assert.deepStrictEqual(log, ['close']);
    assert.strictEqual(server.listening, false);
  });

  // Node: test/parallel/test-net-server-address.js (address right after listen)
  it('address() right after listen() returns the bound port; listening true', async () => {
    const server = impl.createServer();
    listenAny(impl, server);
    const addr = server.address();
    assert.ok(addr && typeof addr.port === 'number' && addr.port > 0, `address ${JSON.stringify(addr)}`);
    assert.strictEqual(server.listening, true);
    await once(server, 'listening');
    assert.strictEqual(server.address().port, addr.port);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-server-listen-options.js, test-net-listen-after-destroying-stdin.js (a failed listen leaves the server usable)
  it('a listen() that throws leaves the server able to listen and close', async () => {
    const server = impl.createServer();
    assert.throws(() => server.listen({ port: 65536 }), { code: 'ERR_SOCKET_BAD_PORT' });
    assert.strictEqual(server.listening, false);
    await new Promise((resolve) => listenAny(impl, server, resolve));
    assert.strictEqual(server.listening, true);
    await closeServer(server);
    assert.strictEqual(server.listening, false);
  });

  // Node: test/parallel/test-net-server-call-listen-multiple-times.js
  it('listen() while a listen() is under way throws ERR_SERVER_ALREADY_LISTEN', async () => {
    const server = impl.createServer();
    listenAny(impl, server);
    assert.throws(() => listenAny(impl, server), { code: 'ERR_SERVER_ALREADY_LISTEN' });
    await once(server, 'listening');
    await closeServer(server);
  });
});

describeBoth('net parity: what keeps a process alive', (impl) => {
  // Node: test/parallel/test-net-connect-paused-connection.js; the handle is
  // active only while reading or writing (test-net-end-close, test-net-socket-end-no-data).
  for (const state of ['paused', 'paused-after-connect', 'unread-then-end', 'unread-over-hwm']) {
    it(`a connected socket left ${state} does not keep its process alive`, async () => {
      const { server, port } = await startServer(impl, (s) => {
        s.on('error', () => {}); // the child exits without closing (xenring: ECONNRESET)
        if (state === 'unread-then-end') s.end(Buffer.alloc(1000, 'x'));
        if (state === 'unread-over-hwm') s.write(Buffer.alloc(4 << 20, 'x'));
      });
      const role = state.startsWith('unread') ? 'unread' : state;
      const { child, msg } = await forkRole(impl, 'idle-socket', [port, role]);
      assert.deepStrictEqual(msg, { connected: true });
      await expectCleanExit(child, 10000);
      await closeServer(server);
    });
  }
});

describeBoth('net parity: AbortSignal options', (impl) => {
  // Node: test/parallel/test-net-connect-abort-controller.js
  it('aborting the signal of a connecting socket: AbortError (ABORT_ERR), no connect, close', async () => {
    const { server, port } = await startServer(impl);
    const ac = new AbortController();
    const s = impl.connect(port, { signal: ac.signal });
    const log = trackSocket(s, ['connect', 'error', 'close']);
    let error;
    s.on('error', (e) => (error = e));
    ac.abort();
    await log.closed;
    assert.strictEqual(error.name, 'AbortError');
    assert.strictEqual(error.code, 'ABORT_ERR');
    assert.deepStrictEqual(log.slice(0, 1), ['error:ABORT_ERR']);
    assert.ok(!log.includes('connect'));
    await closeServer(server);
  });

  it('an already aborted signal: AbortError, never connects', async () => {
    const { server, port } = await startServer(impl);
    const s = impl.connect(port, { signal: AbortSignal.abort() });
    const log = trackSocket(s, ['connect', 'error', 'close']);
    await log.closed;
    assert.strictEqual(log[0], 'error:ABORT_ERR');
    assert.ok(!log.includes('connect'));
    await closeServer(server);
  });

  it('aborting after connect destroys the connected socket with AbortError; the peer sees it close', async () => {
    let peer;
    const { server, port } = await startServer(impl, (p) => {
      peer = p;
      p.on('error', () => {});
      p.resume();
    });
    const ac = new AbortController();
    const s = impl.connect(port, { signal: ac.signal });
    await once(s, 'connect');
    const log = trackSocket(s, ['error', 'close']);
    ac.abort();
    await log.closed;
    assert.deepStrictEqual(log, ['error:ABORT_ERR', 'close:true']);
    while (!peer) await immediate();
    if (!peer.destroyed) await closed(peer);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-socket-constructor.js / stream signal validation
  it('an invalid signal is rejected with ERR_INVALID_ARG_TYPE (Socket and listen)', () => {
    assert.throws(() => new impl.Socket({ signal: 1 }), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    assert.throws(() => new impl.Socket({ signal: {} }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => impl.createServer().listen({ port: 0, signal: 'x' }), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
  });

  // Node: test/parallel/test-net-server-listen-options-signal.js
  it('listen({ signal }): aborting closes the server; an aborted one never listens', async () => {
    const ac = new AbortController();
    const server = impl.createServer();
    server.listen({ port: 0, signal: ac.signal });
    await once(server, 'listening');
    const closing = once(server, 'close');
    ac.abort();
    await closing;
    assert.strictEqual(server.listening, false);

    const server2 = impl.createServer();
    const log = [];
    server2.on('listening', () => log.push('listening'));
    server2.on('close', () => log.push('close'));
    server2.listen({ port: 0, signal: AbortSignal.abort() });
    await once(server2, 'close');
    await delay(50);
    assert.deepStrictEqual(log, ['close']);
    assert.strictEqual(server2.listening, false);
  });
});

describeBoth('net parity: argument errors', (impl) => {
  // Node: test/parallel/test-net-connect-options-port.js, test-net-server-listen-options.js,
  // test-net-socket-constructor.js, test-net-connect-no-arg.js
  const cases = [
    ['connect()', (lib) => lib.connect(), 'ERR_MISSING_ARGS', TypeError],
    ['connect({})', (lib) => lib.connect({}), 'ERR_MISSING_ARGS', TypeError],
    ['connect(-1)', (lib) => lib.connect(-1), 'ERR_SOCKET_BAD_PORT', RangeError],
    ['connect(65536)', (lib) => lib.connect(65536), 'ERR_SOCKET_BAD_PORT', RangeError],
    ['connect({ port: 1.5 })', (lib) => lib.connect({ port: 1.5 }), 'ERR_SOCKET_BAD_PORT', RangeError],
    // Strings net reads as numbers (xenring also takes names: these are none).
    ...['-1', '1.5', '', ' ', '65536'].map((p) => [`connect({ port: '${p}' })`, (lib) => lib.connect({ port: p }), 'ERR_SOCKET_BAD_PORT', RangeError]),
    ['connect({ port: true })', (lib) => lib.connect({ port: true }), 'ERR_INVALID_ARG_TYPE', TypeError],
    ['connect({ port: null })', (lib) => lib.connect({ port: null }), 'ERR_INVALID_ARG_TYPE', TypeError],
    ['new Socket({ objectMode })', (lib) => new lib.Socket({ objectMode: true }), 'ERR_INVALID_ARG_VALUE', TypeError],
    ['new Socket({ readableObjectMode })', (lib) => new lib.Socket({ readableObjectMode: true }), 'ERR_INVALID_ARG_VALUE', TypeError],
    ['new Socket({ writableObjectMode })', (lib) => new lib.Socket({ writableObjectMode: true }), 'ERR_INVALID_ARG_VALUE', TypeError],
    ['listen({})', (lib) => lib.createServer().listen({}), 'ERR_INVALID_ARG_VALUE', TypeError],
    ['listen(true)', (lib) => lib.createServer().listen(true), 'ERR_INVALID_ARG_VALUE', TypeError],
    ['listen({ port: true })', (lib) => lib.createServer().listen({ port: true }), 'ERR_INVALID_ARG_VALUE', TypeError],
    ['listen(-1)', (lib) => lib.createServer().listen(-1), 'ERR_SOCKET_BAD_PORT', RangeError],
    ['listen(65536)', (lib) => lib.createServer().listen(65536), 'ERR_SOCKET_BAD_PORT', RangeError],
    ['listen({ port: 1.5 })', (lib) => lib.createServer().listen({ port: 1.5 }), 'ERR_SOCKET_BAD_PORT', RangeError],
  ];
  for (const [what, fn, code, Kind] of cases) {
    it(`${what} throws ${code}`, () => {
      assert.throws(() => fn(impl.lib), (err) => {
        assert.strictEqual(err.code, code);
        assert.ok(err instanceof Kind, `${err.name}: ${err.message}`);
        return true;
      });
    });
  }

  it('listen({ port: null }), listen(undefined), listen(cb): any free port', async () => {
    for (const args of [[{ port: null }], [undefined], []]) {
      const server = impl.createServer();
      await new Promise((resolve) => server.listen(...args, resolve));
      assert.ok(server.address().port > 0);
      await closeServer(server);
    }
  });

  // Node: test/parallel/test-net-connect-after-destroy.js, test-net-socket-connecting.js
  it('a connect() that throws synchronously: the socket can connect afterwards; _connecting mirrors connecting', async () => {
    const { server, port } = await startServer(impl);
    const s = new impl.Socket();
    assert.throws(() => s.connect({ port: -1 }), { code: 'ERR_SOCKET_BAD_PORT' });
    // net sets connecting before it checks the port (and leaves it true);
    // xenring checks first and stays as it was (see CONFORMANCE.md).
    assert.strictEqual(s.connecting, impl.name === 'net');
    assert.strictEqual(s._connecting, s.connecting);
    s.connect(impl.connectOptions(port));
    assert.strictEqual(s.connecting, true);
    assert.strictEqual(s._connecting, true);
    await once(s, 'connect');
    assert.strictEqual(s._connecting, false);
    s.destroy();
    await closed(s);
    await closeServer(server);
  });
});

describeBoth('net parity: constructors, properties, options', (impl) => {
  // Node: test/parallel/test-net-socket-no-new.js? (net allows calling Socket and Server without new)
  it('Socket() and Server() work without new', () => {
    const s = impl.lib.Socket();
    assert.ok(s instanceof impl.lib.Socket);
    s.destroy();
    const server = impl.lib.Server();
    assert.ok(server instanceof impl.lib.Server);
  });

  // Node: test/parallel/test-net-socket-byteswritten.js, test-net-bytes-written-large.js
  it('Socket.prototype.bytesWritten is undefined (not NaN)', () => {
    assert.strictEqual(impl.lib.Socket.prototype.bytesWritten, undefined);
  });

  // Node: test/parallel/test-net-socket-constructor.js (highWaterMark)
  it('the highWaterMark option sets both directions (and wins over the readable/writable variants)', () => {
    const s = new impl.Socket({ highWaterMark: 1234 });
    assert.strictEqual(s.readableHighWaterMark, 1234);
    assert.strictEqual(s.writableHighWaterMark, 1234);
    s.destroy();
    const t = new impl.Socket({ highWaterMark: 1234, readableHighWaterMark: 99 });
    assert.strictEqual(t.readableHighWaterMark, 1234);
    t.destroy();
    const u = new impl.Socket({ readableHighWaterMark: 99, writableHighWaterMark: 77 });
    assert.deepStrictEqual([u.readableHighWaterMark, u.writableHighWaterMark], [99, 77]);
    u.destroy();
  });

  // Node: test/parallel/test-net-reconnect.js, test-net-bytes-stats.js
  it('reconnecting a closed socket 5 times: each connection counts bytesWritten/bytesRead from 0', async () => {
    const { server, port } = await startServer(impl, (p) => {
      p.end('abc'); // 3 bytes each, then FIN
      p.resume();
    });
    const s = new impl.Socket();
    for (let i = 1; i <= 5; i++) {
      s.connect(impl.connectOptions(port));
      await once(s, 'connect');
      s.end(Buffer.alloc(i * 10, 'z'));
      s.resume();
      assert.strictEqual(await closed(s), false);
      assert.strictEqual(s.bytesWritten, i * 10, `connection ${i}`);
      assert.strictEqual(s.bytesRead, 3, `connection ${i}`);
    }
    await closeServer(server);
  });

  // Node: test/parallel/test-net-server-capture-rejection.js
  it('captureRejections: a rejecting async connection handler destroys that socket with the error; the server stays up', async () => {
    const saved = events.captureRejections;
    events.captureRejections = true;
    let server;
    try {
      server = impl.createServer();
    } finally {
      events.captureRejections = saved;
    }
    const serverErrors = [];
    server.on('error', (e) => serverErrors.push(e));
    const accepted = [];
    server.on('connection', async (s) => {
      accepted.push(s);
      s.on('error', () => {});
      throw new Error('handler failed');
    });
    await new Promise((resolve) => impl.listen(server, 0, resolve));
    const c = impl.connect(server.address().port);
    c.on('error', () => {});
    await closed(c);
    const [s] = accepted;
    assert.strictEqual(s.destroyed, true);
    assert.strictEqual(s.errored && s.errored.message, 'handler failed');
    assert.deepStrictEqual(serverErrors, []);
    assert.strictEqual(server.listening, true);
    await closeServer(server);
  });
});

describeBoth('net parity: reading and writing around connect', (impl) => {
  // Node: test/parallel/test-net-server-pause-on-connect.js
  it('pauseOnConnect: an accepted socket gets no data until resume(), then all of it', async () => {
    let accepted;
    const { server, port } = await startServer(impl, { pauseOnConnect: true }, (s) => (accepted = s));
    const c = impl.connect(port, () => c.end('hello paused'));
    while (!accepted) await immediate();
    let got = '';
    accepted.on('data', (d) => (got += d));
    await delay(100);
    assert.strictEqual(got, '');
    assert.strictEqual(accepted.isPaused(), true);
    accepted.resume();
    await once(accepted, 'end');
    assert.strictEqual(got, 'hello paused');
    await closed(c);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-pause-resume-connecting.js
  it('pause() before connect: no data (not even after connect) until resume()', async () => {
    const { server, port } = await startServer(impl, (s) => s.end('from server'));
    const c = impl.connect(port);
    c.pause();
    let got = '';
    c.on('data', (d) => (got += d));
    await once(c, 'connect');
    await delay(100);
    assert.strictEqual(got, '');
    c.resume();
    await once(c, 'end');
    assert.strictEqual(got, 'from server');
    await closeServer(server);
  });

  // Node: test/parallel/test-net-write-connect-write.js, test-net-connect-buffer.js
  it('writes before and after connect reach the peer in order', async () => {
    const { server, port, received } = await utf8Collector(impl);
    const c = impl.connect(port);
    c.write('foo');
    c.on('connect', () => c.end('bar'));
    assert.strictEqual(await received, 'foobar');
    await closed(c);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-socket-ready-without-cb.js
  it("connect() without a callback still emits 'connect' then 'ready'", async () => {
    const { server, port } = await startServer(impl);
    const c = impl.connect(port);
    const log = trackSocket(c, ['connect', 'ready', 'close']);
    await once(c, 'ready');
    assert.deepStrictEqual(log.now(), ['connect', 'ready']);
    c.destroy();
    await log.closed;
    await closeServer(server);
  });

  // Node: test/parallel/test-net-write-arguments.js
  it('write(null) throws ERR_STREAM_NULL_VALUES; write(1) and write({}) throw ERR_INVALID_ARG_TYPE', () => {
    const s = new impl.Socket();
    assert.throws(() => s.write(null), { code: 'ERR_STREAM_NULL_VALUES', name: 'TypeError' });
    for (const bad of [1, {}, true]) assert.throws(() => s.write(bad), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    s.destroy();
  });

  // Node: test/parallel/test-net-large-string.js
  it('a 1 MiB utf8 string with multi-byte characters arrives whole (setEncoding on the reader)', async () => {
    const text = 'žluťoučký kůň '.repeat(40000);
    const { server, port, received } = await utf8Collector(impl);
    const c = impl.connect(port, () => c.end(text, 'utf8'));
    const got = await received;
    assert.strictEqual(got.length, text.length);
    assert.ok(got === text);
    assert.strictEqual(c.bytesWritten, Buffer.byteLength(text));
    await closed(c);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-server-max-connections-close-makes-more-available.js
  it('maxConnections: once an accepted connection closes, a new one is accepted', async () => {
    const accepted = [];
    const { server, port } = await startServer(impl, (s) => {
      accepted.push(s);
      s.resume();
    });
    server.maxConnections = 1;
    const a = impl.connect(port);
    await once(a, 'connect');
    while (accepted.length < 1) await immediate();
    const dropped = once(server, 'drop');
    const b = impl.connect(port);
    b.resume();
    b.on('error', () => {});
    await dropped;
    await closed(b);
    a.destroy();
    await closed(accepted[0]);
    const c = impl.connect(port);
    await once(c, 'connect');
    while (accepted.length < 2) await immediate();
    assert.strictEqual(accepted.length, 2);
    c.destroy();
    await closed(accepted[1]);
    await closeServer(server);
  });
});
