'use strict';
// A hostile client breaks the ring before the server has looked at it: right
// after the ACCEPT (the handshake does not read the live bytes) it sets its
// live byte to no state at all. The server binds the ring a moment after
// sending the ACCEPT, so the peer often wins that race; the first look then
// finds the byte (EPROTO). Before the fix that EPROTO was thrown out of the
// accept and the server process died, here on the second or so of the
// connections (a Python client is fast enough). Now a ring broken before the
// bind is dropped like a failed handshake, one broken later fails only its
// socket, and the server serves the next client. (The client side, a
// server's ACCEPT with such a byte: fds.test.js 'bad-live'.)
const assert = require('node:assert/strict');
const { hostilePeer, connectOutcome, serverProcess } = require('./helpers');

describe('hostile peer: a ring broken before the server binds it', function () {
  this.timeout(60000);

  it('100 connections whose client live byte is no state: the server lives and serves an honest client after', async function () {
    const port = `early-break-${process.pid}`;
    const srv = serverProcess(port);
    let code;
    try {
      const listening = await srv.next();
      assert.equal(listening.event, 'listening');
      const peer = hostilePeer('break-live', { path: listening.path, count: 100 });
      const res = await peer.line();
      await peer.exited;
      assert.equal(res.broke, 100, 'every connection got its ring before being broken');
      assert.equal(srv.child.exitCode, null, 'the server process died');
      assert.equal(await connectOutcome({ port }), 'connect');
    } finally {
      code = await srv.stop();
    }
    assert.equal(code, 0, `the server exited with ${code}`);
  });
});
