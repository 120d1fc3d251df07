'use strict';
// Connection set-up on the local transport, with the server in another
// process: handshakes served when the HELLO is already queued at accept and
// when it comes later, a signal aborted before connect(), and the small first
// receive buffer of a connection (a short connection must not hold a 1 MiB
// slab: V8 counts it as external memory and collects more often).
const assert = require('node:assert/strict');
const path = require('node:path');
const { once } = require('node:events');
const { forkServer } = require('../helpers/fixtures');
const { slice, PatternChecker, writePattern } = require('../helpers/pattern');
const xenring = require('../..');

/** Connects, writes `total` pattern bytes, ends; resolves with what came back, checked. */
function echoRound(port, total, chunk = 65536) {
  return new Promise((resolve, reject) => {
    const check = new PatternChecker();
    const chunks = [];
    const s = xenring.connect({ port }, () => writePattern(s, total, chunk, () => s.end()));
    s.on('data', (d) => {
      chunks.push(d);
      check.update(d);
    });
    s.on('error', reject);
    s.on('close', () => resolve({ received: check.received, ok: check.ok, chunks }));
  });
}

describe('local transport: connection set-up', function () {
  this.timeout(60000);
  let server;
  let port;

  before(async function () {
    server = await forkServer(path.join(__dirname, 'echo-server.js'));
    port = server.port;
  });

  after(() => server.stop());

  it('serves many handshakes at once; every echoed byte is verified', async function () {
    // Some HELLOs are queued by the time the server accepts, others come later: both paths.
    const rounds = await Promise.all(Array.from({ length: 40 }, (_, i) => echoRound(port, 1 + i * 4099, 4096)));
    rounds.forEach((r, i) => {
      assert.equal(r.received, 1 + i * 4099, `connection ${i}`);
      assert.ok(r.ok, `connection ${i}: echoed bytes differ`);
    });
  });

  it('short connections one after another: each echoes its byte', async function () {
    for (let i = 0; i < 200; i++) {
      const r = await echoRound(port, 1);
      assert.equal(r.received, 1);
      assert.ok(r.ok);
    }
  });

  it("a short connection's first receive buffer is small; a long one still gets every byte", async function () {
    const short = await echoRound(port, 1);
    assert.equal(short.chunks.length, 1);
    assert.ok(short.chunks[0].buffer.byteLength <= 64 * 1024, `1 byte received into a ${short.chunks[0].buffer.byteLength}-byte slab`);
    const long = await echoRound(port, 4 << 20, 256 * 1024);
    assert.equal(long.received, 4 << 20);
    assert.ok(long.ok);
  });

  it('a socket whose own signal is already aborted never connects; the server sees no connection', async function () {
    let connections = 0;
    const local = xenring.createServer((s) => {
      connections++;
      s.destroy();
    });
    local.listen({ port: 0 });
    await once(local, 'listening');
    const s = xenring.connect({ port: local.address().port, signal: AbortSignal.abort() });
    const events = [];
    for (const e of ['connect', 'error', 'close']) s.on(e, (x) => events.push(e === 'error' ? `error:${x.code}` : e));
    await new Promise((r) => s.once('close', r)); // not events.once: it rejects on 'error'
    await new Promise((r) => setTimeout(r, 300)); // a late handshake would have connected by now
    assert.deepEqual(events, ['error:ABORT_ERR', 'close']);
    assert.equal(connections, 0);
    await new Promise((r) => local.close(r));
  });
});
