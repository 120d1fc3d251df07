'use strict';
// The native pieces behind recycled receive memory (native/returned_buffers.cc):
// a slab is handed out again only once V8 has collected it, never while any
// Buffer (or subarray) of it is reachable; a pool view reports its id only
// once collected, and minor GCs (not only full ones) return both.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { returnedBuffers } = require('../../dist/returned_buffers');
const { poolNative } = require('../../dist/pool/native_pool');

const { minorGc } = require('../helpers/collect');

describe('returned buffers: recycled slabs and self-reporting pool views', () => {
  it('hands a slab out again only after it was collected, never one still held (a subarray holds it)', async () => {
    const r = new returnedBuffers.SlabRecycler(64 * 1024, 8);
    const held = r.take().subarray(100, 200).fill(7);
    (() => {
      for (let i = 0; i < 4; i++) r.take().fill(1);
    })();
    assert.equal(r.fresh, 5);
    await minorGc();
    assert.equal(r.cached, 4, 'the four dropped slabs came back after minor GCs');
    const again = [];
    for (let i = 0; i < 6; i++) again.push(r.take().fill(9));
    assert.equal(r.reused, 4);
    assert.equal(r.fresh, 7, 'the held slab was not among them: two more were new');
    assert.ok(held.every((b) => b === 7), 'the held subarray was never overwritten');
    assert.equal(held.buffer.byteLength, 64 * 1024);
    assert.equal(again.length, 6);
  });

  it('a fresh slab comes with its pages mapped: filling it takes no page fault per page', () => {
    // The reader fills a slab whole; mapping its pages in one call at take()
    // is cheaper than a fault per 4 KiB during the copies. Where the kernel
    // lacks MADV_POPULATE_WRITE (< 5.14) the slab still works, only unmapped.
    const [major, minor] = os.release().split('.').map(Number);
    const populates = major > 5 || (major === 5 && minor >= 14);
    const size = 4 << 20;
    const r = new returnedBuffers.SlabRecycler(size, 0);
    const slab = r.take();
    assert.equal(r.fresh, 1);
    const before = process.resourceUsage().minorPageFault;
    slab.fill(0xa5);
    const faults = process.resourceUsage().minorPageFault - before;
    // The count is the whole process's (V8's GC threads fault too: 28 seen
    // in CI); unpopulated, filling the slab alone takes one per page (1024).
    if (populates) assert.ok(faults < size / 4096 / 8, `${faults} page faults filling a fresh ${size}-byte slab (${size / 4096} pages)`);
    assert.ok(slab.every((b) => b === 0xa5));
  });

  it('keeps at most `keep` collected slabs, and trim() frees them', async () => {
    const r = new returnedBuffers.SlabRecycler(4096, 2);
    (() => {
      for (let i = 0; i < 5; i++) r.take();
    })();
    await minorGc();
    assert.equal(r.cached, 2);
    assert.equal(r.trim(1), 1);
    assert.equal(r.cached, 1);
    assert.equal(r.trim(0), 1);
    assert.equal(r.cached, 0);
  });

  it('a pool view reports its id once collected by a minor GC; a held one never does', async () => {
    const file = path.join(os.tmpdir(), `xenring-returned-${process.pid}`);
    fs.writeFileSync(file, Buffer.alloc(1 << 20));
    const fd = fs.openSync(file, 'r+');
    fs.unlinkSync(file);
    const mapping = new poolNative.PoolMapping(fd, 1 << 20, true);
    fs.closeSync(fd);
    const views = new returnedBuffers.ViewReturns();
    const kept = views.view(mapping, 4096, 8192, 1, true).subarray(10, 20);
    (() => {
      for (let id = 2; id < 6; id++) views.view(mapping, 4096 * id, 4096, id, id % 2 === 0);
    })();
    assert.equal(mapping.holders, 5);
    await minorGc();
    const out = new Uint32Array(16);
    const n = views.drain(out);
    assert.deepEqual([...out.subarray(0, n)].sort(), [2, 3, 4, 5]);
    assert.equal(views.drain(out), 0, 'each id once');
    assert.equal(mapping.holders, 1, 'collected views dropped their hold on the pages');
    assert.equal(kept.length, 10);
    assert.throws(() => views.view(mapping, 1 << 20, 1, 7, true), { code: 'ERR_OUT_OF_RANGE' });
    mapping.close();
    assert.throws(() => views.view(mapping, 0, 1, 8, true), { code: 'ERR_INVALID_STATE' });
  });
});

describe('ring/read_pool: receive slabs from the recycler', () => {
  const { ReadPool, cachedSlabs } = require('../../dist/ring/read_pool');
  const SLAB = 192 * 1024; // a size no connection of this process uses

  it('reuses collected slabs and gives the cache back once receiving stops', async () => {
    const pool = new ReadPool(SLAB);
    const chunks = [];
    // A pool's first room is a slice of Node's small-buffer pool (no slab),
    // its first slab 64 KiB (its own recycler): the first read fills the
    // room, the second that slab; the nine after it fill three slabs of SLAB bytes.
    for (let i = 0; i < 11; i++) {
      const room = pool.space(64 * 1024);
      room.buffer.fill(i, room.offset, room.offset + room.length);
      chunks.push(pool.take(room.length));
    }
    assert.ok(chunks[0].length < 4096, `a first room of ${chunks[0].length} bytes`);
    assert.equal(chunks[1].buffer.byteLength, 64 * 1024);
    assert.equal(chunks[2].buffer.byteLength, SLAB);
    const kept = chunks[2];
    chunks.length = 0;
    await minorGc();
    assert.ok(cachedSlabs(SLAB) >= 1, 'dropped slabs were collected into the cache');
    const cached = cachedSlabs(SLAB);
    const room = pool.space(64 * 1024); // a slab from the cache (re-arms the idle check)
    room.buffer.fill(255);
    assert.equal(cachedSlabs(SLAB), cached - 1);
    assert.ok(kept.every((b) => b === 2), 'the slab of a kept chunk is never handed out again');
    await new Promise((r) => setTimeout(r, 4500));
    assert.equal(cachedSlabs(SLAB), 0, 'freed after 2 s without a take');
  });
});
