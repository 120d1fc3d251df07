'use strict';
// Data integrity across processes: every byte of large and oddly-chunked
// streams is checked against the position pattern.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { forkPeer, listenOnce } = require('../helpers/fixtures');
const { PatternChecker, writePattern } = require('../helpers/pattern');

function receiveAll(socket) {
  const check = new PatternChecker();
  socket.on('data', (d) => check.update(d));
  return once(socket, 'end').then(() => check);
}

describe('foundation: data integrity between processes', function () {
  it('moves 1 GiB from a child process, every byte checked', async function () {
    const { server, port, accepted } = await listenOnce();
    const GiB = 1 << 30;
    const peer = forkPeer('send', { port, total: GiB, chunk: 256 * 1024 });
    const socket = await accepted;
    server.close();
    const check = await receiveAll(socket);
    assert.equal(check.badOffset, -1, `first bad byte at ${check.badOffset}`);
    assert.equal(check.received, GiB);
    await once(socket, 'close');
    assert.equal(socket.bytesRead, GiB);
    const [code] = await peer.exited;
    assert.equal(code, 0);
  });

  it('moves 256 MiB to a child process and 64 MiB back on the same connection', async function () {
    const { server, port, accepted } = await listenOnce({ allowHalfOpen: true });
    const peer = forkPeer('recv', { port, replyTotal: 64 << 20, allowHalfOpen: true });
    const socket = await accepted;
    server.close();
    const back = receiveAll(socket);
    writePattern(socket, 256 << 20, 1 << 20, () => socket.end());
    const report = await peer.next('end');
    assert.deepEqual([report.received, report.ok], [256 << 20, true]);
    const check = await back;
    assert.deepEqual([check.received, check.ok], [64 << 20, true]);
    await peer.exited;
  });

  // 64 KiB rings, so 1 MiB and 4 MiB writes are 16 and 64 times the ring.
  const cases = [
    [1, 64 * 1024],
    [7, 256 * 1024],
    [64, 2 << 20],
    [1000, 8 << 20],
    [4096, 16 << 20],
    [65536 + 3, 32 << 20],
    [1 << 20, 32 << 20],
    [4 << 20, 64 << 20],
  ];
  for (const [chunk, total] of cases) {
    it(`${chunk}-byte writes (${total} bytes) through a 64 KiB ring, both directions`, async function () {
      const { server, port, accepted } = await listenOnce({ ringSize: 64 * 1024 });
      const peer = forkPeer('recv', { port, replyTotal: total, chunk, allowHalfOpen: true });
      const socket = await accepted;
      server.close();
      socket.allowHalfOpen = true;
      const back = receiveAll(socket);
      writePattern(socket, total, chunk, () => socket.end());
      const report = await peer.next('end');
      assert.deepEqual([report.received, report.ok, report.badOffset], [total, true, -1]);
      const check = await back;
      assert.deepEqual([check.received, check.ok, check.badOffset], [total, true, -1]);
      await peer.exited;
    });
  }

  it('batches many small corked writes (writev) without loss or reordering', async function () {
    const { server, port, accepted } = await listenOnce();
    const peer = forkPeer('recv', { port });
    const socket = await accepted;
    server.close();
    const { slice } = require('../helpers/pattern');
    let pos = 0;
    for (let round = 0; round < 200; round++) {
      socket.cork();
      for (let i = 0; i < 50; i++) {
        const n = 1 + ((round * 50 + i) % 97);
        socket.write(Buffer.from(slice(pos, n)));
        pos += n;
      }
      socket.uncork();
    }
    socket.end();
    const report = await peer.next('end');
    assert.deepEqual([report.received, report.ok], [pos, true]);
  });
});
