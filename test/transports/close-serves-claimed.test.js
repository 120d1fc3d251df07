'use strict';
// LocalListener.close() serves the claimed reconnects already queued
// (lib/transports/local.ts). Client and server in one process (a test suite,
// a program that shuts down after its last request), as a new user's
// walkthrough had it: the claimed REOPEN is queued before close() runs, and
// the client has its 'connect' already. The listener reset it (ECONNRESET,
// the request lost); over net the server emits 'connection', echoes, then
// closes. The second test is a reviewer's: a 'connection' handler served
// from within close() that closes the server again made the listener close
// its fd twice.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const xenring = require('../..');
const reuse = require('../../dist/transports/local_reuse');

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
let serial = 0;

/** An echo server in this process (`onConnection` first, for each connection) and a client that asks it once. */
async function echoHere(onConnection) {
  const port = `close-claimed-${process.pid}-${serial++}`;
  const server = xenring.createServer((sock) => {
    onConnection(sock);
    sock.on('data', (d) => sock.end(Buffer.concat([Buffer.from('echo:'), d])));
  });
  await new Promise((resolve) => server.listen(port, resolve));
  /** One connection: `onConnect` in its 'connect' callback, then `text`; resolves { reply, hadError } at its close. */
  const ask = (text, onConnect) =>
    new Promise((resolve) => {
      const got = [];
      const c = xenring.connect(port, () => {
        onConnect?.();
        c.end(text);
      });
      c.on('data', (d) => got.push(d));
      c.on('error', (e) => got.push(Buffer.from(`error:${e.code}`)));
      c.on('close', (hadError) => resolve({ reply: Buffer.concat(got).toString(), hadError }));
    });
  /** Until both sides of the last connection closed and one prepared the ring: the next connect claims it. */
  const kept = async () => {
    for (let i = 0; i < 200 && !(reuse.keptClientLinks() === 1 && reuse.parkedLinks() === 1); i++) await tick(10);
  };
  return { server, ask, kept };
}

describe("transports: server.close() while a reconnect that claimed its ring is queued", function () {
  this.timeout(20000);
  afterEach(() => reuse.dropKeptLinks());

  it("close() in the reconnect's 'connect' callback: that connection is served, as net serves one it accepted before closing", async () => {
    const seen = [];
    const { server, ask, kept } = await echoHere(() => seen.push('connection'));
    assert.deepEqual(await ask('first'), { reply: 'echo:first', hadError: false });
    await kept();
    const claimed = reuse.reuseStats.claimed;
    const closed = new Promise((resolve) => {
      ask('second', () => {
        server.close(() => resolve('server closed'));
        // As net's: no 'connection' from inside close() (it comes on a later tick).
        seen.push('close() returned');
      }).then((r) => seen.push(r));
    });
    assert.equal(await closed, 'server closed');
    for (let i = 0; i < 100 && seen.length < 4; i++) await tick(10);
    assert.deepEqual(seen, ['connection', 'close() returned', 'connection', { reply: 'echo:second', hadError: false }]);
    assert.equal(reuse.reuseStats.claimed - claimed, 1, 'the reconnect did not claim its ring (the case under test)');
    assert.equal((await ask('third')).reply, 'error:ECONNREFUSED');
  });

  it("a handler that calls server.close() (a one-shot server) does not make the listener close its fd twice (a user's fd opened meanwhile stays open)", async () => {
    let phase2 = false;
    const opened = [];
    const { server, ask, kept } = await echoHere(() => {
      if (!phase2) return;
      server.close();
      // An fd the application opens right after close(): the lowest free number.
      opened.push(fs.openSync('/dev/null', 'r'));
    });
    assert.equal((await ask('first')).reply, 'echo:first');
    await kept();
    phase2 = true;
    const claimed = reuse.reuseStats.claimed;
    await ask('second', () => server.close());
    assert.equal(reuse.reuseStats.claimed - claimed, 1, 'not the case under test: no claimed reconnect');
    const bad = opened.filter((fd) => {
      try {
        fs.fstatSync(fd);
        return false;
      } catch (e) {
        return e.code === 'EBADF';
      }
    });
    for (const fd of opened) if (!bad.includes(fd)) fs.closeSync(fd);
    assert.deepEqual(bad, [], 'the listener closed an fd that was not its own any more');
  });
});
