'use strict';
// What a write to a peer that has closed does (lib/ring/writer.ts, flush()):
// the first write that fits the ring is taken (its bytes dropped) only if
// the peer closed in order having read everything we wrote, and only for a
// ring write; a peer killed with our bytes unread, or a write by reference
// (the pool), fails as over TCP. Written by a reviewer of that rule, each
// case failing with the rule's first version.
const assert = require('node:assert');
const path = require('node:path');
const { fork } = require('node:child_process');
const { describeBoth, once, startServer, closeServer, trackSocket, delay, xenring } = require('./harness');

describeBoth('write to a peer killed (SIGKILL) after its half-close, our bytes unread in its buffer', (impl) => {
  it('the next write fails (net: RST for unread data), close(true)', async () => {
    const { server, port } = await startServer(impl, { allowHalfOpen: true });
    const accepted = once(server, 'connection');
    const child = fork(path.join(__dirname, 'fixtures', 'halfclose-client.js'), [impl.name, String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await once(child, 'message');
    const s = await accepted;
    const log = trackSocket(s, ['end', 'finish', 'error', 'close']);
    s.resume();
    await once(s, 'end');
    // 1000 bytes the child never reads (paused): they stay in its ring / receive buffer.
    await new Promise((res, rej) => s.write(Buffer.alloc(1000, 0x61), (e) => (e ? rej(e) : res())));
    await delay(50);
    child.kill('SIGKILL');
    await once(child, 'exit');
    await delay(200);
    const cbs = [];
    s.write('x', (e) => cbs.push(e ? e.code : 'ok'));
    s.end();
    const hadError = await log.closed;
    await delay(20);
    assert.strictEqual(hadError, true, `no error: ${JSON.stringify(log.now())}`);
    await closeServer(server);
  });
});

describe('write larger than the ring after the peer left in order [xenring]', function () {
  for (const kind of ['allocBuffer (loan, by reference)', 'plain Buffer', 'plain Buffer, pool: false']) {
    it(`a 4 MiB ${kind} write (twice the ring) fails with EPIPE, as the CHANGELOG says a write larger than the ring does`, async () => {
      const { server, port } = await startServer(xenring_impl(), { allowHalfOpen: true, ...(kind.endsWith('pool: false') ? { pool: false } : {}) });
      const accepted = once(server, 'connection');
      const client = xenring.connect({ port, ...(kind.endsWith('pool: false') ? { pool: false } : {}) });
      await once(client, 'connect');
      const s = await accepted;
      const log = trackSocket(s, ['end', 'finish', 'error', 'close']);
      s.resume();
      client.write('request');
      client.destroy();
      await once(s, 'end');
      await delay(50);
      const big = kind.startsWith('alloc') ? s.allocBuffer(4 << 20) : Buffer.alloc(4 << 20, 0x62);
      const cbs = [];
      s.write(big, (e) => cbs.push(e ? e.code : 'ok'));
      s.end();
      await log.closed;
      await delay(20);
      assert.deepStrictEqual(cbs, ['EPIPE']);
      await closeServer(server);
    });
  }
});

function xenring_impl() {
  return require('./harness').impls.xenring;
}
