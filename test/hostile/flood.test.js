'use strict';
// Accept flood (issue 11, attack 4): connections that never say HELLO, and a
// server whose fd table is full. Pending handshakes are capped, and EMFILE
// makes the listener back off instead of spinning a core; it accepts again
// once fds are free. The CPU figure is a resource assertion (an idle server
// must stay idle), not a speed goal.
const assert = require('node:assert/strict');
const { countFds } = require('../helpers/fixtures');
const { MAX_PENDING_HANDSHAKES } = require('../../dist/transports/local');
const { hostilePeer, listeningServer, delay, serverProcess } = require('./helpers');

describe('hostile peer: accept flood', function () {
  this.timeout(60000);

  it('holds at most the cap of silent connections, and still serves an honest client', async function () {
    const { server, path: sock } = await listeningServer({ ringSize: 4096 });
    const before = countFds();
    const flood = hostilePeer('flood', { path: sock, count: 300 });
    try {
      const { connected } = await flood.line();
      assert.ok(connected >= 200, `only ${connected} flood connections`);
      await delay(500);
      const held = countFds() - before;
      assert.ok(held <= MAX_PENDING_HANDSHAKES + 8, `${held} fds held by ${connected} silent connections`);
      const honest = hostilePeer('ask', { path: sock, order: 12 });
      const res = await honest.line();
      await honest.exited;
      assert.equal(res.replied, true, 'an honest client was not served during the flood');
    } finally {
      await flood.end();
      server.close();
    }
  });

  it('backs off on EMFILE instead of spinning, and accepts again once fds are free', async function () {
    const port = `flood-${process.pid}`;
    const srv = serverProcess(port, { nofile: 256 });
    let flood;
    try {
      const listening = await srv.next();
      assert.equal(listening.event, 'listening');
      srv.cmd({ cmd: 'fill' });
      const filled = await srv.next();
      assert.equal(filled.code, 'EMFILE');
      flood = hostilePeer('flood', { path: listening.path, count: 20 });
      assert.equal((await flood.line()).connected, 20);
      await delay(200);
      srv.cmd({ cmd: 'measure', ms: 1500 });
      const { cpu } = await srv.next();
      if (process.env.XENRING_TEST_VERBOSE) console.log(`      server CPU while it could not accept: ${(cpu * 100).toFixed(1)} % of a core`);
      assert.ok(cpu < 0.25, `the server used ${(cpu * 100).toFixed(0)} % of a core while it could not accept`);
      srv.cmd({ cmd: 'release' });
      assert.equal((await srv.next()).event, 'released');
      const honest = hostilePeer('ask', { path: listening.path, order: 12 });
      const res = await honest.line();
      await honest.exited;
      assert.equal(res.replied, true, 'no ring once fds were free again');
    } finally {
      await flood?.end();
      await srv.stop();
    }
  });
});
