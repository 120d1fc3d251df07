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
    for (const flags of [0, 4, 5, 0xffffffff]) {
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

  it('REUSABLE: asked in a HELLO of any pool size (0 too), agreed only when asked', () => {
    const none = hs.buildHello({ order: 0, pid: 7, poolSize: 0, reusable: true });
    assert.equal(none.length, hs.HELLO_LAZY_SIZE);
    assert.deepEqual(hs.parseHello(none, 1), { order: 0, pid: 7, poolSize: 0, lazyRegions: false, reusable: true });
    const both = hs.buildHello({ order: 0, pid: 7, poolSize: MiB, lazyRegions: true, reusable: true });
    assert.deepEqual(hs.parseHello(both, 1), { order: 0, pid: 7, poolSize: MiB, lazyRegions: true, reusable: true });
    assert.throws(() => hs.parseHello(both, 2), eproto, 'a region fd with regions on demand');
    const agreed = hs.buildAccept({ leftOrder: 16, rightOrder: 16, pool: { toServer: 0, toClient: 0 }, reusable: true });
    assert.equal(agreed.length, hs.ACCEPT_LAZY_SIZE);
    assert.deepEqual(hs.parseAccept(agreed, 2, 0, 0, false, true), { leftOrder: 16, rightOrder: 16, pool: { toServer: 0, toClient: 0 }, lazyRegions: false, reusable: true });
    assert.throws(() => hs.parseAccept(agreed, 2, 0, 0, false, false), eproto, 'agreed, not asked');
    // Asked but not agreed: the reply still has the flags field (a server of this version), or none (no pool fields at all).
    const declined = hs.buildAccept({ leftOrder: 16, rightOrder: 16, pool: { toServer: MiB, toClient: MiB }, lazyRegions: true });
    assert.equal(hs.parseAccept(declined, 2, 0, MiB, true, true).reusable, undefined);
    // Reuse asked alone (no pool offered) and declined: the pool fields and no flags field (a flags field is never 0).
    const plain = hs.buildAccept({ leftOrder: 16, rightOrder: 16, pool: { toServer: 0, toClient: 0 } });
    assert.equal(plain.length, hs.ACCEPT_POOL_SIZE);
    assert.equal(hs.parseAccept(plain, 2, 0, 0, false, true).reusable, undefined);
    // Regions on demand asked, a pool agreed, the flag missing: regions would be in the reply.
    const eager = hs.buildAccept({ leftOrder: 16, rightOrder: 16, pool: { toServer: MiB, toClient: MiB }, reusable: true });
    assert.throws(() => hs.parseAccept(eager, 2, 0, MiB, true, true), eproto);
  });

  it('REOPEN (asking, or claimed) and REOPENED: 16 bytes, no fd, the kept orders', () => {
    const reopen = hs.buildReopen();
    assert.equal(reopen.length, hs.REOPEN_SIZE);
    assert.equal(hs.isReopen(reopen), true);
    assert.equal(hs.parseReopen(reopen, 0), false);
    assert.throws(() => hs.parseReopen(reopen, 1), eproto, 'an fd with it');
    const claimed = hs.buildReopen(true);
    assert.equal(claimed.length, hs.REOPEN_SIZE);
    assert.equal(hs.parseReopen(claimed, 0), true);
    assert.throws(() => hs.parseReopen(claimed, 1), eproto, 'a claimed one with an fd');
    for (const [at, v] of [[8, 2], [8, 0x80000001], [12, 1]]) {
      const bad = Buffer.from(reopen);
      bad.writeUInt32LE(v, at);
      assert.throws(() => hs.parseReopen(bad, 0), eproto, `field at ${at} = ${v}`);
    }
    assert.throws(() => hs.parseReopen(Buffer.concat([reopen, Buffer.alloc(4)]), 0), eproto, 'longer');
    const reply = hs.buildReopened(16, 14);
    assert.equal(hs.isReopen(reply), false);
    hs.parseReopened(reply, 0, 16, 14);
    assert.throws(() => hs.parseReopened(reply, 0, 16, 16), eproto, 'other orders');
    assert.throws(() => hs.parseReopened(reply, 1, 16, 14), eproto, 'an fd with it');
    assert.throws(() => hs.parseReopened(reopen, 0, 16, 14), eproto, 'a REOPEN for a reply');
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
