'use strict';
// The native pool primitives on their own: views are bounded by the mapping
// and keep it mapped (unmapping after the last view is checked in
// transfer.test.js, whose child runs with --expose-gc); queues refuse
// placements outside the mapping.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { native } = require('../../dist/native');
const { poolNative } = require('../../dist/pool');

describe('pool: native mapping and queue', function () {
  it('views are bounds-checked and see the shared pages', function () {
    const fd = native.memfdCreate('pool-native', 8192);
    const m = new poolNative.PoolMapping(fd, 8192, true);
    const other = new poolNative.PoolMapping(fd, 8192, true);
    for (const [off, len] of [[8192, 1], [0, 8193], [4096, 4097], [-1, 1], [0, 0], [1.5, 1]])
      assert.throws(() => m.view(off, len), { code: 'ERR_OUT_OF_RANGE' }, `${off}+${len}`);
    const v = m.view(4096, 4096);
    v.fill(9);
    assert.ok(other.view(4096, 4096).every((b) => b === 9), 'two mappings of one memfd share pages');
    m.close();
    other.close();
    assert.throws(() => m.view(0, 1), { code: 'ERR_INVALID_STATE' });
    assert.equal(v[4095], 9, 'a view outlives close()');
    fs.closeSync(fd);
  });

  it('read() and write() copy in and out of the pages within bounds on both sides', function () {
    const fd = native.memfdCreate('pool-native', 8192);
    const m = new poolNative.PoolMapping(fd, 8192, true);
    const src = Buffer.from([...Array(300).keys()].map((i) => i % 251));
    m.write(8192 - 300, src);
    const out = Buffer.alloc(400, 0xee);
    m.read(8192 - 300, out, 50, 300);
    assert.ok(out.subarray(50, 350).equals(src));
    assert.ok(out.subarray(0, 50).every((b) => b === 0xee) && out.subarray(350).every((b) => b === 0xee), 'wrote outside the target range');
    assert.throws(() => m.write(8192 - 299, src), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => m.write(8193, Buffer.alloc(0)), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => m.read(8192 - 299, out, 0, 300), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => m.read(0, out, 101, 300), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => m.read(0, 'x', 0, 1), { code: 'ERR_INVALID_ARG_TYPE' });
    m.close();
    assert.throws(() => m.read(0, out, 0, 1), { code: 'ERR_INVALID_STATE' });
    fs.closeSync(fd);
  });

  it('write() (streaming stores from 2 KiB on) lands every byte at any alignment, seen through a second mapping', function () {
    const size = 64 * 1024;
    const fd = native.memfdCreate('pool-native', size);
    const m = new poolNative.PoolMapping(fd, size, true);
    // Another mapping of the same pages: what the peer reads.
    const peer = new poolNative.PoolMapping(fd, size, true).view(0, size);
    const src = Buffer.from([...Array(20000).keys()].map((i) => (i * 7) % 251));
    // Lengths around the 2 KiB switch and the 128-byte loop step; offsets off
    // every 32-byte boundary; source views at odd offsets too.
    for (const len of [2047, 2048, 2049, 4096 + 31, 8191, 16384 + 100]) {
      for (const at of [0, 1, 31, 32, 33, 4095, 4096 + 17]) {
        for (const from of [0, 3]) {
          peer.fill(0xee);
          const chunk = src.subarray(from, from + len);
          m.write(at, chunk);
          assert.ok(peer.subarray(at, at + len).equals(chunk), `${len} bytes at ${at} from +${from}`);
          assert.ok(peer.subarray(0, at).every((b) => b === 0xee), `${len} bytes at ${at}: wrote before`);
          assert.ok(peer.subarray(at + len).every((b) => b === 0xee), `${len} bytes at ${at}: wrote after`);
        }
      }
    }
    m.close();
    fs.closeSync(fd);
  });

  it('a queue holds the mapping and refuses bad placements and options', function () {
    const fd = native.memfdCreate('pool-native', 4096);
    const m = new poolNative.PoolMapping(fd, 4096, true);
    const base = { mapping: m, offset: 0, slots: 8, words: 2, role: 'producer', init: true, limit: 4096 };
    assert.throws(() => new poolNative.PoolQueue({ ...base, offset: 4096 - 128 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new poolNative.PoolQueue({ ...base, offset: 8 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new poolNative.PoolQueue({ ...base, slots: 6 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new poolNative.PoolQueue({ ...base, words: 1 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new poolNative.PoolQueue({ ...base, role: 'both' }), { name: 'TypeError' });
    assert.throws(() => new poolNative.PoolQueue({ ...base, mapping: {} }), { name: 'TypeError' });
    assert.throws(() => new poolNative.PoolQueue({ ...base, mapping: new native.SharedMapping(fd, 4096, true) }), { name: 'TypeError' });
    const p = new poolNative.PoolQueue(base);
    const c = new poolNative.PoolQueue({ ...base, role: 'consumer', init: false });
    assert.equal(m.holders, 2);
    m.close();
    // The queues keep the pages mapped after the mapping object is closed.
    assert.equal(p.push(new Uint32Array([4000, 96, 0, 1]), 2), 2);
    const out = new Uint32Array(16);
    assert.equal(c.pop(out, 8), 2);
    assert.deepEqual([...out.subarray(0, 4)], [4000, 96, 0, 1]);
    assert.throws(() => p.pop(out, 1), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => c.push(out, 1), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => c.pop(new Uint8Array(8), 1), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => c.pop(out, 9), { code: 'ERR_OUT_OF_RANGE' }, 'more entries than the array holds');
    // 9 pushes into 8 slots: the ninth does not fit, and nothing waits.
    assert.equal(p.push(new Uint32Array(18).fill(1), 9), 8);
    assert.equal(c.pending(), 8);
    p.close();
    c.close();
    assert.throws(() => p.push(out, 1), { code: 'ERR_SOCKET_CLOSED' });
    fs.closeSync(fd);
  });
});

describe('pool: a detached view is no holder', function () {
  it('holders drops when a view is detached, before its finalizer runs; a live view of the same extent still counts', async function () {
    const fd = native.memfdCreate('pool-native', 8192);
    const m = new poolNative.PoolMapping(fd, 8192, true);
    const a = m.view(0, 4096);
    const b = m.view(0, 4096); // the same extent, another Buffer (a view the user kept)
    const c = m.view(4096, 100);
    assert.equal(m.holders, 3);
    poolNative.detachView(a.buffer);
    assert.equal(a.length, 0);
    assert.equal(m.holders, 2, 'the detached view still counted (its finalizer runs a loop turn later)');
    poolNative.detachView(a.buffer); // twice: counted once
    poolNative.detachView(c.buffer);
    assert.equal(m.holders, 1);
    // Once the finalizers ran, the count is the same: each went once.
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(m.holders, 1);
    assert.equal(b[0], 0); // b still reads its page
    poolNative.detachView(b.buffer);
    assert.equal(m.holders, 0);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(m.holders, 0);
    m.close();
    fs.closeSync(fd);
  });
});

describe('pool: loans and the garbage collector (a real process with --expose-gc)', function () {
  it('a loan dropped unsent returns to the pool, and the pages are unmapped after the last view', function () {
    const { execFileSync } = require('node:child_process');
    const script = `
      const { native } = require(${JSON.stringify(require.resolve('../../dist/native'))});
      const pool = require(${JSON.stringify(require.resolve('../../dist/pool'))});
      const size = pool.regionBytes(4 * 4096);
      const fd = native.memfdCreate('pool-gc', size);
      const sender = new pool.PoolSender({ mapping: new pool.poolNative.PoolMapping(fd, size, true), poolBytes: 4 * 4096, init: true });
      const out = {};
      (() => { sender.allocBuffer(4 * 4096).fill(1); })();
      out.fullBefore = sender.allocBuffer(1) === null;
      const tick = (n) => new Promise((r) => setTimeout(r, n));
      (async () => {
        for (let i = 0; i < 20 && sender.stats.inUse > 0; i++) { global.gc(); await tick(5); }
        let again = sender.allocBuffer(4 * 4096);
        out.reloaned = again !== null;
        sender.close();
        out.aliveWithView = pool.poolNative.poolRegionsAlive();
        out.viewReadable = again[100] === 1; // the same pages, still mapped
        again = null;
        for (let i = 0; i < 20 && pool.poolNative.poolRegionsAlive() > 0; i++) { global.gc(); await tick(5); }
        out.aliveAfter = pool.poolNative.poolRegionsAlive();
        console.log(JSON.stringify(out));
      })();
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' }));
    assert.deepEqual(out, { fullBefore: true, reloaned: true, aliveWithView: 1, viewReadable: true, aliveAfter: 0 });
  });

  // A view longer than a Buffer may be (over 4 GiB) is refused by Node after
  // N-API has taken the view's finalizer, which it then runs at once: the
  // view's reference is dropped there only. Undoing it again in the caller
  // dropped the mapping's own reference too (a double free: the process
  // aborted, or later read unmapped pages). Pools are smaller than that; this
  // is the one refusal a test can provoke in a running environment.
  it('a view Node refuses after taking its finalizer drops its reference once', function () {
    const { spawnSync } = require('node:child_process');
    const script = `
      const { native } = require(${JSON.stringify(require.resolve('../../dist/native'))});
      const { poolNative } = require(${JSON.stringify(require.resolve('../../dist/pool/native_pool'))});
      const { returnedBuffers } = require(${JSON.stringify(require.resolve('../../dist/returned_buffers'))});
      const len = 2 ** 32 + 8192; // sparse: no page is touched beyond the first
      const fd = native.memfdCreate('pool-big', len);
      const m = new poolNative.PoolMapping(fd, len, true);
      const views = new returnedBuffers.ViewReturns(() => {});
      m.write(0, Buffer.from([1, 2, 3, 4]));
      const out = { codes: [] };
      const code = (f) => { try { f(); return 'made'; } catch (e) { return e.code; } };
      for (let i = 0; i < 4; i++) {
        out.codes.push(code(() => m.view(0, 2 ** 32 + 4096)));
        out.codes.push(code(() => views.view(m, 0, 2 ** 32 + 4096, i, i % 2 === 0)));
      }
      const tick = () => new Promise((r) => setImmediate(r));
      (async () => {
        for (let i = 0; i < 5; i++) { global.gc(); await tick(); }
        out.holders = m.holders;
        out.alive = poolNative.poolRegionsAlive();
        const t = Buffer.alloc(4);
        m.read(0, t, 0, 4);
        out.bytes = [...t];
        m.close();
        out.aliveAfterClose = poolNative.poolRegionsAlive();
        console.log(JSON.stringify(out));
      })();
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, `child ended with ${r.status ?? r.signal}: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout), {
      codes: Array(8).fill('ERR_BUFFER_TOO_LARGE'),
      holders: 0,
      alive: 1,
      bytes: [1, 2, 3, 4],
      aliveAfterClose: 0,
    });
  });
});
