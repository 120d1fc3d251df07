'use strict';
/**
 * Socket lifecycle: half-open, end/close ordering, errors on write after
 * end/FIN/destroy, connect errors. Each scenario runs on node:net and on
 * xenring (see harness.js); expected values are those net produces.
 */
const assert = require('node:assert');
const {
  describeBoth,
  once,
  startServer,
  deadPort,
  closeServer,
  closed,
  trackSocket,
  nextTick,
  delay,
  forkRole,
} = require('./harness');

/** Collects `n` IPC messages that carry `key`. */
function messages(child, key, n) {
  return new Promise((resolve) => {
    const got = [];
    child.on('message', (m) => {
      if (m && m[key] !== undefined) {
        got.push(m);
        if (got.length === n) resolve(got);
      }
    });
  });
}

describeBoth('socket: half-open and end/close ordering', (impl) => {
  let child;
  afterEach(() => child && child.disconnect && child.connected && child.disconnect());

  // Node: test/parallel/test-net-allow-half-open.js, test-net-end-destroyed.js, test-net-writable.js
  it('allowHalfOpen defaults to false: end (not destroyed, still writable), finish, close(false); peer in another process', async () => {
    const r = await forkRole(impl, 'end-server', [1024, false]);
    child = r.child;
    const peerLog = messages(child, 'conn', 1);
    const sock = impl.connect(r.msg.port);
    assert.strictEqual(sock.allowHalfOpen, false);
    const log = trackSocket(sock);
    let wroteInEnd;
    let destroyedNextTick;
    sock.on('end', () => {
      // Still writable inside 'end': the automatic end() comes later.
      wroteInEnd = sock.write('x');
      process.nextTick(() => (destroyedNextTick = sock.destroyed));
    });
    assert.strictEqual(await closed(sock), false);
    assert.deepStrictEqual(log, ['connect', 'ready', 'data:1024', 'end:destroyed=false:writable=true', 'finish', 'close:false']);
    assert.strictEqual(wroteInEnd, true);
    assert.strictEqual(destroyedNextTick, false);
    assert.strictEqual(sock.destroyed, true);
    assert.strictEqual(sock.readyState, 'closed');
    const [peer] = await peerLog;
    // The peer ended first, then got our 'x' and our FIN.
    assert.deepStrictEqual(peer.conn, ['finish', 'data:1', 'end:destroyed=false:writable=false', 'close:false']);
  });

  // Node: test/parallel/test-net-connect-options-allowhalfopen.js
  const forms = {
    'connect(options, cb)': (port, cb) => impl.connect(port, { allowHalfOpen: true }, cb),
    'createConnection(options) + connect event': (port, cb) =>
      impl.lib.createConnection(impl.connectOptions(port, { allowHalfOpen: true })).on('connect', cb),
    'new Socket({allowHalfOpen}).connect(options, cb)': (port, cb) =>
      new impl.Socket({ allowHalfOpen: true }).connect(impl.connectOptions(port), cb),
  };
  for (const [form, make] of Object.entries(forms)) {
    it(`allowHalfOpen true via ${form}: after the peer's FIN, readable=false, writable=true, late write arrives`, async () => {
      const r = await forkRole(impl, 'end-server', [3, true]);
      child = r.child;
      const peerLog = messages(child, 'conn', 1);
      let connected = 0;
      const sock = make(r.msg.port, () => connected++);
      assert.strictEqual(sock.allowHalfOpen, true);
      const log = trackSocket(sock);
      const late = new Promise((resolve) =>
        sock.on('end', () => {
          assert.strictEqual(sock.readable, false);
          assert.strictEqual(sock.writable, true);
          assert.strictEqual(sock.readyState, 'writeOnly');
          setTimeout(() => resolve(sock.write('late')), 10);
        }),
      );
      assert.strictEqual(await late, true);
      sock.end();
      assert.strictEqual(await closed(sock), false);
      assert.strictEqual(connected, 1);
      assert.deepStrictEqual(log, ['connect', 'ready', 'data:3', 'end:destroyed=false:writable=true', 'finish', 'close:false']);
      const [peer] = await peerLog;
      assert.deepStrictEqual(peer.conn, ['finish', 'data:4', 'end:destroyed=false:writable=false', 'close:false']);
    });
  }

  // Node: test/parallel/test-net-socket-close-after-end.js
  it("'close' never comes before 'end' when the reader is slow to read", async () => {
    const { server, port } = await startServer(impl, (s) => s.end('foo'));
    const sock = impl.connect(port);
    const order = [];
    sock.on('end', () => order.push('end'));
    sock.on('close', () => order.push('close'));
    await once(sock, 'connect');
    await delay(100);
    sock.on('data', (d) => order.push(`data:${d}`));
    await closed(sock);
    assert.deepStrictEqual(order, ['data:foo', 'end', 'close']);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-socket-end-callback.js
  it('end(cb), end(data, cb), end(data, encoding, cb) all call cb', async () => {
    const { server, port } = await startServer(impl, (s) => s.resume());
    const calls = [];
    const variants = [(s, cb) => s.end(cb), (s, cb) => s.end('abc', cb), (s, cb) => s.end('616263', 'hex', cb)];
    for (const [i, v] of variants.entries()) {
      const sock = impl.connect(port);
      await once(sock, 'connect');
      sock.resume();
      await new Promise((resolve) => assert.strictEqual(v(sock, () => resolve(calls.push(i))), sock));
      await closed(sock);
    }
    assert.deepStrictEqual(calls, [0, 1, 2]);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-socket-end-before-connect.js
  it("end('early') while connecting: opening, then connect, finish, end, close(false); peer gets the bytes", async () => {
    let got = '';
    const { server, port } = await startServer(impl, (s) => s.on('data', (d) => (got += d)));
    const sock = impl.connect(port);
    const log = trackSocket(sock);
    sock.end('early');
    assert.strictEqual(sock.connecting, true);
    assert.strictEqual(sock.readyState, 'opening');
    assert.strictEqual(await closed(sock), false);
    assert.deepStrictEqual(log, ['connect', 'ready', 'finish', 'end:destroyed=false:writable=false', 'close:false']);
    assert.strictEqual(got, 'early');
    await closeServer(server);
  });

  // Node: test/parallel/test-net-end-without-connect.js
  it('end() on a never-connected socket: writable false at once; fresh-socket defaults', async () => {
    const sock = new impl.Socket();
    assert.strictEqual(sock.readyState, 'open');
    assert.strictEqual(sock.pending, true);
    assert.strictEqual(sock.connecting, false);
    assert.strictEqual(sock.bytesRead, 0);
    assert.strictEqual(sock.bytesWritten, 0);
    assert.strictEqual(sock.timeout, undefined);
    assert.deepStrictEqual(sock.address(), {});
    sock.end();
    assert.strictEqual(sock.writable, false);
    sock.destroy();
    await closed(sock);
  });

  // Node: test/parallel/test-net-socket-destroy-send.js (+ destroySoon from test-net-pingpong/http usage)
  it('destroySoon() makes writable false synchronously, then finish and close(false); peer gets data and end', async () => {
    const { server, port } = await startServer(impl);
    const peer = once(server, 'connection').then((s) => {
      const l = trackSocket(s);
      return closed(s).then(() => l);
    });
    const sock = impl.connect(port);
    const log = trackSocket(sock);
    sock.write('abc');
    await once(sock, 'connect');
    sock.destroySoon();
    assert.strictEqual(sock.writable, false);
    assert.strictEqual(await closed(sock), false);
    assert.deepStrictEqual(log, ['connect', 'ready', 'finish', 'close:false']);
    assert.deepStrictEqual(await peer, ['data:3', 'end:destroyed=false:writable=true', 'finish', 'close:false']);
    await closeServer(server);
  });
});

/** A client connected to a reading server, with its 'error' codes and 'close' flags logged in order. */
async function connectLogged(impl) {
  const { server, port } = await startServer(impl, (s) => s.resume());
  const sock = impl.connect(port);
  await once(sock, 'connect');
  const log = [];
  sock.on('error', (e) => log.push(`error:${e.code}`));
  sock.on('close', (h) => log.push(`close:${h}`));
  return { server, sock, log };
}

describeBoth('socket: errors on write and destroy', (impl) => {
  let child;
  afterEach(() => child && child.connected && child.disconnect());

  // Node: test/parallel/test-net-write-after-close.js / stream write-after-end semantics
  it('write after end() -> ERR_STREAM_WRITE_AFTER_END to the callback, then error, then close(true)', async () => {
    const { server, sock, log } = await connectLogged(impl);
    sock.end();
    const ret = sock.write('x', (err) => log.push(`cb:${err && err.code}`));
    assert.strictEqual(ret, false);
    await closed(sock);
    assert.deepStrictEqual(log, ['cb:ERR_STREAM_WRITE_AFTER_END', 'error:ERR_STREAM_WRITE_AFTER_END', 'close:true']);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-write-after-end-nt.js
  it("write inside 'end' after our end() -> EPIPE 'This socket has been ended by the other party', error on a later tick", async () => {
    const r = await forkRole(impl, 'end-server', [0, false]);
    child = r.child;
    const log = [];
    const sock = impl.connect(r.msg.port, () => sock.end());
    sock.resume();
    sock.on('error', (e) => log.push(`error:${e.code}:${e.message}:${e.name}`));
    sock.on('close', (h) => log.push(`close:${h}`));
    sock.on('end', () => {
      const ret = sock.write('hello', (err) => log.push(`cb:${err.code}`));
      log.push(`returned:${ret}`);
      log.push(`errorYet:${log.some((e) => e.startsWith('error'))}`);
    });
    await closed(sock);
    assert.deepStrictEqual(log, [
      'returned:false',
      'errorYet:false',
      'cb:EPIPE',
      'error:EPIPE:This socket has been ended by the other party:Error',
      'close:true',
    ]);
  });

  // Node: test/parallel/test-net-stream.js (client side), §1.4 "destroy(new Error)"
  it("destroy(err) -> 'error' then close(true); the peer (another process) sees a clean end", async () => {
    const r = await forkRole(impl, 'record-server', [false]);
    child = r.child;
    const peerLog = messages(child, 'conn', 1);
    const sock = impl.connect(r.msg.port);
    const log = trackSocket(sock);
    await once(sock, 'connect');
    await new Promise((resolve) => sock.write('hello', resolve));
    const boom = new Error('boom');
    let seen;
    sock.on('error', (e) => (seen = e));
    sock.destroy(boom);
    assert.strictEqual(await closed(sock), true);
    assert.strictEqual(seen, boom);
    assert.deepStrictEqual(log, ['connect', 'ready', 'error:undefined', 'close:true']);
    const [peer] = await peerLog;
    assert.strictEqual(peer.received, 'hello');
    assert.deepStrictEqual(peer.conn, ['data:5', 'end:destroyed=false:writable=true', 'finish', 'close:false']);
  });

  // Node: test/parallel/test-net-socket-destroy-send.js
  it('destroy().destroy() returns the socket; write after destroy -> ERR_STREAM_DESTROYED, no error event, close(false)', async () => {
    const { server, sock, log } = await connectLogged(impl);
    assert.strictEqual(sock.destroy().destroy(), sock);
    const ret = sock.write('x', (err) => log.push(`cb:${err.code}`));
    assert.strictEqual(ret, false);
    await closed(sock);
    await delay(20);
    assert.deepStrictEqual(log, ['cb:ERR_STREAM_DESTROYED', 'close:false']);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-write-cb-on-destroy-before-connect.js
  it('write while connecting then destroy -> ERR_SOCKET_CLOSED_BEFORE_CONNECTION, no connect', async () => {
    const { server, port } = await startServer(impl);
    const accepted = [];
    server.on('connection', (s) => accepted.push(s));
    const sock = impl.connect(port);
    const log = trackSocket(sock);
    assert.strictEqual(sock.connecting, true);
    const cbErr = new Promise((resolve) => sock.write('hi', resolve));
    sock.destroy();
    const err = await cbErr;
    assert.strictEqual(err.code, 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION');
    assert.strictEqual(err.message, 'Socket closed before the connection was established');
    await delay(50);
    assert.deepStrictEqual(log, ['close:false']);
    // The server side (if the connection got that far) is covered by the next test.
    for (const s of accepted) s.destroy();
    await closeServer(server);
  });

  it('a connection abandoned while connecting leaves no open socket on the server', async function () {
    const { server, port } = await startServer(impl);
    const sock = impl.connect(port);
    sock.write('hi', () => {});
    sock.destroy();
    await closed(sock);
    await delay(300); // let a late connection attempt (if any) reach the server
    // net: the server may or may not have accepted it; either way it is closed.
    await Promise.race([closeServer(server), delay(2000).then(() => assert.fail('server still has a connection after 2 s'))]);
  });

  // Node: test/parallel/test-net-socket-destroy-twice.js, test-net-connect-immediate-finish.js
  it('ECONNREFUSED on a port with nothing listening: one error (code, errno, syscall), one close(true), no connect', async () => {
    const port = await deadPort(impl);
    const sock = impl.connect(port);
    const log = trackSocket(sock);
    let err;
    sock.on('error', (e) => {
      err = e;
      sock.destroy(); // destroying inside the handler must not duplicate events
    });
    assert.strictEqual(await closed(sock), true);
    await delay(20);
    assert.deepStrictEqual(log, ['error:ECONNREFUSED', 'close:true']);
    assert.strictEqual(err.code, 'ECONNREFUSED');
    assert.strictEqual(err.errno, -111);
    assert.strictEqual(err.syscall, 'connect');
    assert.match(err.message, /^connect ECONNREFUSED/);
    assert.strictEqual(err.name, 'Error');
  });

  // Node: test/parallel/test-net-server-reset / §1.4 "Peer resetAndDestroy()"
  it('resetAndDestroy() in another process: this side gets ECONNRESET (syscall read) and close(true); resetter close(false)', async () => {
    const { server, port } = await startServer(impl);
    const accepted = once(server, 'connection');
    // The child's only message is its own log, sent after its 'close'.
    const r = forkRole(impl, 'reset-client', [port]);
    const s = await accepted;
    const log = trackSocket(s);
    let err;
    s.on('error', (e) => (err = e));
    s.resume();
    assert.strictEqual(await closed(s), true);
    assert.deepStrictEqual(log.filter((e) => !e.startsWith('data')), ['error:ECONNRESET', 'close:true']);
    assert.strictEqual(err.code, 'ECONNRESET');
    assert.strictEqual(err.syscall, 'read');
    assert.strictEqual(err.message, 'read ECONNRESET');
    const { msg } = await r;
    assert.deepStrictEqual(msg.log, ['close:false']);
    await closeServer(server);
  });

  it('resetAndDestroy() on a never-connected socket: error ERR_SOCKET_CLOSED, then one close', async () => {
    const sock = new impl.Socket();
    const log = trackSocket(sock, ['error', 'close']);
    assert.strictEqual(sock.resetAndDestroy(), sock);
    await closed(sock);
    await delay(10);
    // net emits 'close' with no argument for a socket that never had a handle
    // (xenring: false/true); only the order and count are compared here.
    assert.deepStrictEqual(log.map((e) => e.split(':')[0]), ['error', 'close']);
    assert.strictEqual(log[0], 'error:ERR_SOCKET_CLOSED');
  });

  // Node: test/parallel/test-net-after-close.js
  it('after close: setNoDelay, setKeepAlive, bufferSize, pause, resume, address, remote* do not throw', async () => {
    const { server, port } = await startServer(impl, (s) => s.end());
    const sock = impl.connect(port);
    sock.resume();
    assert.strictEqual(await closed(sock), false);
    assert.strictEqual(sock.setNoDelay(), sock);
    assert.strictEqual(sock.setKeepAlive(true), sock);
    assert.strictEqual(sock.setTimeout(10), sock);
    sock.bufferSize;
    sock.pause();
    sock.resume();
    assert.deepStrictEqual(sock.address(), {});
    assert.strictEqual(sock.remoteAddress, undefined);
    assert.strictEqual(sock.remotePort, undefined);
    assert.strictEqual(sock.remoteFamily, undefined);
    assert.strictEqual(sock.localAddress, undefined);
    assert.strictEqual(sock.localPort, undefined);
    assert.strictEqual(sock.readyState, 'closed');
    await closeServer(server);
  });
});

describeBoth('socket: addresses while connected', (impl) => {
  it('address()/remote*/local* describe the connection; both ends agree on the port', async () => {
    const { server, port } = await startServer(impl);
    const accepted = once(server, 'connection');
    const sock = impl.connect(port);
    await once(sock, 'connect');
    const s = await accepted;
    assert.strictEqual(s.server, server);
    assert.ok(impl.expectedFamily.includes(sock.remoteFamily), sock.remoteFamily);
    assert.strictEqual(sock.remotePort, port);
    assert.strictEqual(s.localPort, port);
    assert.strictEqual(s.address().port, port);
    assert.strictEqual(typeof sock.remoteAddress, 'string');
    assert.strictEqual(typeof s.remoteAddress, 'string');
    assert.deepStrictEqual(Object.keys(sock.address()).sort(), ['address', 'family', 'port']);
    assert.strictEqual(sock.pending, false);
    assert.strictEqual(sock.readyState, 'open');
    sock.destroy();
    await closed(s);
    await closeServer(server);
  });
});
