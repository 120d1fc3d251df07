'use strict';
// LocalListener.close() serves the claimed reconnects already queued
// (lib/transports/local.ts): a 'connection' handler it runs may close the
// server again (a one-shot server). Written by a reviewer of that change:
// its first version closed the listener's fd twice.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const xenring = require('../..');
const reuse = require('../../dist/transports/local_reuse');

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('transports: server.close() inside a connection handler served from within close()', function () {
  this.timeout(20000);
  it("a handler that calls server.close() (a one-shot server) does not make the listener close its fd twice (a user's fd opened meanwhile stays open)", async () => {
    const port = `close-claimed-${process.pid}`;
    let phase2 = false;
    const opened = [];
    const errors = [];
    const server = xenring.createServer((sock) => {
      if (phase2) {
        server.close();
        // An fd the application opens right after close(): the lowest free number.
        opened.push(fs.openSync('/dev/null', 'r'));
      }
      sock.on('data', (d) => sock.end(Buffer.concat([Buffer.from('echo:'), d])));
    });
    await new Promise((resolve) => server.listen(port, resolve));
    const ask = (text, onConnect) =>
      new Promise((resolve) => {
        const got = [];
        const c = xenring.connect(port, () => {
          try {
            onConnect?.();
          } catch (e) {
            errors.push(e);
          }
          c.end(text);
        });
        c.on('data', (d) => got.push(d));
        c.on('error', (e) => got.push(Buffer.from(`error:${e.code}`)));
        c.on('close', () => resolve(Buffer.concat(got).toString()));
      });
    assert.equal(await ask('first'), 'echo:first');
    for (let i = 0; i < 200 && !(reuse.keptClientLinks() === 1 && reuse.parkedLinks() === 1); i++) await tick(10);
    phase2 = true;
    const claimedBefore = reuse.reuseStats.claimed;
    const reply = await ask('second', () => server.close());
    assert.equal(reuse.reuseStats.claimed - claimedBefore, 1, 'not the case under test: no claimed reconnect');
    const bad = opened.filter((fd) => {
      try {
        fs.fstatSync(fd);
        return false;
      } catch (e) {
        return e.code === 'EBADF';
      }
    });
    for (const fd of opened) if (!bad.includes(fd)) fs.closeSync(fd);
    assert.deepEqual(errors, []);
    assert.deepEqual(bad, [], 'the listener closed an fd that was not its own any more');
  });
});
