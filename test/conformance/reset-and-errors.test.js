'use strict';
/**
 * resetAndDestroy() while connecting / after connect, a second listen() after
 * close with its own callback, write argument errors on a live socket, and
 * exactly one error for a writer whose peer goes away while it is blocked.
 * Each scenario runs on node:net and on xenring (see harness.js); expected
 * values are those net produces.
 */
const assert = require('node:assert');
const { describeBoth, once, startServer, closeServer, closed, trackSocket, delay } = require('./harness');

/** Resolves with the accepted socket's error and hadError once it closes. */
function acceptedOutcome(server) {
  return once(server, 'connection').then((s) => {
    const errors = [];
    s.on('error', (e) => errors.push(e));
    return closed(s).then((hadError) => ({ errors, hadError }));
  });
}

function assertReset({ errors, hadError }) {
  assert.strictEqual(errors.length, 1, `errors: ${errors.map((e) => e.code)}`);
  assert.strictEqual(errors[0].code, 'ECONNRESET');
  assert.strictEqual(errors[0].message, 'read ECONNRESET');
  assert.strictEqual(errors[0].name, 'Error');
  assert.strictEqual(hadError, true);
}

describeBoth('reset: resetAndDestroy() around connect', (impl) => {
  // Node: test/parallel/test-net-connect-reset-until-connected.js
  it('while connecting: waits for the connection (connect is emitted), then resets; the peer gets read ECONNRESET', async () => {
    const { server, port } = await startServer(impl);
    const peer = acceptedOutcome(server);
    const sock = impl.connect(port);
    const log = trackSocket(sock);
    assert.strictEqual(sock.connecting, true);
    assert.strictEqual(sock.resetAndDestroy(), sock);
    assert.strictEqual(sock.destroyed, false);
    assert.strictEqual(await log.closed, false);
    assert.deepStrictEqual(log.now(), ['connect', 'ready', 'close:false']);
    assertReset(await peer);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-connect-reset-after-destroy.js
  it('after connect: resetAndDestroy().destroy() returns the socket, no error here; a later write gets ERR_STREAM_DESTROYED', async () => {
    const { server, port } = await startServer(impl);
    const peer = acceptedOutcome(server);
    const sock = impl.connect(port);
    const log = trackSocket(sock);
    await once(sock, 'connect');
    assert.strictEqual(sock.resetAndDestroy().destroy(), sock);
    assert.strictEqual(sock.destroyed, true);
    const writeErr = await new Promise((resolve) => sock.write(Buffer.from('late'), resolve));
    assert.strictEqual(writeErr.code, 'ERR_STREAM_DESTROYED');
    assert.strictEqual(writeErr.message, 'Cannot call write after a stream was destroyed');
    assert.strictEqual(await log.closed, false);
    await delay(10);
    assert.deepStrictEqual(log.now(), ['connect', 'ready', 'close:false']);
    assertReset(await peer);
    await closeServer(server);
  });
});

describeBoth('server: listen callbacks are one-shot', (impl) => {
  // Node: test/parallel/test-net-server-listen-remove-callback.js
  it('listen(0, cb), close, listen(0, cb2) from the close handler: each cb once, no listening listener left behind', async () => {
    const server = impl.createServer();
    const calls = { first: 0, second: 0 };
    const leftAtClose = [];
    server.on('close', () => leftAtClose.push(server.listeners('listening').length));
    const done = new Promise((resolve) => {
      impl.listen(server, 0, () => {
        calls.first++;
        server.close();
      });
      server.once('close', () => {
        impl.listen(server, 0, () => {
          calls.second++;
          server.close(resolve);
        });
      });
    });
    await done;
    await delay(10);
    assert.deepStrictEqual(calls, { first: 1, second: 1 });
    assert.deepStrictEqual(leftAtClose, [0, 0]);
    assert.strictEqual(server.listening, false);
  });
});

describeBoth('socket: write argument error on a live socket', (impl) => {
  // Node: test/parallel/test-net-socket-write-error.js
  it('write(1337) after connect throws ERR_INVALID_ARG_TYPE (TypeError) and leaves the socket usable: end, peer end, close(false)', async () => {
    const { server, port } = await startServer(impl, (s) => s.resume());
    const sock = impl.connect(port);
    const log = trackSocket(sock);
    await once(sock, 'connect');
    assert.throws(() => sock.write(1337), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    assert.strictEqual(sock.destroyed, false);
    sock.end();
    sock.resume();
    assert.strictEqual(await log.closed, false);
    assert.deepStrictEqual(log.now(), ['connect', 'ready', 'finish', 'end:destroyed=false:writable=false', 'close:false']);
    await closeServer(server);
  });
});

describeBoth('socket: one error for a writer whose peer goes away', (impl) => {
  const TEN_MIB = Buffer.alloc(10 * 1024 * 1024, 0x62);

  /** A connected pair: the client and the accepted socket `s`, whose events `log` records. */
  async function pair(pauseClient) {
    const { server, port } = await startServer(impl);
    const accepted = once(server, 'connection');
    const client = impl.connect(port);
    if (pauseClient) client.pause(); // never reads: the writer stays blocked
    await once(client, 'connect');
    const s = await accepted;
    return { server, client, s, log: trackSocket(s, ['error', 'close', 'drain']) };
  }

  /** After the 10 MiB write failed: one error, close(true), the write counted. */
  async function assertOneWriteError(s, log, server) {
    assert.strictEqual(await log.closed, true);
    await delay(20);
    assert.strictEqual(log.length, 2, log.join());
    assert.match(log[0], /^error:(EPIPE|ECONNRESET)$/);
    assert.strictEqual(log[1], 'close:true');
    // As net: a write handed on counts even though it then failed.
    assert.strictEqual(s.bytesWritten, TEN_MIB.length);
    await closeServer(server);
  }

  // Node: test/parallel/test-net-error-twice.js
  it('peer destroyed, then 10 MiB written: exactly one error (EPIPE or ECONNRESET), then close(true)', async () => {
    const { server, client, s, log } = await pair(false);
    client.destroy();
    s.write(TEN_MIB);
    await assertOneWriteError(s, log, server);
  });

  // A request/response server that answers on 'end' (allowHalfOpen) while
  // its client wrote its request and destroyed the socket at once: over TCP
  // the answer goes to a closed peer and nothing fails (the peer's RST only
  // fails a later write); xenring raised EPIPE here, an unhandled 'error'
  // that crashed such a server (found by a new user's walkthrough).
  it("allowHalfOpen server answering a client that wrote and destroyed: end(reply) on 'end' finishes, no 'error', close(false)", async () => {
    const { server, port } = await startServer(impl, { allowHalfOpen: true });
    const accepted = once(server, 'connection');
    const client = impl.connect(port);
    await once(client, 'connect');
    const s = await accepted;
    const log = trackSocket(s, ['data', 'end', 'finish', 'error', 'close']);
    s.on('end', () => s.end('bye\n'));
    client.write('request');
    client.destroy();
    assert.strictEqual(await log.closed, false);
    await delay(20);
    assert.deepStrictEqual(log.now(), ['data:7', 'end:destroyed=false:writable=true', 'finish', 'close:false']);
    assert.strictEqual(s.bytesWritten, 4);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-stream.js (server side). The peer closes
  // with our bytes unread, which TCP answers with an RST: net's writer gets
  // ECONNRESET (from its read, or its write when it is not reading), never
  // EPIPE or a clean end. Both directions: the accepted socket writing to a
  // client, and a client writing to an accepted socket.
  for (const writerSide of ['server', 'client']) {
    it(`${writerSide} writer blocked on 10 MiB when its peer is destroyed with the bytes unread: exactly one ECONNRESET, close(true)`, async () => {
      const { server, port } = await startServer(impl, { pauseOnConnect: writerSide === 'client' });
      const accepted = once(server, 'connection');
      const client = impl.connect(port);
      if (writerSide === 'server') client.pause(); // never reads
      await once(client, 'connect');
      const s = await accepted;
      const [writer, reader] = writerSide === 'server' ? [s, client] : [client, s];
      const errors = [];
      writer.on('error', (e) => errors.push(e));
      const log = trackSocket(writer, ['error', 'close', 'end']);
      const readerClosed = closed(reader);
      assert.strictEqual(writer.write(TEN_MIB), false);
      await delay(50);
      assert.ok(writer.writableLength > 0, 'still blocked');
      reader.destroy();
      assert.strictEqual(await log.closed, true);
      assert.strictEqual(await readerClosed, false);
      await delay(20);
      assert.deepStrictEqual(log, ['error:ECONNRESET', 'close:true']);
      assert.match(errors[0].message, /^(read|write) ECONNRESET$/);
      assert.ok(['read', 'write'].includes(errors[0].syscall), errors[0].syscall);
      await closeServer(server);
    });
  }
});
