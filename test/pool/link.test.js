'use strict';
// A connection's two pool directions as the transports will build them: the
// sender's region memfd, the peer's mapping of it after memfdCheck, the
// trust rule for views, and the socket-facing allocBuffer/release/stats.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const pool = require('../../dist/pool');

const P = pool.POOL_PAGE;

/** Two links in this process over two regions, as two peers would hold them. */
function linkedPair(sizeAB, sizeBA, views = true) {
  const ab = pool.createLocalRegion(sizeAB);
  const ba = pool.createLocalRegion(sizeBA);
  const a = new pool.PoolLink({
    own: { mapping: ab.mapping, poolBytes: sizeAB },
    peer: { mapping: pool.mapPeerRegion(ba.fd, sizeBA), poolBytes: sizeBA },
    createdOwn: true,
    createdPeer: false,
    views,
  });
  const b = new pool.PoolLink({
    own: { mapping: ba.mapping, poolBytes: sizeBA },
    peer: { mapping: pool.mapPeerRegion(ab.fd, sizeAB), poolBytes: sizeAB },
    createdOwn: true,
    createdPeer: false,
    views,
  });
  return { a, b, fds: [ab.fd, ba.fd] };
}

describe('pool: a connection link', function () {
  it('agrees on the smaller size; views only for same-uid local peers unless opted', function () {
    assert.equal(pool.agreePoolSize(64 << 20, 1 << 20), 1 << 20);
    assert.equal(pool.agreePoolSize(0, 1 << 20), 0);
    assert.equal(pool.viewsAllowed('local', true, undefined), true);
    assert.equal(pool.viewsAllowed('local', false, undefined), false);
    assert.equal(pool.viewsAllowed('xen', true, undefined), false);
    assert.equal(pool.viewsAllowed('xen', false, true), true);
    assert.equal(pool.viewsAllowed('local', true, false), false);
  });

  it('both directions: a loan sent one way arrives as a view, goes back on release, and the stats say so', function () {
    const { a, b, fds } = linkedPair(16 * P, 8 * P);
    for (const [from, to] of [[a, b], [b, a]]) {
      const buf = from.allocBuffer(3 * P + 5);
      buf.fill(0x5a);
      assert.equal(from.sender.send(buf, 0), true);
      to.receiver.poll(0);
      const view = to.receiver.take(0);
      assert.equal(view.length, 3 * P + 5);
      assert.ok(view.every((x) => x === 0x5a));
      assert.equal(to.stats().held, 3 * P + 5);
      assert.equal(to.release(view), true);
      assert.equal(to.release(Buffer.alloc(1)), false, 'an ordinary Buffer is not ours to release');
      assert.equal(from.sender.reclaim(), 1);
      assert.deepEqual(
        [from.stats().sentByRef, from.stats().returned, from.stats().inUse, to.stats().receivedByRef, to.stats().released, to.stats().held],
        [1, 1, 0, 1, 1, 0],
      );
    }
    // Larger than b's 8-page pool: an ordinary Buffer, counted as a fallback.
    const big = b.allocBuffer(9 * P);
    assert.equal(big.length, 9 * P);
    assert.equal(b.sender.isLoaned(big), false);
    assert.equal(b.stats().fallbacks, 1);
    assert.equal(b.allocBuffer(0).length, 0);
    assert.throws(() => b.allocBuffer(-1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => b.allocBuffer('1'), { code: 'ERR_INVALID_ARG_TYPE' });
    a.close();
    b.close();
    fds.forEach((fd) => fs.closeSync(fd));
  });

  it('onread delivery: copyInto() fills the user buffer piece by piece, then returns the extent', function () {
    const { a, b, fds } = linkedPair(16 * P, 8 * P);
    const buf = a.allocBuffer(3 * P + 5);
    for (let i = 0; i < buf.length; i++) buf[i] = i % 251;
    const sent = Buffer.from(buf);
    assert.equal(a.sender.send(buf, 7), true);
    assert.equal(buf.length, 3 * P + 5, 'a loan sent by reference keeps its view (for a later allocBuffer of the same extent)');
    const rx = b.receiver;
    rx.poll(0);
    assert.equal(rx.copyInto(0, Buffer.alloc(P), 0, P), 0, 'nothing is due before position 7');
    const target = Buffer.alloc(P + 10);
    const got = [];
    for (let n; (n = rx.copyInto(7, target, 10, P)) > 0; ) {
      got.push(Buffer.from(target.subarray(10, 10 + n)));
      if (got.length < 4) assert.equal(rx.allowance(7), 0, 'ring bytes must wait for the rest of the payload');
    }
    const all = Buffer.concat(got);
    assert.deepEqual(got.map((g) => g.length), [P, P, P, 5]);
    assert.ok(all.equals(sent), 'copied bytes differ');
    assert.equal(rx.allowance(7), Infinity);
    assert.equal(a.sender.reclaim(), 1, 'the extent did not come back after its last byte');
    // A payload begun with copyInto() and finished with take() (onread switched off).
    const second = a.allocBuffer(2 * P);
    second.fill(9);
    a.sender.send(second, 7);
    rx.poll(7);
    assert.equal(rx.copyInto(7, target, 0, 100), 100);
    const rest = rx.take(7);
    assert.equal(rest.length, 2 * P - 100);
    assert.ok(rest.every((x) => x === 9));
    assert.equal(a.sender.reclaim(), 1);
    a.close();
    b.close();
    fds.forEach((fd) => fs.closeSync(fd));
  });

  it('a direction of size 0 has no pool: ordinary Buffers, zero stats', function () {
    const region = pool.createLocalRegion(4 * P);
    const link = new pool.PoolLink({ own: null, peer: { mapping: region.mapping, poolBytes: 4 * P }, createdOwn: false, createdPeer: true, views: false });
    assert.equal(link.sender, null);
    assert.equal(link.allocBuffer(100).length, 100);
    assert.deepEqual(link.stats(), { ...pool.emptyPoolStats(0) });
    link.close();
    fs.closeSync(region.fd);
  });

  it("a peer's region fd of the wrong size, or not a sealed memfd, is EPROTO", function () {
    const region = pool.createLocalRegion(4 * P);
    assert.throws(() => pool.mapPeerRegion(region.fd, 8 * P), { code: 'EPROTO' });
    const zero = fs.openSync('/dev/zero', 'r');
    assert.throws(() => pool.mapPeerRegion(zero, 4 * P), { code: 'EPROTO' });
    fs.closeSync(zero);
    region.mapping.close();
    fs.closeSync(region.fd);
  });
});

describe('pool: worker threads', function () {
  it('a worker that exits or is terminated while holding pool views does not take the process down', async function () {
    const { Worker } = require('node:worker_threads');
    const code = `
      const pool = require(${JSON.stringify(require.resolve('../../dist/pool'))});
      const r = pool.createLocalRegion(16 * 4096);
      const s = new pool.PoolSender({ mapping: r.mapping, poolBytes: 16 * 4096, init: true });
      globalThis.keep = [s.allocBuffer(4096), s.allocBuffer(8192)];
      globalThis.keep[0].fill(1);
      const { parentPort, workerData } = require('node:worker_threads');
      // A worker to be terminated stays busy, so it cannot end by itself first.
      if (workerData.hold) setInterval(() => {}, 1 << 30);
      parentPort.postMessage(globalThis.keep[0][4095]);
    `;
    for (let i = 0; i < 4; i++) {
      const w = new Worker(code, { eval: true, workerData: { hold: i % 2 === 1 } });
      const exited = new Promise((resolve) => w.once('exit', resolve));
      const byte = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      assert.equal(byte, 1);
      if (i % 2) await w.terminate(); // odd rounds: terminated; even rounds: it ends by itself
      assert.equal(await exited, i % 2 ? 1 : 0);
    }
  });
});
