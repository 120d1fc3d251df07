'use strict';
// A tick's first small write goes straight into the ring, later ones are
// staged, larger ones wait as the pending write, cork() batches them into one
// writev. This mixes all of them at random (a fixed seed: a failure replays),
// with zero-length writes, writes from nextTick, microtasks, setImmediate and
// 'drain', and end() right after the last write, through a ring smaller than
// many of the writes; the reader in another process checks every byte.
const assert = require('node:assert/strict');
const { forkPeer, listenOnce } = require('../helpers/fixtures');
const { slice } = require('../helpers/pattern');

/** A small deterministic generator (LCG), so a failing seed can be replayed. */
function random(seed) {
  let s = seed;
  return () => (s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff) / 0x80000000;
}

/** Writes `total` pattern bytes in random sizes and schedules, then ends; resolves on 'finish'. */
function writeMixed(socket, total, rnd) {
  let pos = 0;
  let corked = 0;
  const uncorkAll = () => {
    for (; corked > 0; corked--) socket.uncork();
  };
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    const step = () => {
      for (let ops = 1 + Math.floor(rnd() * 40); ops > 0 && pos < total; ops--) {
        const r = rnd();
        // Zero, staged (<= 4 KiB), pending (> 4 KiB), larger than the 4 KiB ring or the 64 KiB one.
        const size = r < 0.1 ? 0 : r < 0.6 ? 1 + Math.floor(rnd() * 4096) : r < 0.9 ? 4097 + Math.floor(rnd() * 20000) : 100000;
        const n = Math.min(size, total - pos);
        socket.write(Buffer.from(slice(pos, n)));
        pos += n;
        const c = rnd();
        if (c < 0.05) {
          socket.cork();
          corked++;
        } else if (c < 0.1 && corked > 0) {
          socket.uncork();
          corked--;
        }
      }
      if (pos >= total) {
        uncorkAll();
        socket.end(resolve);
        return;
      }
      const k = rnd();
      if (k < 0.3) process.nextTick(step);
      else if (k < 0.6) setImmediate(step);
      else if (socket.writableNeedDrain) {
        uncorkAll(); // a corked socket never drains (as net)
        socket.once('drain', step);
      } else queueMicrotask(step);
    };
    step();
  });
}

describe('foundation: write-through, staged, pending and corked writes mixed', function () {
  for (const ringSize of [4096, 64 * 1024]) {
    for (const seed of [7, 11]) {
      it(`keeps every byte in order (ring ${ringSize}, seed ${seed})`, async function () {
        const { server, port, accepted } = await listenOnce({ ringSize });
        const peer = forkPeer('recv', { port });
        const socket = await accepted;
        server.close();
        const total = 1 << 20;
        await writeMixed(socket, total, random(seed));
        assert.equal(socket.bytesWritten, total);
        const report = await peer.next('end');
        assert.deepEqual([report.received, report.ok, report.badOffset], [total, true, -1]);
        await peer.exited;
      });
    }
  }
});
