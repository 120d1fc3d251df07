'use strict';
// Review of runs (lib/ring/writer.ts): a randomized mix of every kind of
// write through a 64 KiB ring, so that runs open and close all the time
// between them: zero-length, small (staged or written through), 16-100 KiB
// (run candidates), loans (allocBuffer), copy-ins (>= 256 KiB), writes past
// a run (> 1 MiB), corked batches (writev), from nextTick, microtasks,
// setImmediate and 'drain'. The stream ends with end(data), end() at once,
// or destroy() in the last write's callback (a run may still be open: its
// writes completed, so their bytes must still arrive). The reader, another
// process, checks every byte; a fixed seed per case replays a failure.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const xenring = require('../..');
const { slice } = require('../helpers/pattern');
const { closed } = require('../helpers/fixtures');
const { forkPeer } = require('./peer_process');
const { runsFromTheStart } = require('./local_pair');

const KiB = 1024;

/** A small deterministic generator (LCG), so a failing seed can be replayed. */
function random(seed) {
  let s = seed;
  return () => (s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff) / 0x80000000;
}

/** A Buffer of `n` pattern bytes from `pos`: a loan from the pool, or an ordinary Buffer. */
function chunk(socket, pos, n, loan) {
  const buf = loan ? socket.allocBuffer(n) : Buffer.allocUnsafe(n);
  for (let off = 0; off < n; off += 8 << 20) buf.set(slice(pos + off, Math.min(8 << 20, n - off)), off);
  return buf;
}

/** Writes `total` bytes in random kinds and schedules, then ends as `ending` says; resolves with the bytes written and those meant to go by reference without runs. */
function writeMixed(socket, total, rnd, ending) {
  let pos = 0;
  let corked = 0;
  // Bytes that go by reference without runs: loans and copy-ins (256 KiB to 4 MiB).
  let refBytes = 0;
  const uncorkAll = () => {
    for (; corked > 0; corked--) socket.uncork();
  };
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    const step = () => {
      for (let ops = 1 + Math.floor(rnd() * 30); ops > 0 && pos < total; ops--) {
        const r = rnd();
        const size =
          r < 0.08 ? 0 : r < 0.35 ? 1 + Math.floor(rnd() * 4096) : r < 0.93 ? 16 * KiB + Math.floor(rnd() * 84 * KiB) : r < 0.98 ? 256 * KiB + Math.floor(rnd() * 200 * KiB) : (1 << 20) + 1 + Math.floor(rnd() * 100 * KiB);
        const n = Math.min(size, total - pos);
        const loan = n > 0 && rnd() < 0.1;
        const buf = chunk(socket, pos, n, loan);
        if (loan || (n >= 256 * KiB && n <= 4 << 20)) refBytes += n;
        pos += n;
        if (pos >= total) {
          uncorkAll();
          if (ending === 'end(data)') socket.end(buf, () => resolve({ pos, refBytes }));
          else if (ending === 'destroy') {
            // Destroyed as soon as the last write completed (a run may be open).
            socket.write(buf, (err) => {
              if (err) reject(err);
              else {
                socket.destroy();
                resolve({ pos, refBytes });
              }
            });
          } else {
            socket.write(buf);
            socket.end(() => resolve({ pos, refBytes }));
          }
          return;
        }
        socket.write(buf);
        const c = rnd();
        if (c < 0.05) {
          socket.cork();
          corked++;
        } else if (c < 0.12 && corked > 0) {
          socket.uncork();
          corked--;
        }
      }
      const k = rnd();
      if (k < 0.3) process.nextTick(step);
      else if (k < 0.5) setImmediate(step);
      else if (socket.writableNeedDrain) {
        uncorkAll(); // a corked socket never drains (as net)
        socket.once('drain', step);
      } else queueMicrotask(step);
    };
    step();
  });
}

describe('pool: runs, review — a randomized write mix ending at once, every byte checked', function () {
  this.timeout(120000);
  runsFromTheStart(); // these cases are about runs, not about when a connection starts them
  let casesWithRuns = 0;
  after(() => assert.ok(casesWithRuns > 0, 'runs carried bytes in at least one case (else this tests nothing of them)'));
  const cases = [
    { seed: 1, ending: 'end(data)', receive: 'release' },
    { seed: 3, ending: 'destroy', receive: 'gc' },
    { seed: 4, ending: 'end()', receive: 'gc' },
    { seed: 5, ending: 'destroy', receive: 'release' },
    { seed: 11, ending: 'end(data)', receive: 'hold' },
  ];
  for (const { seed, ending, receive } of cases) {
    it(`seed ${seed}: ${ending} right after the last write, reader '${receive}'`, async () => {
      const p = forkPeer('socket_peer.js', { receive }, ['--expose-gc']);
      const { port } = await p.next('ready');
      const s = xenring.connect({ port, ringSize: 64 * KiB });
      await once(s, 'connect');
      const sClosed = closed(s); // before destroy() can close it
      const total = 12 << 20;
      const { pos: written, refBytes } = await writeMixed(s, total, random(seed), ending);
      assert.equal(written, total);
      const r = await p.next('received');
      assert.equal(r.bytes, total, `the reader got ${r.bytes} of ${total} bytes`);
      assert.ok(r.ok, `wrong byte at ${r.badOffset}`);
      assert.ok(r.heldViewsOk, 'views held by the reader changed');
      assert.equal(s.bytesWritten, total);
      const st = s.poolStats();
      // Every reference the reader took was one we sent, and runs were among them.
      assert.equal(r.stats.receivedByRef, st.sentByRef);
      assert.equal(r.stats.bytesReceivedByRef, st.bytesSentByRef);
      // Beyond loans and copy-ins: runs (timing decides how many; see after()).
      if (st.bytesSentByRef > refBytes) casesWithRuns++;
      await sClosed;
      await p.exited;
    });
  }
});
