'use strict';
// new RingEndpoint(server, init, ext, control, controlOffset, leftMapping,
// leftOffset, leftOrder, rightMapping, rightOffset, rightOrder): the form the
// local transport uses (no named property reads) must make the same
// endpoint as the options form and refuse the same bad placements.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { native } = require('../../dist/native');

function mapping(order = 12, writable = true) {
  const size = 4096 + 2 * (1 << order);
  const fd = native.memfdCreate('positional-test', size);
  const m = new native.SharedMapping(fd, size, writable);
  fs.closeSync(fd);
  return m;
}

describe('ring: RingEndpoint, positional arguments', () => {
  it('a positional server and an options-form client move bytes both ways', () => {
    const order = 12;
    const m = mapping(order);
    const server = new native.RingEndpoint(true, true, true, m, 0, m, 4096, order, m, 4096 + (1 << order), order);
    const client = new native.RingEndpoint({ role: 'client', init: false, ext: true, control: m, controlOffset: 0, left: { mapping: m, offset: 4096, order }, right: { mapping: m, offset: 4096 + (1 << order), order } });
    client.setLive(1);
    assert.deepEqual(server.info(), { role: 'server', rxSize: 1 << order, txSize: 1 << order, ext: true, closed: false });
    assert.equal(client.write(Buffer.from('to the server')), 13);
    const got = Buffer.alloc(64);
    assert.equal(server.read(got, 0, 64), 13);
    assert.equal(got.subarray(0, 13).toString(), 'to the server');
    assert.equal(server.write(Buffer.from('back')), 4);
    assert.equal(client.read(got, 0, 64), 4);
    assert.equal(got.subarray(0, 4).toString(), 'back');
    server.close();
    client.close();
    m.unmap();
  });

  it('refuses what the options form refuses', () => {
    const order = 12;
    const m = mapping(order);
    const ro = mapping(order, false);
    const ok = [true, true, true, m, 0, m, 4096, order, m, 4096 + (1 << order), order];
    const bad = (i, v) => Object.assign([...ok], { [i]: v });
    assert.throws(() => new native.RingEndpoint(...bad(3, {})), /options\.control must be a live, writable SharedMapping/);
    assert.throws(() => new native.RingEndpoint(...bad(3, ro)), /options\.control must be a live, writable SharedMapping/);
    assert.throws(() => new native.RingEndpoint(...bad(4, 8192 * 4)), /controlOffset/);
    assert.throws(() => new native.RingEndpoint(...bad(5, null)), /options\.left\.mapping must be a live SharedMapping/);
    assert.throws(() => new native.RingEndpoint(...bad(7, 9)), /options\.left\.order must be an integer/);
    assert.throws(() => new native.RingEndpoint(...bad(9, 1 << 20)), /options\.right does not fit inside its mapping/);
    assert.throws(() => new native.RingEndpoint(...bad(10, '12')), /options\.right\.offset and \.order must be numbers/);
    assert.throws(() => new native.RingEndpoint(...bad(6, 0)), /overlaps/);
    assert.throws(() => new native.RingEndpoint(false, true, true, m, 0, m, 4096, order, m, 4096 + (1 << order), order), /only the server initialises/);
    m.unmap();
    ro.unmap();
  });
});
