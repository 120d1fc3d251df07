'use strict';
// Small writes are staged (copied aside and written to the ring at the end of
// the tick) and their callbacks run at once. These tests check, with the
// reader in another process, that staging never reorders, loses or
// duplicates a byte, including when the socket is destroyed right after a
// write reported success.
const assert = require('node:assert/strict');
const { forkPeer, listenOnce } = require('../helpers/fixtures');
const { slice } = require('../helpers/pattern');

describe('foundation: staged small writes', function () {
  it('mixed small (staged) and large writes through a 64 KiB ring keep their order', async function () {
    const { server, port, accepted } = await listenOnce({ ringSize: 64 * 1024 });
    const peer = forkPeer('recv', { port });
    const socket = await accepted;
    server.close();
    // Sizes either side of the staging limit (4 KiB) and of the ring size.
    const sizes = [1, 4096, 4097, 3, 70000, 17, 4095, 200000, 2, 65536, 1000, 1 << 20, 5];
    let pos = 0;
    let i = 0;
    const total = 24 << 20;
    await new Promise((resolve) => {
      const pump = () => {
        while (pos < total) {
          const n = Math.min(sizes[i++ % sizes.length], total - pos);
          const ok = socket.write(Buffer.from(slice(pos, n)));
          pos += n;
          if (!ok) return socket.once('drain', pump);
        }
        socket.end(resolve);
      };
      pump();
    });
    const report = await peer.next('end');
    assert.deepEqual([report.received, report.ok, report.badOffset], [total, true, -1]);
    await peer.exited;
  });

  it('small writes the ring has room for are delivered even when destroy() follows at once', async function () {
    for (const chunk of [1, 100, 4096]) {
      const { server, port, accepted } = await listenOnce({ ringSize: 64 * 1024 });
      const peer = forkPeer('recv', { port });
      const socket = await accepted;
      server.close();
      // 48 KiB: all of it fits the 64 KiB ring, so every write is taken at
      // once (as net's writes to a socket buffer with room), then destroy in
      // the same tick: net still delivers what the kernel took; so must we.
      let pos = 0;
      while (pos < 48 * 1024) {
        assert.equal(socket.write(Buffer.from(slice(pos, chunk))), true);
        pos += chunk;
      }
      assert.equal(socket.writableLength, 0, 'every write was taken at once');
      socket.destroy();
      const report = await peer.next('end');
      assert.equal(report.ok, true, `chunk ${chunk}: bad byte at ${report.badOffset}`);
      assert.equal(report.received, pos, `chunk ${chunk}: every written byte arrives`);
      await peer.exited;
    }
  });
});
