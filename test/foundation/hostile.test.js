'use strict';
// A peer that scribbles on the shared control page must never make us read
// or write outside the ring: operations either stay in bounds or throw EPROTO.
// The scribbles go through the memfd itself, as a hostile process would.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const crypto = require('node:crypto');
const { native } = require('../../dist/native');

function makePair(order) {
  const size = 4096 + 2 * (1 << order);
  const fd = native.memfdCreate('hostile-test', size);
  const a = new native.SharedMapping(fd, size, true);
  const b = new native.SharedMapping(fd, size, true);
  const rings = (m) => ({
    control: m,
    controlOffset: 0,
    left: { mapping: m, offset: 4096, order },
    right: { mapping: m, offset: 4096 + (1 << order), order },
  });
  const server = new native.RingEndpoint({ role: 'server', init: true, ext: true, ...rings(a) });
  const client = new native.RingEndpoint({ role: 'client', init: false, ext: true, ...rings(b) });
  return { fd, size, a, b, server, client };
}

describe('foundation: hostile peer', function () {
  it('random scribbles on indices and state bytes never escape the ring', function () {
    const order = 12;
    const { fd, a, b, server, client } = makePair(order);
    const out = Buffer.alloc(1 << 16);
    const data = crypto.randomBytes(1 << 14);
    let protoErrors = 0;
    for (let i = 0; i < 20000; i++) {
      // Scribble 1-8 random bytes somewhere in the 24-byte header or the extension.
      const at = i % 3 === 0 ? 3072 + (i % 8) : crypto.randomInt(0, 24);
      fs.writeSync(fd, crypto.randomBytes(1 + (i % 8)), 0, undefined, at);
      for (const ep of [server, client]) {
        for (const op of [
          () => ep.read(out, 0, out.length),
          () => ep.write(data.subarray(0, crypto.randomInt(1, data.length))),
          () => ep.write([data, data], 5),
          () => ep.readable(),
          () => ep.writable(),
          () => ep.requestData(),
          () => ep.requestSpace(),
          () => ep.peerState(),
          () => ep.waitData(2),
          () => ep.waitSpace(2, 1 + (i % 4096)),
        ]) {
          try {
            const n = op();
            if (typeof n === 'number') assert.ok(n >= 0 && n <= out.length + 2 * data.length, `bad count ${n}`);
          } catch (e) {
            assert.equal(e.code, 'EPROTO', e.message);
            protoErrors++;
          }
        }
      }
    }
    assert.ok(protoErrors > 0, 'corruption was never detected');
    server.close();
    client.close();
    a.unmap();
    b.unmap();
    fs.closeSync(fd);
  });

  it('orders and placements outside the mapping are refused', function () {
    const fd = native.memfdCreate('hostile-test', 4096 * 3);
    const m = new native.SharedMapping(fd, 4096 * 3, true);
    const base = { role: 'client', init: false, ext: false, control: m, controlOffset: 0 };
    assert.throws(
      () => new native.RingEndpoint({ ...base, left: { mapping: m, offset: 4096, order: 13 }, right: { mapping: m, offset: 8192, order: 12 } }),
      { code: 'ERR_OUT_OF_RANGE' },
    );
    assert.throws(
      () => new native.RingEndpoint({ ...base, left: { mapping: m, offset: 4096, order: 9 }, right: { mapping: m, offset: 8192, order: 12 } }),
      { code: 'ERR_OUT_OF_RANGE' },
    );
    assert.throws(
      () => new native.RingEndpoint({ ...base, left: { mapping: m, offset: 4096, order: 12 }, right: { mapping: m, offset: 4096, order: 12 } }),
      { code: 'ERR_OUT_OF_RANGE' },
    );
    assert.throws(
      () => new native.RingEndpoint({ ...base, left: { mapping: m, offset: 0, order: 12 }, right: { mapping: m, offset: 8192, order: 12 } }),
      { code: 'ERR_OUT_OF_RANGE' },
    );
    assert.throws(() => new native.RingEndpoint({ ...base, left: {}, right: {} }), { name: 'TypeError' });
    // A mapping in use cannot be unmapped under the endpoint.
    const ep = new native.RingEndpoint({
      ...base,
      role: 'server',
      init: true,
      left: { mapping: m, offset: 4096, order: 12 },
      right: { mapping: m, offset: 8192, order: 12 },
    });
    assert.throws(() => m.unmap(), { code: 'ERR_INVALID_STATE' });
    ep.close();
    m.unmap();
    assert.throws(() => ep.readable(), { code: 'ERR_SOCKET_CLOSED' });
    fs.closeSync(fd);
  });

  it('a received fd that is not a sealed memfd of the agreed size is refused', function () {
    const fd = fs.openSync('/dev/zero', 'r');
    assert.throws(() => native.memfdCheck(fd, 8192), { code: 'EPROTO' });
    assert.throws(() => native.eventfdCheck(fd), { code: 'EPROTO' });
    fs.closeSync(fd);
    const mfd = native.memfdCreate('x', 8192);
    assert.throws(() => native.memfdCheck(mfd, 4096), { code: 'EPROTO' });
    native.memfdCheck(mfd, 8192);
    fs.closeSync(mfd);
  });
});
