'use strict';
// The write pattern of http, http2 and tls over a xenring socket (Node's
// JSStreamSocket writes every buffer of a batch between cork() and
// uncork()): one writev of thousands of small chunks, far larger than the
// ring, so it is written over many flushes as the receiver (another process)
// makes room. Every byte is checked there. How long it takes is measured by
// the bench, not here (it was quadratic in the number of chunks).
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { forkPeer } = require('../helpers/fixtures');
const { slice } = require('../helpers/pattern');
const xenring = require('../..');

describe('corked writes: one writev of many small chunks', function () {
  this.timeout(60000);

  for (const [count, ringSize] of [
    [20000, 64 * 1024],
    [3000, 4096],
  ]) {
    it(`${count.toLocaleString('en')} chunks of 1..199 bytes through a ${ringSize / 1024} KiB ring arrive in order, then the end`, async function () {
      const peer = forkPeer('recv', { listen: true, ringSize });
      const { port } = await peer.next('listening');
      const socket = xenring.connect({ port, ringSize });
      await once(socket, 'connect');
      let total = 0;
      let done = 0;
      socket.cork();
      for (let i = 0; i < count; i++) {
        const n = (i % 199) + 1; // sizes that never line up with the ring's
        socket.write(Buffer.from(slice(total, n)), () => done++);
        total += n;
      }
      socket.uncork();
      const finished = once(socket, 'finish');
      socket.end();
      const end = await peer.next('end');
      assert.equal(end.received, total);
      assert.ok(end.ok, `the receiver saw a wrong byte at ${end.badOffset}`);
      await finished;
      assert.equal(done, count, 'every write called back');
      socket.destroy();
      await peer.exited;
    });
  }
});
