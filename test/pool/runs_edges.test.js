'use strict';
// Review of runs (lib/ring/writer.ts): a write gathered into a run completes
// at once, before its bytes are announced. Whatever the writer does next in
// the same turn (destroy(), end(data), cork/uncork, writev, zero-length
// writes, a loan, a copy-in) the stream must arrive whole and in order, and
// bytesWritten must count exactly what was sent. Both ends live in this
// process: the reader cannot read before the turn is over, so the first
// write fills the 64 KiB ring and the next ordinary one of >= 16 KiB opens a
// run, which is still open when the case's last step runs.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { slice } = require('../helpers/pattern');
const { closed } = require('../helpers/fixtures');
const { RING, localPair, runsFromTheStart } = require('./local_pair');

const KiB = 1024;

/** A connected pair through a 64 KiB ring; the reader checks every byte. */
const pair = () => localPair();

/** Ends the writer; `pos` bytes must be counted as written and arrive, every one right. */
async function endAndCheck(c, checker, ended, pos) {
  c.end();
  await once(c, 'finish');
  assert.equal(c.bytesWritten, pos);
  await ended;
  assert.equal(checker.received, pos);
  assert.ok(checker.ok, `wrong byte at ${checker.badOffset}`);
}

/** Pattern bytes for stream positions [pos, pos + n), in a Buffer of their own. */
const bytes = (pos, n) => Buffer.from(slice(pos, n));

describe('pool: runs, review — a write completed into an open run is never lost', function () {
  this.timeout(30000);
  runsFromTheStart(); // these cases are about runs, not about when a connection starts them

  it('destroy() in the callback of a write gathered into a run: the peer still gets every byte', async () => {
    const { c, s, checker, ended } = await pair();
    c.write(bytes(0, RING));
    c.write(bytes(RING, 20000), (err) => {
      assert.ifError(err);
      // The run is still open (announced at the end of the turn): destroy now.
      assert.equal(c.poolStats().sentByRef, 0, 'the run was not yet announced');
      c.destroy();
    });
    await ended;
    assert.equal(checker.received, RING + 20000);
    assert.ok(checker.ok, `wrong byte at ${checker.badOffset}`);
    assert.equal(c.bytesWritten, RING + 20000);
    assert.equal(c.poolStats().sentByRef, 1, 'the run went as one reference, at close');
    s.end();
    await Promise.all([closed(c), closed(s)]);
  });

  it('end(data) while a run is open: the data lands after the run, then end', async () => {
    const { c, s, checker, ended } = await pair();
    c.write(bytes(0, RING));
    c.write(bytes(RING, 30000));
    const finished = once(c, 'finish');
    c.end(bytes(RING + 30000, 17000));
    await finished;
    assert.equal(c.bytesWritten, RING + 47000);
    await ended;
    assert.equal(checker.received, RING + 47000);
    assert.ok(checker.ok, `wrong byte at ${checker.badOffset}`);
    s.end();
    await Promise.all([closed(c), closed(s)]);
  });

  it('zero-length, staged-size, corked (writev), loaned and copied-in writes behind an open run keep their order', async () => {
    const { c, s, checker, ended } = await pair();
    let pos = 0;
    const w = (n) => {
      c.write(bytes(pos, n));
      pos += n;
    };
    w(RING);
    w(20000); // opens the run
    w(0);
    w(1); // small: would be staged, but not while a run is open
    c.cork();
    w(3000);
    w(40000);
    w(0);
    w(17);
    c.uncork(); // one writev into the run
    const loan = c.allocBuffer(50001); // by reference: the run is announced before it
    loan.set(slice(pos, 50001));
    c.write(loan);
    pos += 50001;
    w(20000); // the ring is still full: a new run
    w(300007); // a copy-in: the second run goes first
    w(4000);
    w(1 << 20); // larger than a run: the ring, after the open run
    w(5);
    await endAndCheck(c, checker, ended, pos);
    const st = c.poolStats();
    // At least the two runs, the loan and the copy-in went by reference.
    assert.ok(st.sentByRef >= 4, `sentByRef ${st.sentByRef}`);
    s.end();
    await Promise.all([closed(c), closed(s)]);
  });

  it('a zero-length chunk ahead of a by-reference one in a writev: the chunks after it are still sent', async () => {
    // Found by runs_mix.test.js (its seeds 1, 3, 4 and 5): the writev's part before the
    // copy-in held only the empty chunk, read as "write complete", and the
    // copy-in and everything after it were dropped, reported as written.
    const { c, s, checker, ended } = await pair();
    let pos = 0;
    c.cork();
    c.write(Buffer.alloc(0));
    for (const n of [300007, 92112, 0, 674]) {
      c.write(bytes(pos, n));
      pos += n;
    }
    const loan = c.allocBuffer(50001);
    loan.set(slice(pos, 50001));
    c.write(Buffer.alloc(0));
    c.write(loan);
    pos += 50001;
    c.uncork();
    await endAndCheck(c, checker, ended, pos);
    assert.equal(c.poolStats().sentByRef, 2, 'the copy-in and the loan went by reference');
    s.end();
    await Promise.all([closed(c), closed(s)]);
  });
});
