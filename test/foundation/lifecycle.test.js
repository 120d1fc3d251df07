'use strict';
// Connection lifecycle across processes: ping-pong, half-close both ways,
// peer death, and open/close cycles without leaks.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const fs = require('node:fs');
const { forkPeer, listenOnce, countFds, closed } = require('../helpers/fixtures');

/** Mappings of ring memory (memfd) in this process: a leaked ring is one more. */
function countRingMaps() {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('/memfd:')).length;
}
const { PatternChecker, writePattern } = require('../helpers/pattern');
const xenring = require('../..');


describe('foundation: lifecycle', function () {
  it('ping-pongs 1000 messages with an echoing child', async function () {
    const { server, port, accepted } = await listenOnce();
    const peer = forkPeer('echo', { port });
    const socket = await accepted;
    server.close();
    for (let i = 0; i < 1000; i++) {
      const msg = `ping ${i} ${'x'.repeat(i % 200)}`;
      socket.write(msg);
      let got = '';
      while (got.length < msg.length) {
        const [d] = await once(socket, 'data');
        got += d.toString();
      }
      assert.equal(got, msg);
    }
    socket.end();
    const hadError = await closed(socket);
    assert.equal(hadError, false);
    await peer.exited;
  });

  it('half-close: we end first, the child keeps sending until it is done', async function () {
    const { server, port, accepted } = await listenOnce({ allowHalfOpen: true });
    const peer = forkPeer('send', { port, total: 32 << 20, chunk: 65536, allowHalfOpen: true });
    const socket = await accepted;
    const closing = closed(socket);
    server.close();
    socket.end(); // our side done; theirs still open
    const check = new PatternChecker();
    socket.on('data', (d) => check.update(d));
    await once(socket, 'end');
    assert.deepEqual([check.received, check.ok], [32 << 20, true]);
    const hadError = await closing;
    assert.equal(hadError, false);
    await peer.exited;
  });

  it('half-close: the child ends first, then receives everything we send', async function () {
    const { server, port, accepted } = await listenOnce({ allowHalfOpen: true });
    const peer = forkPeer('halfclose', { port, allowHalfOpen: true });
    const socket = await accepted;
    const closing = closed(socket);
    server.close();
    socket.resume();
    await once(socket, 'end'); // the child's FIN arrives before any data of ours
    assert.equal(socket.writable, true);
    await new Promise((resolve) => writePattern(socket, 16 << 20, 100000, resolve));
    socket.end();
    const report = await peer.next('end');
    assert.deepEqual([report.received, report.ok], [16 << 20, true]);
    assert.equal(await closing, false);
    await peer.exited;
  });

  it('without allowHalfOpen the peer\'s end closes our side too (net default)', async function () {
    const { server, port, accepted } = await listenOnce();
    forkPeer('halfclose', { port });
    const socket = await accepted;
    server.close();
    assert.equal(socket.allowHalfOpen, false);
    const events = [];
    socket.on('end', () => events.push(`end destroyed=${socket.destroyed}`));
    socket.on('finish', () => events.push('finish'));
    socket.on('close', (e) => events.push(`close ${e}`));
    socket.resume();
    await once(socket, 'close');
    assert.deepEqual(events, ['end destroyed=false', 'finish', 'close false']);
  });

  for (const [label, flood] of [
    ['reading from', true],
    ['blocked writing to', false],
  ]) {
    it(`SIGKILL of a child we are ${label}: ECONNRESET then close(true) within 3 s`, async function () {
      const { server, port, accepted } = await listenOnce({ ringSize: 64 * 1024 });
      const peer = forkPeer('hold', { port, flood });
      const socket = await accepted;
      server.close();
      if (flood) socket.resume();
      else {
        // the child reads nothing; fill the ring until write() blocks
        socket.pause();
        const buf = Buffer.alloc(65536);
        while (socket.write(buf));
      }
      await peer.next('connect');
      await new Promise((r) => setTimeout(r, 100));
      const events = [];
      socket.on('error', (e) => events.push(`error ${e.code}`));
      const t0 = Date.now();
      peer.child.kill('SIGKILL');
      const hadError = await closed(socket);
      const elapsed = Date.now() - t0;
      assert.deepEqual(events, ['error ECONNRESET']);
      assert.equal(hadError, true);
      // The hang-up is an event (no poll on the local transport): the bound
      // only tells it from a timeout. 1 s failed once at load 10 on 2 vCPUs.
      assert.ok(elapsed < 3000, `close took ${elapsed} ms`);
    });
  }

  it('1,000 open/close cycles leak no fds and no mappings', async function () {
    const server = xenring.createServer((s) => s.resume().end());
    server.listen({ port: 0, ringSize: 64 * 1024 });
    await once(server, 'listening');
    const port = server.address().port;
    const cycle = async () => {
      const c = xenring.connect({ port, ringSize: 64 * 1024 });
      c.resume();
      await once(c, 'close');
    };
    const drained = async () => {
      for (;;) {
        const n = await new Promise((r) => server.getConnections((e, count) => r(count)));
        if (n === 0) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    for (let i = 0; i < 20; i++) await cycle(); // warm up lazily created state
    await drained();
    const fds = countFds();
    const maps = countRingMaps();
    for (let i = 0; i < 1000; i++) await cycle();
    await drained();
    // No more than before: fds close with the socket, not at a GC. (Fewer is
    // fine: an earlier test's child may still be closing its IPC socket.)
    assert.ok(countFds() <= fds, `fds grew from ${fds} to ${countFds()}`);
    // Ring mappings only: V8 grows its young generation with the allocation
    // rate (256 KiB mappings) as it likes; a leaked ring is a memfd mapping
    // per side and cycle, i.e. thousands here.
    assert.ok(countRingMaps() <= maps + 2, `ring mappings grew from ${maps} to ${countRingMaps()}`);
    server.close();
    await once(server, 'close');
  });
});
