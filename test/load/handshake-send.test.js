'use strict';
// Issue 12 §3, from the code review: the local handshake's sends are checked.
// A HELLO (client) or ACCEPT (server) that the kernel does not take (sendmsg
// EAGAIN: no socket buffers left) fails that one connection at once, instead
// of leaving the client to its handshake timeout; nothing is left open and the
// next connection works. The kernel's refusal is injected by making the
// addon's sendMessage() answer -1 (its EAGAIN) once, in one process.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { withoutKeptLinks } = require('../helpers/fixtures');
const xenring = require('../..');
const { native } = require('../../dist/native');

const countFds = () => fs.readdirSync('/proc/self/fd').length;

/** An echo server in a child process; with failFirstSend its first handshake send meets EAGAIN. */
async function echoServer(failFirstSend) {
  const child = fork(path.join(__dirname, 'send-fail-server.js'), [failFirstSend ? 'fail' : 'ok'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [port] = await once(child, 'message');
  return { child, port };
}

/** Connects, echoes 64 KiB and checks it; resolves with the error if the connection fails instead. */
function echo(port) {
  return new Promise((resolve) => {
    const sent = Buffer.alloc(64 << 10, 0x3c);
    const got = [];
    const t0 = Date.now();
    const s = xenring.connect({ port }, () => s.end(sent));
    s.on('data', (d) => got.push(d));
    s.on('error', (err) => resolve({ err, ms: Date.now() - t0 }));
    s.on('close', (hadError) => {
      if (!hadError) resolve({ ok: Buffer.concat(got).equals(sent), ms: Date.now() - t0 });
    });
  });
}

describe('faults: a handshake send the kernel refuses (EAGAIN)', function () {
  // About connections made afresh: a reconnect would take its kept link.
  withoutKeptLinks();

  this.timeout(60000);

  it('client: the HELLO not sent fails that connect at once with EAGAIN, no fd left open; the next connect echoes', async () => {
    const { child, port } = await echoServer(false);
    try {
      assert.equal((await echo(port)).ok, true); // warm-up: first-use fds and modules
      const before = countFds();
      const send = native.sendMessage;
      let calls = 0;
      native.sendMessage = (...a) => (calls++ === 0 ? -1 : send(...a));
      let failed;
      try {
        failed = await echo(port);
      } finally {
        native.sendMessage = send;
      }
      assert.equal(calls, 1, 'the HELLO went through sendMessage once');
      assert.equal(failed.err?.code, 'EAGAIN', `got ${failed.err?.stack ?? 'no error'}`);
      // Far below the handshake timeout: the failure is not a timeout.
      assert.ok(failed.ms < 2000, `failed after ${failed.ms} ms`);
      assert.equal(countFds(), before, 'fds of the failed connect still open');
      assert.equal((await echo(port)).ok, true);
    } finally {
      child.disconnect();
    }
  });

  it('server: the ACCEPT not sent refuses that client at once (no timeout); the server stays up and echoes the next', async () => {
    const { child, port } = await echoServer(true);
    try {
      const before = countFds();
      const failed = await echo(port);
      assert.ok(failed.err, 'the first connection failed');
      assert.ok(['ECONNREFUSED', 'ECONNRESET'].includes(failed.err.code), `got ${failed.err.stack}`);
      assert.ok(failed.ms < 2000, `failed after ${failed.ms} ms`);
      assert.equal((await echo(port)).ok, true);
      assert.equal(countFds(), before, 'fds of the refused connect still open');
    } finally {
      child.disconnect();
    }
  });
});
