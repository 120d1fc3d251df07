'use strict';
// A hostile server hands the client fds that are not what they claim
// (issue 11, attack 8; and attack 3 on the client side): the client must
// check each fd's kind and flags before use, fail with EPROTO and keep none.
const assert = require('node:assert/strict');
const path = require('node:path');
const { countFds } = require('../helpers/fixtures');
const { hostilePeer, connectOutcome } = require('./helpers');

let serial = 0;

/** Runs a hostile server answering as `reply`; resolves with the client's outcome ('connect' or a code). */
async function connectTo(reply) {
  const port = `hostile-${process.pid}-${serial++}`;
  const peer = hostilePeer('server', { path: path.join(process.env.XENRING_DIR, `${port}.sock`), reply });
  assert.equal(await peer.line(), 'ready');
  try {
    return await connectOutcome({ port });
  } finally {
    await peer.end();
  }
}

describe('hostile peer: fds that are not what they claim', function () {
  this.timeout(30000);

  for (const [reply, why] of [
    ['semaphore', 'an EFD_SEMAPHORE eventfd preloaded near its maximum as a wake-up fd (would spin the idle client)'],
    ['same-fd', 'one fd in two roles'],
    ['stream-socket', 'a stream socket as the wake-up end'],
    ['connected-elsewhere', "a datagram socket connected to a third party's socket as the wake-up end"],
    ['pipe-read-end', "a pipe's read end as the wake-up end"],
    ['fifo', 'a named FIFO as the wake-up end'],
    ['write-sealed', 'a memfd sealed against our writes'],
    ['not-memfd', 'a file that is not a memfd'],
    ['wrong-size', 'a memfd larger than the agreed rings'],
    ['extra-fds', 'more fds than an ACCEPT carries'],
    // The handshake does not read the live bytes; the first look at them did, in the socket's
    // attach, and its EPROTO was thrown out of the connect (the client process died).
    ['bad-live', 'a control page whose server live byte is no state'],
  ]) {
    it(`refuses ${why} with EPROTO and keeps no fd`, async function () {
      const before = countFds();
      const res = await connectTo(reply);
      assert.equal(res, 'EPROTO');
      assert.equal(countFds(), before, 'fds left open');
    });
  }

  it('still connects to an honest server (the checks are not too strict)', async function () {
    const res = await connectTo('honest');
    assert.equal(res, 'connect');
  });
});
