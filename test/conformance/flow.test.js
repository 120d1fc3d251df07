'use strict';
/**
 * Data flow: backpressure/drain, byte counters, bufferSize, idle timeouts.
 * Run on node:net and on xenring (see harness.js).
 */
const assert = require('node:assert');
const crypto = require('node:crypto');
const { describeBoth, once, startServer, closeServer, closed, delay, forkRole, expectCleanExit } = require('./harness');

/** Deterministic pseudo-random bytes (so both sides can agree on a hash). */
function pattern(n, seed = 1) {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describeBoth('flow: backpressure and drain', (impl) => {
  // Node: test/parallel/test-net-throttle.js
  it('write until false, two more; a slow reader in another process pauses/resumes and gets every byte', async () => {
    // 5 ms per 'data' event: slow even when each event is a 1 MiB pool view.
    const { child, msg } = await forkRole(impl, 'slow-sink-server', [5]);
    const result = new Promise((resolve) => child.once('message', resolve));
    const sock = impl.connect(msg.port);
    await once(sock, 'connect');
    const chunk = pattern(64 * 1024, 7);
    const hash = crypto.createHash('sha256');
    let total = 0;
    let writes = 0;
    const send = () => {
      hash.update(chunk);
      total += chunk.length;
      writes++;
      return sock.write(chunk);
    };
    while (send()) if (writes > 10000) assert.fail('write() never returned false');
    assert.ok(sock.writableNeedDrain, 'writableNeedDrain after write() returned false');
    assert.strictEqual(send(), false);
    assert.strictEqual(send(), false);
    // As net: the bytes still queued (any number >= 0 would pass a mere range check).
    assert.strictEqual(sock.bufferSize, sock.writableLength);
    assert.ok(sock.writableLength <= total);
    assert.ok(sock.writableLength >= 3 * chunk.length - sock.writableHighWaterMark, `writableLength ${sock.writableLength}`);
    const drained = await once(sock, 'drain').then(() => sock.writableLength);
    assert.strictEqual(drained, 0);
    // Then a pump that honours backpressure for a while more: 32 MiB, more
    // than a xenring socket takes before write() says false (its 2 MiB ring,
    // and up to 8 MiB of runs the reader has not taken: copyWindow), so
    // backpressure shows however soon the reader's GC returns pool pages.
    let drains = 0;
    for (let i = 0; i < 512; i++) {
      if (!send()) {
        drains++;
        await once(sock, 'drain');
      }
    }
    sock.end();
    const r = await result;
    assert.strictEqual(r.count, total);
    assert.strictEqual(r.sha256, hash.digest('hex'));
    assert.ok(r.pauses > 1, `pauses ${r.pauses}`);
    assert.ok(drains > 0, 'backpressure was seen while pumping');
    assert.strictEqual(r.bytesRead, total);
    assert.strictEqual(sock.bytesWritten, total);
    await closed(sock);
    child.disconnect();
    await expectCleanExit(child);
  });

  // Node: test/parallel/test-net-sync-cork.js
  it('cork/write/write/uncork of small buffers never reports backpressure; peer gets them in order', async () => {
    let got = Buffer.alloc(0);
    const { server, port } = await startServer(impl, (s) => s.on('data', (d) => (got = Buffer.concat([got, d]))).on('end', () => s.end()));
    const sock = impl.connect(port);
    await once(sock, 'connect');
    const expected = [];
    for (let i = 0; i < 100; i++) {
      sock.cork();
      assert.strictEqual(sock.write(Buffer.from([i, 1])), true);
      assert.strictEqual(sock.write(Buffer.from([i, 2])), true);
      sock.uncork();
      expected.push(i, 1, i, 2);
    }
    sock.end();
    sock.resume();
    await closed(sock);
    assert.deepStrictEqual([...got], expected);
    await closeServer(server);
  });
});

describeBoth('flow: byte counters and bufferSize', (impl) => {
  const MB10 = 10 * 1024 * 1024;

  // Node: test/parallel/test-net-bytes-written-large.js
  for (const [kind, make] of [
    ['Buffer', () => Buffer.alloc(MB10, 'a')],
    ['string', () => 'b'.repeat(MB10)],
  ]) {
    it(`bytesWritten is 10 MB synchronously after end(${kind}); the reader's bytesRead is 10 MB after close`, async () => {
      let serverSide;
      const { server, port } = await startServer(impl, (s) => {
        s.end(make());
        serverSide = s.bytesWritten;
      });
      const sock = impl.connect(port);
      let received = 0;
      sock.on('data', (d) => (received += d.length));
      await closed(sock);
      assert.strictEqual(serverSide, MB10);
      assert.strictEqual(received, MB10);
      assert.strictEqual(sock.bytesRead, MB10);
      await closeServer(server);
    });
  }

  it('bytesWritten after cork + writev of mixed strings and buffers; bytesRead in another process', async () => {
    const { child, msg } = await forkRole(impl, 'slow-sink-server', [0]);
    const result = new Promise((resolve) => child.once('message', resolve));
    const sock = impl.connect(msg.port);
    await once(sock, 'connect');
    sock.cork();
    sock.write('héllo'); // 6 bytes in utf8
    sock.write(Buffer.alloc(1000, 1));
    sock.write('ff00', 'hex');
    sock.uncork();
    sock.end(Buffer.alloc(MB10, 2));
    const expected = 6 + 1000 + 2 + MB10;
    assert.strictEqual(sock.bytesWritten, expected);
    const r = await result;
    assert.strictEqual(r.count, expected);
    assert.strictEqual(r.bytesRead, expected);
    await closed(sock);
    assert.strictEqual(sock.bytesWritten, expected);
    child.disconnect();
    await expectCleanExit(child);
  });

  // Node: test/parallel/test-net-buffersize.js
  it('bufferSize grows by one per 1-byte write while connecting and is 0 at finish', async () => {
    const { server, port } = await startServer(impl, (s) => s.resume());
    const sock = impl.connect(port);
    assert.strictEqual(sock.connecting, true);
    for (let i = 1; i <= 4; i++) {
      sock.write('a');
      assert.strictEqual(sock.bufferSize, i);
    }
    const atFinish = new Promise((resolve) => sock.on('finish', () => resolve(sock.bufferSize)));
    sock.end();
    assert.strictEqual(await atFinish, 0);
    sock.resume();
    await closed(sock);
    await closeServer(server);
  });

  // Node: test/parallel/test-net-bytes-stats.js (reconnecting one object, counters)
  it('bytesRead/bytesWritten are kept after close', async () => {
    const { server, port } = await startServer(impl, (s) => {
      s.on('data', () => {});
      s.on('end', () => s.end('123456'));
    });
    const sock = impl.connect(port);
    sock.end('abcdefghijkl');
    sock.resume();
    await closed(sock);
    assert.strictEqual(sock.bytesWritten, 12);
    assert.strictEqual(sock.bytesRead, 6);
    await closeServer(server);
  });
});

describeBoth('flow: idle timeout', (impl) => {
  // Node: test/parallel/test-net-socket-timeout.js
  it('setTimeout validates its arguments and returns the socket', () => {
    const sock = new impl.Socket();
    assert.strictEqual(sock.timeout, undefined);
    for (const bad of [null, true, '100', [], {}, undefined]) {
      assert.throws(() => sock.setTimeout(bad), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
    }
    for (const bad of [-1, NaN, Infinity, -Infinity]) {
      assert.throws(() => sock.setTimeout(bad), { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' });
    }
    for (const bad of [null, true, 'x', 1, {}]) {
      assert.throws(() => sock.setTimeout(1, bad), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    // (net stores `timeout` before validating, and arms the timer before it
    // rejects the callback; xenring validates first. Not compared.)
    assert.strictEqual(sock.setTimeout(0), sock);
    assert.strictEqual(sock.timeout, 0);
    sock.destroy();
    // After destroy it is a no-op that still returns the socket.
    assert.strictEqual(sock.setTimeout(5), sock);
  });

  // Node: test/parallel/test-net-socket-timeout.js, test-net-settimeout.js
  it("'timeout' fires once, does not destroy; the socket still works afterwards", async () => {
    let got = '';
    const { server, port } = await startServer(impl, (s) => s.on('data', (d) => (got += d)).on('end', () => s.end()));
    const sock = impl.connect(port);
    await once(sock, 'connect');
    let fired = 0;
    let cbCalls = 0;
    assert.strictEqual(
      sock.setTimeout(40, () => cbCalls++),
      sock,
    );
    assert.strictEqual(sock.timeout, 40);
    sock.on('timeout', () => fired++);
    await once(sock, 'timeout');
    assert.strictEqual(sock.destroyed, false);
    await delay(150);
    assert.strictEqual(fired, 1);
    assert.strictEqual(cbCalls, 1);
    sock.setTimeout(0);
    sock.end('still alive');
    sock.resume();
    assert.strictEqual(await closed(sock), false);
    assert.strictEqual(got, 'still alive');
    await closeServer(server);
  });

  // Node: test/parallel/test-net-settimeout.js
  it('setTimeout(0) cancels a pending timeout and removes its callback', async () => {
    const { server, port } = await startServer(impl);
    const sock = impl.connect(port);
    await once(sock, 'connect');
    let fired = 0;
    const cb = () => fired++;
    sock.setTimeout(30, cb);
    sock.on('timeout', cb);
    sock.setTimeout(0, cb);
    assert.strictEqual(sock.timeout, 0);
    await delay(150);
    assert.strictEqual(fired, 0);
    assert.strictEqual(sock.listenerCount('timeout'), 1); // the plain listener stays, the setTimeout one is gone
    sock.destroy();
    await closeServer(server);
  });

  // Node: test/parallel/test-net-write-slow.js, test-net-can-reset-timeout.js
  for (const dir of ['received', 'sent']) {
    it(`the idle timer is reset by I/O (${dir} data every 30 ms for 600 ms, timeout 200 ms), fires once idle`, async () => {
      let peer;
      const { server, port } = await startServer(impl, (s) => {
        peer = s;
        s.resume();
      });
      const sock = impl.connect(port);
      sock.resume();
      await once(sock, 'connect');
      while (!peer) await delay(1);
      const events = [];
      sock.setTimeout(200, () => events.push('timeout'));
      const writer = dir === 'received' ? peer : sock;
      for (let i = 0; i < 20; i++) {
        await delay(30);
        writer.write('.');
      }
      events.push('idle');
      await once(sock, 'timeout');
      assert.deepStrictEqual(events, ['idle', 'timeout']);
      sock.destroy();
      await closeServer(server);
    });
  }

  // Node: test/parallel/test-net-timeout-no-handle.js / connect option `timeout`
  it("the connect option 'timeout' sets the idle timeout", async () => {
    const { server, port } = await startServer(impl);
    const sock = impl.connect(port, { timeout: 30 });
    await once(sock, 'timeout');
    assert.strictEqual(sock.timeout, 30);
    assert.strictEqual(sock.destroyed, false);
    sock.destroy();
    await closeServer(server);
  });
});
