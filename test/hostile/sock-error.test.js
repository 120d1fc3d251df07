'use strict';
// Issue 12 §3, from the code review: a poll error on a connection's fds must
// fail the connection, not be ignored (libuv stops a handle after reporting
// POLLERR, so an ignored error left the socket waiting for a hang-up that
// never came). A server makes the client's rendezvous socket report one: it
// closes it with the client's HELLO still unread, while keeping the ring
// mapped and its live byte at "connected".
const assert = require('node:assert/strict');
const path = require('node:path');
const xenring = require('../..');
const { hostilePeer } = require('./helpers');

describe('hostile peer: a socket error on the rendezvous socket', function () {
  this.timeout(30000);

  it("fails the connected socket with an error and closes it (no hang)", async () => {
    const port = `sockerr-${process.pid}`;
    const server = hostilePeer('server', { path: path.join(process.env.XENRING_DIR, `${port}.sock`), reply: 'honest', sockError: true });
    assert.equal(await server.line(), 'ready');
    try {
      const s = xenring.connect({ port });
      const events = [];
      s.on('connect', () => events.push('connect'));
      s.on('error', (err) => events.push(`error ${err.code}`));
      s.on('data', () => {});
      const closed = new Promise((resolve) => s.on('close', (hadError) => resolve(hadError)));
      assert.equal(await server.line(), 'closed');
      const verdict = await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 5000).unref())]);
      s.destroy();
      assert.equal(verdict, true, `events: ${events.join(', ')}`);
      assert.equal(events[0], 'connect');
      // EBADF today: libuv reports POLLERR so, and the channel passes it on
      // (the socket's pending error, ECONNRESET, would say more).
      assert.match(events[1], /^error E[A-Z]+$/);
      assert.equal(events.length, 2, `events: ${events.join(', ')}`);
    } finally {
      await server.end();
    }
  });
});
