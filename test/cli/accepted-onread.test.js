'use strict';
// The proxy's TCP and UNIX listeners read accepted sockets through onread
// (lib/cli/address.ts withOnRead): net.Server has no onread option, so each
// accepted socket is re-made around its handle. Checked with a client in
// another process: every byte arrives through the callback into our buffers
// (no 'data' event), backpressure by pause() holds, and the server still
// counts the socket (server.close() waits for it, as net's does).
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { listenOn } = require('../../dist/cli/address');

/** A client process: connects, writes `bytes` random bytes, prints their sha256, ends, exits when the server closes. */
function sender(target, bytes) {
  const code = `
    const net = require('net'), crypto = require('crypto');
    const data = crypto.randomBytes(${bytes});
    const s = net.connect(${JSON.stringify(target)}, () => {
      process.stdout.write(crypto.createHash('sha256').update(data).digest('hex'));
      s.end(data);
    });
    s.resume();`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const hash = new Promise((resolve) => child.stdout.on('data', (d) => (out += d).length >= 64 && resolve(out)));
  return { child, hash };
}

function listen(addr, onread, onConnection) {
  return new Promise((resolve, reject) => {
    const server = listenOn(addr, {}, onConnection, (err, bound) => (err ? reject(err) : resolve({ server, bound })), onread);
  });
}

describe('cli: accepted TCP and UNIX sockets read through onread', function () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-onread-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const kind of ['tcp', 'unix']) {
    it(`${kind}: 8 MiB from another process arrive through the callback, in order; server.close() waits for the socket`, async function () {
      const bufs = new Set();
      const h = crypto.createHash('sha256');
      let n = 0;
      let accepted = null;
      let paused = 0;
      const onread = {
        buffer: () => {
          const b = Buffer.alloc(64 * 1024);
          bufs.add(b);
          return b;
        },
        callback(got, buf) {
          assert.ok(bufs.has(buf), 'the bytes landed in a buffer of ours');
          h.update(buf.subarray(0, got));
          n += got;
          // Pause now and then: net must stop calling until resume().
          if (n % 5 === 0 && paused < 5) {
            paused++;
            this.pause();
            setTimeout(() => this.resume(), 5);
          }
          return true;
        },
      };
      const addr = kind === 'tcp' ? { kind, host: '127.0.0.1', port: 0 } : { kind, path: path.join(dir, 's.sock') };
      const ended = new Promise((resolve) => (accepted = resolve));
      const { server, bound } = await listen(addr, onread, (socket) => {
        socket.on('data', () => assert.fail("a 'data' event: the socket did not read through onread"));
        socket.once('end', () => accepted(socket));
        socket.resume();
      });
      const client = sender(kind === 'tcp' ? { host: '127.0.0.1', port: bound.port } : { path: addr.path }, 8 << 20);
      const want = await client.hash;
      const socket = await ended;
      assert.equal(n, 8 << 20);
      assert.equal(h.digest('hex'), want, 'other bytes arrived');
      // The server still counts the socket: close() calls back only after it is gone.
      let closed = false;
      server.close(() => (closed = true));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(closed, false, 'server.close() did not wait for the open socket');
      socket.end();
      await once(client.child, 'exit');
      for (let i = 0; i < 100 && !closed; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(closed, true, 'server.close() never called back after the socket closed');
    });
  }
});
