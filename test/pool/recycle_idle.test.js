'use strict';
// The slab cache's idle free (ring/read_pool trims a recycler to 0 after 2 s
// without a take) must hold for slabs collected AFTER the trim: in a quiet
// process the collector runs late, so the slabs still out when receiving
// stopped (tens of MiB) come back afterwards; cached then, they would stay
// for as long as the process stays quiet, the memory the trim is there to
// give back. The next take() caches again.
const assert = require('node:assert/strict');
const { returnedBuffers } = require('../../dist/returned_buffers');

const { collectAll: collect } = require('../helpers/collect');

describe('recycling review: the idle slab free', () => {
  it('frees slabs collected after trim(0) instead of caching them; the next take() caches again', async () => {
    const r = new returnedBuffers.SlabRecycler(256 * 1024, 8);
    let out = [];
    for (let i = 0; i < 6; i++) out.push(r.take().fill(i));
    // Receiving went quiet: the idle timer trims while the slabs are still out.
    assert.equal(r.trim(0), 0);
    out = null;
    await collect();
    assert.equal(r.cached, 0, 'slabs collected after the idle trim stayed cached');

    // Receiving again: collected slabs are kept for reuse as before.
    let again = [];
    for (let i = 0; i < 4; i++) again.push(r.take().fill(i));
    assert.equal(r.fresh, 10);
    again = null;
    await collect();
    assert.equal(r.cached, 4);
    const slab = r.take();
    assert.equal(r.reused, 1);
    assert.equal(slab.length, 256 * 1024);
  });

  it('trim(keep) keeps that many collected later, never more than the recycler was made for', async () => {
    const r = new returnedBuffers.SlabRecycler(64 * 1024, 3);
    let out = [];
    for (let i = 0; i < 6; i++) out.push(r.take());
    r.trim(2);
    out = null;
    await collect();
    assert.equal(r.cached, 2);
    let more = [];
    for (let i = 0; i < 6; i++) more.push(r.take());
    r.trim(5);
    more = null;
    await collect();
    assert.equal(r.cached, 3);
  });
});
