'use strict';
// A connection's first reads go into a slice of Node's small-buffer pool
// (ring/read_pool.ts FIRST_ROOM), not a receive slab: an idle connection, or
// one that carries a request and its answer, holds no 64 KiB slab (each
// connection's slab was most of its memory: 1,000 idle connections cost
// each side ~105 MiB of RSS with one, ~50 without). Past the first room the
// reads go on into slabs, every byte in order. Between real processes.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const path = require('node:path');
const xenring = require('../..');
const { forkPeer } = require('../pool/peer_process');
const { slabSizes, slabCounts } = require('../../dist/ring/read_pool');
const { slice } = require('../helpers/pattern');

const slabsTaken = () => slabSizes().reduce((n, size) => n + slabCounts(size).reused + slabCounts(size).fresh, 0);

/** Sends `bytes` and reads the echo back whole; returns it. */
async function echo(s, bytes) {
  const parts = [];
  let got = 0;
  const done = new Promise((resolve, reject) => {
    s.on('data', (d) => {
      parts.push(Buffer.from(d));
      got += d.length;
      if (got >= bytes.length) resolve();
    });
    s.once('error', reject);
  });
  s.write(bytes);
  await done;
  return Buffer.concat(parts);
}

describe('ring/read_pool: the first room', function () {
  this.timeout(60000);
  let p;
  let port;
  const socks = [];
  afterEach(() => socks.splice(0).forEach((s) => s.destroy()));
  const serverSlabs = async () => {
    p.child.send('slabs');
    return (await p.next('slabs')).taken;
  };

  before(async () => {
    p = forkPeer(path.join('..', 'ring', 'fixtures', 'slab_echo.js'), {});
    ({ port } = await p.next('ready'));
  });
  after(async () => {
    p.child.disconnect(); // the server closes once its connections have
    const t = setTimeout(() => p.child.kill(), 5000);
    await p.exited;
    clearTimeout(t);
  });

  it('idle connections and short exchanges take no receive slab on either side', async () => {
    const before = { client: slabsTaken(), server: await serverSlabs() };
    for (let i = 0; i < 40; i++) {
      const s = xenring.connect({ port });
      await once(s, 'connect');
      socks.push(s);
      // Half of them exchange a request-sized message; all then sit idle (their readers asleep, armed).
      if (i % 2 === 0) assert.deepEqual(await echo(s, slice(i, 600)), slice(i, 600));
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(slabsTaken() - before.client, 0, 'a client connection took a receive slab');
    assert.equal((await serverSlabs()) - before.server, 0, 'a server connection took a receive slab');
  });

  it('past the first room the reads go on into slabs, every byte in order', async () => {
    const before = slabsTaken();
    const s = xenring.connect({ port });
    socks.push(s);
    await once(s, 'connect');
    // Sizes around the first room's end and across slabs; each echoed whole before the next.
    for (const n of [4000, 40, 9000, 70 * 1024, 3 << 20]) {
      const bytes = slice(n & 0xff, n);
      const back = await echo(s, bytes);
      assert.equal(back.length, n);
      assert.ok(back.equals(bytes), `${n} bytes came back different`);
      s.removeAllListeners('data');
    }
    assert.ok(slabsTaken() > before, 'megabytes were read without a slab');
    s.end();
    await once(s, 'close');
  });
});
