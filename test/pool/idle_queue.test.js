'use strict';
// Small messages on a pool connection cost no pool call: the receiver looks
// at the peer's descriptor index from JS and pops only when it moved
// (issue 10 item 7: a pop per pump was ~0.9 µs of a 2.5 µs round trip).
const assert = require('node:assert/strict');
const { once } = require('node:events');
const xenring = require('../..');
const { poolNative } = require('../../dist/pool/native_pool');

describe('pool: small messages on a pool connection', function () {
  it('1-byte round trips pop the descriptor queue only when a payload was announced', async function () {
    // The addon's methods are read-only on its prototype: count through an
    // own property of each queue made while the test runs.
    const Real = poolNative.PoolQueue;
    let pops = 0;
    poolNative.PoolQueue = function CountingQueue(...args) {
      const q = new Real(...args);
      Object.defineProperty(q, 'pop', { value: (...x) => (pops++, Real.prototype.pop.apply(q, x)) });
      return q;
    };
    const srv = xenring.createServer({ pool: { size: 1 << 20 } }, (c) => c.on('data', (d) => c.write(d)));
    try {
      srv.listen(0);
      await once(srv, 'listening');
      const s = xenring.connect({ port: srv.address().port, pool: { size: 1 << 20 } });
      await once(s, 'connect');
      const ROUNDS = 300;
      let got = 0;
      const done = new Promise((resolve) => s.on('data', (d) => { got += d.length; if (got === ROUNDS) resolve(); else s.write('x'); }));
      pops = 0;
      s.write('x');
      await done;
      assert.ok(pops < 10, `${pops} pops for ${ROUNDS} round trips without a payload`);
      // A payload still goes by reference and arrives, so the look is not blind.
      const buf = s.allocBuffer(256 * 1024).fill(7);
      const echoed = new Promise((resolve) => { let n = 0; s.removeAllListeners('data'); s.on('data', (d) => { n += d.length; if (n === buf.length) resolve(); }); });
      s.write(buf);
      await echoed;
      assert.ok(s.poolStats().sentByRef >= 1, 'the payload went by reference');
      s.destroy();
    } finally {
      poolNative.PoolQueue = Real;
      srv.close();
    }
  });
});
