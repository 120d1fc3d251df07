'use strict';
// The local handshake's messages with regions on demand (lib/transports/
// local_handshake.ts): what a HELLO, an ACCEPT and a REGION carry, and what
// a parser refuses (EPROTO), without I/O. The end-to-end side is in
// test/pool/hostile_socket.test.js and test/pool/reuse.test.js.
const assert = require('node:assert/strict');
const hs = require('../../dist/transports/local_handshake');

const MiB = 1 << 20;
const eproto = { code: 'EPROTO' };

describe('local handshake: regions on demand', function () {
  it('a HELLO with the flag carries no region fd; without it (an older client) one with a pool', () => {
    const lazy = hs.buildHello({ order: 0, pid: 42, poolSize: 64 * MiB, lazyRegions: true });
    assert.equal(lazy.length, hs.HELLO_LAZY_SIZE);
    assert.deepEqual(hs.parseHello(lazy, 1), { order: 0, pid: 42, poolSize: 64 * MiB, lazyRegions: true });
    assert.throws(() => hs.parseHello(lazy, 2), eproto, 'a region fd with the flag');
    const eager = hs.buildHello({ order: 0, pid: 42, poolSize: 64 * MiB });
    assert.equal(eager.length, hs.HELLO_POOL_SIZE);
    assert.equal(hs.parseHello(eager, 2).lazyRegions, false);
    assert.throws(() => hs.parseHello(eager, 1), eproto);
  });

  it('refuses unknown flags', () => {
    for (const flags of [0, 2, 3, 0xffffffff]) {
      const msg = hs.buildHello({ order: 0, pid: 1, poolSize: MiB, lazyRegions: true });
      msg.writeUInt32LE(flags, hs.HELLO_POOL_SIZE);
      assert.throws(() => hs.parseHello(msg, 1), eproto, `hello flags ${flags}`);
      const reply = hs.buildAccept({ leftOrder: 16, rightOrder: 16, pool: { toServer: MiB, toClient: MiB }, lazyRegions: true });
      reply.writeUInt32LE(flags, hs.ACCEPT_POOL_SIZE);
      assert.throws(() => hs.parseAccept(reply, 2, 0, MiB, true), eproto, `accept flags ${flags}`);
    }
  });

  it('the ACCEPT to it: the flag and two fds; an ACCEPT with regions in it is refused, as is the flag unasked', () => {
    const reply = hs.buildAccept({ leftOrder: 16, rightOrder: 16, pool: { toServer: MiB, toClient: MiB }, lazyRegions: true });
    assert.equal(reply.length, hs.ACCEPT_LAZY_SIZE);
    assert.equal(hs.acceptFds({ leftOrder: 16, rightOrder: 16, pool: { toServer: MiB, toClient: MiB }, lazyRegions: true }), 2);
    assert.deepEqual(hs.parseAccept(reply, 2, 0, MiB, true), { leftOrder: 16, rightOrder: 16, pool: { toServer: MiB, toClient: MiB }, lazyRegions: true });
    assert.throws(() => hs.parseAccept(reply, 3, 0, MiB, true), eproto);
    assert.throws(() => hs.parseAccept(reply, 2, 0, MiB, false), eproto, 'the flag, unasked');
    const eager = hs.buildAccept({ leftOrder: 16, rightOrder: 16, pool: { toServer: MiB, toClient: MiB } });
    assert.throws(() => hs.parseAccept(eager, 3, 0, MiB, true), eproto, 'regions in the handshake, regions on demand asked');
    // No pool agreed (an older server's 16-byte ACCEPT) is fine.
    const none = hs.buildAccept({ leftOrder: 16, rightOrder: 16 });
    assert.equal(hs.parseAccept(none, 2, 0, MiB, true).pool, null);
    // Never more than offered.
    const more = hs.buildAccept({ leftOrder: 16, rightOrder: 16, pool: { toServer: 2 * MiB, toClient: MiB }, lazyRegions: true });
    assert.throws(() => hs.parseAccept(more, 2, 0, MiB, true), eproto);
  });

  it('a REGION names exactly the agreed size and carries one fd', () => {
    const msg = hs.buildRegion(MiB);
    assert.equal(msg.length, hs.REGION_SIZE);
    hs.parseRegion(msg, 1, MiB, 'recvmsg');
    assert.throws(() => hs.parseRegion(msg, 1, 2 * MiB, 'recvmsg'), eproto, 'another size');
    assert.throws(() => hs.parseRegion(msg, 0, MiB, 'recvmsg'), eproto, 'no fd');
    assert.throws(() => hs.parseRegion(msg, 2, MiB, 'recvmsg'), eproto, 'two fds');
    assert.throws(() => hs.parseRegion(msg, 1, 0, 'recvmsg'), eproto, 'none agreed that way');
    const bad = Buffer.from(msg);
    bad.writeUInt32LE(7, 12);
    assert.throws(() => hs.parseRegion(bad, 1, MiB, 'recvmsg'), eproto, 'the reserved word');
    assert.throws(() => hs.parseRegion(Buffer.concat([msg, Buffer.alloc(4)]), 1, MiB, 'recvmsg'), eproto, 'longer');
    assert.throws(() => hs.parseRegion(hs.buildHello({ order: 0, pid: 1 }), 1, MiB, 'recvmsg'), eproto, 'another message');
    assert.throws(() => hs.buildRegion(0), RangeError);
  });
});
