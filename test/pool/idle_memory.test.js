'use strict';
// What an idle connection holds in the JS heap and in ArrayBuffers: a pool
// connection makes its sender's and receiver's tables (extent tables, queue
// buffers, view maps, a FinalizationRegistry) only when a payload first goes
// by reference (pool_sender.ts / pool_receiver.ts `st`), and its reader no
// 64 KiB slab until it has read more than a first room (ring/read_pool.ts).
// Measured here (heap + ArrayBuffers, client side): 20.2 KiB per idle
// connection with the tables made at connect, 13.2-13.8 without, 8.6-9.1
// with `pool: false`. Real processes: the server is forked.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const path = require('node:path');
const xenring = require('../..');
const { forkPeer } = require('./peer_process');
const { collectAll } = require('../helpers/collect');

const CONNS = 300;

describe('pool: what an idle connection holds', function () {
  this.timeout(60000);

  it('an idle pool connection holds little more JS memory than one without a pool', async () => {
    const p = forkPeer(path.join('..', 'ring', 'fixtures', 'slab_echo.js'), {});
    const { port } = await p.next('ready');
    const socks = [];
    const perConnection = async (options) => {
      await collectAll();
      const m0 = process.memoryUsage();
      for (let i = 0; i < CONNS; i++) {
        const s = xenring.connect({ port, ...options });
        socks.push(s);
        await once(s, 'connect');
        s.write('x');
        const [d] = await once(s, 'data');
        assert.equal(d.toString(), 'x');
      }
      await collectAll();
      const m1 = process.memoryUsage();
      return (m1.heapUsed - m0.heapUsed + m1.arrayBuffers - m0.arrayBuffers) / CONNS / 1024;
    };
    try {
      const withPool = await perConnection({});
      const withoutPool = await perConnection({ pool: false });
      assert.ok(socks.slice(0, CONNS).every((s) => s.poolStats().size > 0), 'the first connections had no pool');
      // Made at connect, the pool's tables added ~11 KiB to each (20.2 against 8.8); now ~4-5.
      assert.ok(withPool - withoutPool < 8, `an idle pool connection holds ${withPool.toFixed(1)} KiB, one without a pool ${withoutPool.toFixed(1)} KiB`);
    } finally {
      socks.forEach((s) => s.destroy());
      p.child.disconnect();
      const t = setTimeout(() => p.child.kill(), 5000);
      await p.exited;
      clearTimeout(t);
    }
  });
});
