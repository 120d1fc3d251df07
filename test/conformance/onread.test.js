'use strict';
/**
 * The onread option (net.connect({ onread: { buffer, callback } })): bytes land
 * in the caller's buffer, no 'data' events, 'end' and 'close' as usual, and
 * pause()/resume()/returning false stop and restart the callbacks.
 * Run on node:net and on xenring (see harness.js); the sender is a child process.
 */
const assert = require('node:assert');
const { describeBoth, once, delay, forkRole, expectCleanExit } = require('./harness');

const PERIOD = 251;

/** Checks bytes against the position pattern as they arrive (byte i = i % 251). */
function patternCheck() {
  const st = { received: 0, bad: -1 };
  st.update = (buf, n) => {
    for (let i = 0; i < n && st.bad < 0; i++) if (buf[i] !== (st.received + i) % PERIOD) st.bad = st.received + i;
    st.received += n;
  };
  return st;
}

async function patternServer(impl, bytes, chunk) {
  const { child, msg } = await forkRole(impl, 'pattern-server', [bytes, chunk]);
  return { child, port: msg.port };
}

describeBoth('onread: reading into the caller\'s buffer', (impl) => {
  it('one static buffer: every byte checked, no \'data\', then \'end\' and \'close\'', async () => {
    const BYTES = 8 << 20;
    const { child, port } = await patternServer(impl, BYTES, 100000);
    const sockBuf = Buffer.alloc(64 * 1024);
    const check = patternCheck();
    let calls = 0;
    let sameBuffer = true;
    let self = null;
    const sock = impl.connect(port, {
      onread: {
        buffer: sockBuf,
        callback(nread, buf) {
          calls++;
          self = this;
          if (buf !== sockBuf || nread <= 0 || nread > sockBuf.length) sameBuffer = false;
          check.update(buf, nread);
        },
      },
    });
    const events = [];
    sock.on('data', () => events.push('data'));
    sock.on('end', () => events.push('end'));
    sock.on('close', (hadError) => events.push(`close:${hadError}`));
    await once(sock, 'close');
    assert.deepStrictEqual(events, ['end', 'close:false']);
    assert.strictEqual(self, sock, 'callback runs with this = socket');
    assert.ok(sameBuffer, 'every callback got the static buffer and 0 < nread <= its length');
    assert.strictEqual(check.bad, -1, `first bad byte at ${check.bad}`);
    assert.strictEqual(check.received, BYTES);
    assert.strictEqual(sock.bytesRead, BYTES);
    assert.ok(calls >= BYTES / sockBuf.length, `${calls} callbacks`);
    child.disconnect();
    await expectCleanExit(child);
  });

  it('a buffer function: called once before the first read and once after every callback', async () => {
    const BYTES = 100000;
    const { child, port } = await patternServer(impl, BYTES, 4096);
    const pool = [new Uint8Array(1000), new Uint8Array(1000), new Uint8Array(1000)];
    let gens = 0;
    let calls = 0;
    let wrongBuffer = 0;
    const check = patternCheck();
    const sock = impl.connect(port, {
      onread: {
        buffer: () => pool[gens++ % pool.length],
        callback(nread, buf) {
          calls++;
          // The buffer handed out by the latest call of the function.
          if (buf !== pool[(gens - 1) % pool.length]) wrongBuffer++;
          check.update(buf, nread);
        },
      },
    });
    await once(sock, 'end');
    assert.strictEqual(check.received, BYTES);
    assert.strictEqual(check.bad, -1);
    assert.strictEqual(wrongBuffer, 0);
    assert.ok(calls >= BYTES / 1000, `${calls} callbacks for ${BYTES} bytes in 1000-byte buffers`);
    assert.strictEqual(gens, calls + 1);
    sock.destroy();
    child.disconnect();
    await expectCleanExit(child);
  });

  for (const how of ['returns false', 'calls this.pause()']) {
    it(`a callback that ${how} gets no more bytes until resume(), then all of them`, async () => {
      const BYTES = 2 << 20;
      const { child, port } = await patternServer(impl, BYTES, 65536);
      const check = patternCheck();
      let paused = false;
      let callsWhilePaused = 0;
      let pauses = 0;
      const sock = impl.connect(port, {
        onread: {
          buffer: Buffer.alloc(256 * 1024),
          callback(nread, buf) {
            if (paused) callsWhilePaused++;
            check.update(buf, nread);
            if (pauses >= 3) return true;
            pauses++;
            paused = true;
            setTimeout(() => {
              paused = false;
              this.resume();
            }, 50);
            if (how === 'calls this.pause()') {
              this.pause();
              return undefined;
            }
            return false;
          },
        },
      });
      await once(sock, 'end');
      assert.strictEqual(callsWhilePaused, 0);
      assert.strictEqual(pauses, 3);
      assert.strictEqual(check.bad, -1);
      assert.strictEqual(check.received, BYTES);
      sock.destroy();
      child.disconnect();
      await expectCleanExit(child);
    });
  }

  it('paused before connecting: no callback until resume()', async () => {
    const { child, port } = await patternServer(impl, 300000, 65536);
    const check = patternCheck();
    const sock = impl.connect(port, { onread: { buffer: Buffer.alloc(4096), callback: (n, b) => check.update(b, n) } });
    sock.pause();
    await once(sock, 'connect');
    await delay(100);
    assert.strictEqual(check.received, 0);
    sock.resume();
    await once(sock, 'end');
    assert.strictEqual(check.received, 300000);
    assert.strictEqual(check.bad, -1);
    sock.destroy();
    child.disconnect();
    await expectCleanExit(child);
  });
});

describeBoth('handlers that throw', (impl) => {
  for (const mode of ['data', 'onread']) {
    it(`an exception thrown by a ${mode} handler is uncaught, not a socket 'error'`, async () => {
      const { child, port } = await patternServer(impl, 100000, 1000);
      const boom = new Error('boom');
      let thrown = false;
      const throwOnce = () => {
        if (thrown) return;
        thrown = true;
        throw boom;
      };
      // Mocha's own handler would fail the test: stand in for it meanwhile.
      const saved = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      const caught = new Promise((resolve) => process.once('uncaughtException', resolve));
      try {
        const opts = mode === 'onread' ? { onread: { buffer: Buffer.alloc(4096), callback: throwOnce } } : {};
        const sock = impl.connect(port, opts);
        if (mode === 'data') sock.on('data', throwOnce);
        const errors = [];
        sock.on('error', (e) => errors.push(e));
        assert.strictEqual(await Promise.race([caught, delay(5000).then(() => 'no uncaughtException in 5 s')]), boom);
        await delay(50);
        assert.deepStrictEqual(errors, []);
        sock.destroy();
      } finally {
        for (const l of saved) process.on('uncaughtException', l);
      }
      child.disconnect();
      await expectCleanExit(child);
    });
  }
});
