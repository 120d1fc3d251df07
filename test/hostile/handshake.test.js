'use strict';
// Hostile handshakes against a real server: a Python client that breaks the
// rendezvous protocol on purpose (issue 11, attacks 3 and 5).
const assert = require('node:assert/strict');
const { countFds } = require('../helpers/fixtures');
const { ACCEPT_FDS } = require('../../dist/transports/local_handshake');
const { hostilePeer, listeningServer, delay } = require('./helpers');

describe('hostile peer: handshake', function () {
  this.timeout(60000);

  it('closes every fd a HELLO carries and refuses that HELLO (attack 3)', async function () {
    const { server, path } = await listeningServer({ ringSize: 4096 });
    try {
      const before = countFds();
      const peer = hostilePeer('hello-fds', { path, count: 200, nfds: 8 });
      const res = await peer.line();
      await peer.exited;
      await peer.end();
      await delay(100); // let the last refusals close
      const leaked = countFds() - before;
      assert.equal(res.accepted, 0, 'a HELLO with fds was answered with a ring');
      assert.equal(res.refused, 200);
      assert.ok(leaked < 16, `${leaked} fds left open after 200 HELLOs with 8 fds each`);
    } finally {
      server.close();
    }
  });

  it("caps the ring at the server's size: a client may ask for less, never more (attack 5)", async function () {
    const { server, path } = await listeningServer({ ringSize: 4096 });
    const big = await listeningServer({ ringSize: 1 << 16 });
    try {
      let peer = hostilePeer('ask', { path, order: 26 });
      let res = await peer.line();
      await peer.exited;
      assert.deepEqual(res, { replied: true, nfds: ACCEPT_FDS, left: 12, right: 12, memfdSize: 3 * 4096 });
      peer = hostilePeer('ask', { path: big.path, order: 13 });
      res = await peer.line();
      await peer.exited;
      assert.deepEqual(res, { replied: true, nfds: ACCEPT_FDS, left: 13, right: 13, memfdSize: 4096 + 2 * 8192 });
      peer = hostilePeer('ask', { path: big.path, order: 0 });
      res = await peer.line();
      await peer.exited;
      assert.equal(res.left, 16);
    } finally {
      server.close();
      big.server.close();
    }
  });
});
