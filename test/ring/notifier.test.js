'use strict';
// The notifier seam: the ring endpoint wakes its peer only through a Notifier
// made by a transport, and a failed wake-up is reported, not ignored.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { native } = require('../../dist/native');

function endpoints(order = 12) {
  const size = 4096 + 2 * (1 << order);
  const fd = native.memfdCreate('notifier-test', size);
  const m = new native.SharedMapping(fd, size, true);
  fs.closeSync(fd);
  const place = { control: m, controlOffset: 0, left: { mapping: m, offset: 4096, order }, right: { mapping: m, offset: 4096 + (1 << order), order } };
  const server = new native.RingEndpoint({ role: 'server', init: true, ext: true, ...place });
  const client = new native.RingEndpoint({ role: 'client', init: false, ext: true, ...place });
  return { m, server, client };
}

describe('ring: notifier seam', function () {
  it('an eventfd notifier pair wakes each side and counts the wake-ups', function () {
    const c2s = native.eventfdCreate();
    const s2c = native.eventfdCreate();
    const { m, server, client } = endpoints();
    const sn = native.eventfdNotifier(s2c, c2s);
    const cn = native.eventfdNotifier(c2s, s2c);
    assert.equal(sn.waitFd, c2s);
    server.setNotifier(sn);
    client.setNotifier(cn);
    assert.equal(server.ack(), 0, 'nothing pending yet');
    client.kick();
    client.kick();
    assert.equal(server.ack(), 2);
    assert.equal(server.ack(), 0);
    // The server asked for the client's first write at init: a write kicks.
    client.setLive(1);
    assert.equal(client.write(Buffer.from('hi')), 2);
    assert.equal(server.ack(), 1);
    // No wake-up was requested by the client: the server's write is silent.
    assert.equal(server.write(Buffer.from('yo')), 2);
    assert.equal(cn.ack(), 0);
    server.close();
    client.close();
    m.unmap();
    fs.closeSync(c2s);
    fs.closeSync(s2c);
  });

  it('setNotifier takes only a Notifier', function () {
    const { m, server, client } = endpoints();
    for (const bad of [undefined, 3, 'eventfd', {}, new native.Notifier()]) {
      assert.throws(() => server.setNotifier(bad), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    assert.throws(() => new native.Notifier().kick(), { code: 'ERR_INVALID_STATE' });
    server.close();
    client.close();
    m.unmap();
  });

  it('a failed kick throws instead of being ignored, in kick() and in write()', function () {
    const { m, server, client } = endpoints();
    // An fd that cannot be written: the wake-up fails with EBADF.
    const ro = fs.openSync('/dev/null', 'r');
    client.setNotifier(native.eventfdNotifier(ro, ro));
    assert.throws(() => client.kick(), { code: 'EBADF', syscall: 'kick' });
    // The server asked for the client's first write: the write's kick fails,
    // after the bytes are published.
    assert.throws(() => client.write(Buffer.from('abc')), { code: 'EBADF' });
    assert.equal(server.readable(), 3);
    server.close();
    client.close();
    m.unmap();
    fs.closeSync(ro);
  });

  it('a full eventfd counter is a pending wake-up, not an error', function () {
    const efd = native.eventfdCreate();
    const n = native.eventfdNotifier(efd, efd);
    // Preload the counter to its maximum (0xfffffffffffffffe).
    const max = Buffer.alloc(8);
    max.writeBigUInt64LE(0xfffffffffffffffen);
    fs.writeSync(efd, max);
    n.kick(); // EAGAIN inside: counted as success
    assert.ok(n.ack() > 0);
    fs.closeSync(efd);
  });
});
