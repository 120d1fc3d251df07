'use strict';
// Issue 13: a reader wakes a writer that waits for room once half the ring
// is free, not on every read (as TCP holds back small window updates), so
// the writer refills half a ring per wake-up. The writer is another process
// (test/ring/fixtures/paced_writer.js) that never spins for room; this
// process reads through onread in 4 KiB steps and pauses at chosen points.
const assert = require('node:assert/strict');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const path = require('node:path');
const xenring = require('../../dist');
const { PatternChecker } = require('../helpers/pattern');

const RING = 64 * 1024;
const TOTAL = 1 << 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('ring: a waiting writer is woken once half the ring is free', function () {
  let child = null;
  let childClosed = null;
  // Waits for the child's 'close' (its IPC socket closed), not just the kill:
  // a writer still dying under load would close that socket during the next
  // file's test, whose fd count then comes out one short.
  afterEach(async () => {
    if (child) {
      child.kill('SIGKILL');
      await childClosed;
    }
    child = null;
  });

  it('reads of less than half leave it asleep; crossing half wakes it; the stream arrives whole', async function () {
    child = fork(path.join(__dirname, 'fixtures', 'paced_writer.js'), [String(TOTAL), String(RING)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    childClosed = once(child, 'close');
    const [{ port }] = await once(child, 'message');
    const written = async () => {
      child.send('written');
      const [m] = await once(child, 'message');
      assert.equal(m.error, undefined, m.error);
      return m.written;
    };
    const checker = new PatternChecker();
    let target = 0;
    let reached = null;
    const c = xenring.connect({
      port, transport: 'local', pool: false, spinMicros: 0,
      onread: {
        buffer: Buffer.alloc(4096),
        callback: (n, buf) => {
          checker.update(buf.subarray(0, n));
          if (checker.received < target) return true;
          if (reached) reached();
          return false; // pause here
        },
      },
    });
    c.pause();
    await once(c, 'connect');
    const readTo = (bytes) => new Promise((resolve) => {
      target = bytes;
      reached = resolve;
      c.resume();
    });

    // The writer fills the ring and waits.
    let w0 = -1;
    for (let w = await written(); w !== w0; w = await written()) {
      w0 = w;
      await sleep(100);
    }
    assert.equal(w0, RING, 'the writer filled the ring, then waited');

    // Less than half read: no wake-up, so the writer has not moved.
    await readTo(12 * 1024);
    await sleep(300);
    assert.equal(await written(), w0, 'a read that leaves more than half the ring unread does not wake the writer');

    // Past half: the writer is woken and refills.
    await readTo(40 * 1024);
    const deadline = Date.now() + 10000;
    let w1 = await written();
    while (w1 === w0 && Date.now() < deadline) {
      await sleep(20);
      w1 = await written();
    }
    assert.ok(w1 > w0, 'once half the ring is free the writer is woken and writes');

    // The rest flows to the end, every byte in place.
    target = Infinity;
    c.resume();
    await once(c, 'end');
    assert.equal(checker.badOffset, -1, `stream corrupted at ${checker.badOffset}`);
    assert.equal(checker.received, TOTAL);
    c.destroy();
  });
});
