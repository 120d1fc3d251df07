'use strict';
// Small messages on a pool connection cost no pool call: each consumer looks
// at the producer's index through a 4-byte view and pops only when it moved
// (issue 10 item 7: a pop per pump was ~0.9 µs of a 2.5 µs round trip). The
// view holds no reference on the region and is detached at close, so a
// closed link leaves nothing mapped without waiting for a GC (the first try,
// c5b0e97, kept the peer's region mapped until the next GC).
const assert = require('node:assert/strict');
const { once } = require('node:events');
const xenring = require('../..');
const { withGatesOpen } = require('./gates');
const { poolNative } = require('../../dist/pool/native_pool');
const { native } = require('../../dist/native');
const { endPair, poolInodes } = require('../helpers/fixtures');

/** Counts native pop() calls on every PoolQueue made while `fn` runs. */
async function countingPops(fn) {
  // The addon's methods are read-only on its prototype: count through an
  // own property of each queue made meanwhile.
  const Real = poolNative.PoolQueue;
  const pops = { n: 0 };
  poolNative.PoolQueue = function CountingQueue(...args) {
    const q = new Real(...args);
    Object.defineProperty(q, 'pop', { value: (...x) => (pops.n++, Real.prototype.pop.apply(q, x)) });
    return q;
  };
  try {
    return await fn(pops);
  } finally {
    poolNative.PoolQueue = Real;
  }
}

/** An echo server (it hands received pool Buffers back at once) and a client, with a 1 MiB pool each way. */
async function pooledPair() {
  const srv = xenring.createServer({ pool: { size: 1 << 20 } }, (c) =>
    c.on('data', (d) => {
      c.write(Buffer.from(d));
      c.release(d);
    }),
  );
  srv.listen(0);
  await once(srv, 'listening');
  const s = xenring.connect({ port: srv.address().port, pool: { size: 1 << 20 } });
  const [server] = await Promise.all([once(srv, 'connection'), once(s, 'connect')]);
  return { srv, s, server: server[0] };
}

/** `rounds` 1-byte round trips, each sent from the previous answer's 'data'. */
function pingPong(s, rounds) {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (d) => {
      got += d.length;
      if (got < rounds) s.write('x');
      else {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    s.write('x');
  });
}

describe('pool: small messages on a pool connection', function () {
  this.timeout(30000);

  it('1-byte round trips pop no queue; a payload is still taken, and its completion', async () => {
    await countingPops(async (pops) => {
      const { srv, s } = await pooledPair();
      try {
        await pingPong(s, 20); // settles the connection
        pops.n = 0;
        await pingPong(s, 300);
        // Before: two pops per side per round trip (1216 for 300).
        assert.equal(pops.n, 0, `${pops.n} pops for 300 round trips without a payload`);
        // The look is not blind: a payload goes by reference, arrives, is echoed, and comes back.
        const buf = s.allocBuffer(256 * 1024).fill(7);
        const size = buf.length;
        const echoed = new Promise((resolve) => {
          let n = 0;
          const onData = (d) => {
            n += d.length;
            if (n === size) {
              s.off('data', onData);
              resolve();
            }
          };
          s.on('data', onData);
        });
        s.write(buf);
        await echoed;
        assert.equal(s.poolStats().sentByRef, 1, 'the payload went by reference');
        assert.ok(pops.n >= 1, 'the announced payload was popped');
        const popsAfterPayload = pops.n;
        await pingPong(s, 100);
        // At most the pops that find the echo's payload and the completions coming back.
        assert.ok(pops.n - popsAfterPayload <= 4, `${pops.n - popsAfterPayload} pops for 100 round trips after a payload`);
      } finally {
        s.destroy();
        srv.close();
      }
    });
  });

  it('a by-reference write asks the addon nothing about the peer (the state array answers)', async () => {
    const Real = native.RingEndpoint;
    let peerStates = 0;
    native.RingEndpoint = function CountingEndpoint(...args) {
      const ep = new Real(...args);
      Object.defineProperty(ep, 'peerState', { value: (...x) => (peerStates++, Real.prototype.peerState.apply(ep, x)) });
      return ep;
    };
    let pair;
    try {
      pair = await pooledPair();
    } finally {
      native.RingEndpoint = Real;
    }
    const { srv, s } = pair;
    try {
      let echoed = 0;
      s.on('data', (d) => (echoed += d.length));
      peerStates = 0;
      for (let i = 0; i < 20; i++) {
        s.write(s.allocBuffer(64 * 1024).fill(i));
        const want = (i + 1) * 64 * 1024;
        while (echoed < want) await new Promise((r) => setImmediate(r));
      }
      assert.equal(s.poolStats().sentByRef, 20);
      // Before: one peerState() call per by-reference part.
      assert.equal(peerStates, 0, `${peerStates} peerState() calls for 20 by-reference writes`);
    } finally {
      s.destroy();
      srv.close();
    }
  });

  it('a closed pool link leaves no region mapped, with no GC', () => withGatesOpen(async () => {
    // ordinary Buffers copied into the pool from the first write (gates.js): this case is about what the pool then holds
    // Other files' connections may still be closing (or their views awaiting
    // GC) in this process: follow this pair's own regions by inode rather
    // than a process-wide count.
    const before = poolInodes();
    const { srv, s, server } = await pooledPair();
    await pingPong(s, 50);
    // Regions on demand: small messages made and mapped none.
    assert.deepEqual([...poolInodes()].filter((i) => !before.has(i)), [], 'a region made before any payload needed one');
    // One payload by reference each way (the server echoes a copy): both regions.
    const big = Buffer.alloc(300_000, 7);
    const echoed = new Promise((resolve) => {
      let got = 0;
      const onData = (d) => {
        got += d.length;
        s.release(d); // a view held would keep the server's region mapped
        if (got === big.length) {
          s.off('data', onData);
          resolve();
        }
      };
      s.on('data', onData);
    });
    s.write(big);
    await echoed;
    assert.equal(s.poolStats().sentByRef, 1);
    assert.equal(s.poolStats().receivedByRef, 1);
    const ours = [...poolInodes()].filter((i) => !before.has(i));
    assert.equal(ours.length, 2, `the pools are mapped while open (new regions: ${ours.length})`);
    await endPair(srv, s, server);
    // Both sockets (and so their receivers' views of the peers' indices) are
    // still reachable here: only a view that holds no reference lets go.
    assert.ok(s.destroyed && server.destroyed);
    const left = poolInodes();
    assert.deepEqual(ours.filter((i) => left.has(i)), [], 'no region of this pair is still mapped');
  }));
});
