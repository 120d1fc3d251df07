'use strict';
// onread beyond what net defines (net's own behaviour is in
// test/conformance/onread.test.js): accepted sockets of a Server created with
// onread, validation, and a buffer function that breaks its contract.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { forkPeer, listenOnce, closed } = require('../helpers/fixtures');
const { PatternChecker } = require('../helpers/pattern');
const xenring = require('../..');

describe('foundation: onread', function () {
  it('createServer({ onread }): an accepted socket reads 256 MiB into one 64 KiB buffer, every byte checked', async function () {
    const TOTAL = 256 << 20;
    const buffer = Buffer.alloc(64 * 1024);
    const check = new PatternChecker();
    let calls = 0;
    let foreign = 0;
    const { server, port, accepted } = await listenOnce({
      onread: {
        buffer,
        callback(n, buf) {
          calls++;
          if (buf !== buffer || !(this instanceof xenring.Socket)) foreign++;
          check.update(buf.subarray(0, n));
        },
      },
    });
    const peer = forkPeer('send', { port, total: TOTAL, chunk: 1 << 20 });
    const socket = await accepted;
    server.close();
    socket.on('data', () => assert.fail('no data events with onread'));
    await once(socket, 'end');
    assert.equal(check.badOffset, -1, `first bad byte at ${check.badOffset}`);
    assert.equal(check.received, TOTAL);
    assert.equal(foreign, 0);
    assert.ok(calls >= TOTAL / buffer.length);
    assert.equal(await closed(socket), false);
    assert.equal(socket.bytesRead, TOTAL);
    const [code] = await peer.exited;
    assert.equal(code, 0);
  });

  it('rejects a malformed onread synchronously', function () {
    const cb = () => {};
    assert.throws(() => new xenring.Socket({ onread: 5 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new xenring.Socket({ onread: { buffer: Buffer.alloc(8) } }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new xenring.Socket({ onread: { buffer: 'abc', callback: cb } }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new xenring.Socket({ onread: { buffer: Buffer.alloc(0), callback: cb } }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xenring.connect({ port: 1, onread: { buffer: new ArrayBuffer(8), callback: cb } }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xenring.createServer({ onread: { buffer: Buffer.alloc(8), callback: 1 } }).listen(0), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });

  it('a buffer function that returns no buffer fails the socket with ERR_INVALID_RETURN_VALUE (no crash, peer sees the close)', async function () {
    const { server, port, accepted } = await listenOnce();
    let gens = 0;
    let calls = 0;
    const socket = xenring.connect({
      port,
      onread: {
        buffer: () => (++gens === 1 ? Buffer.alloc(16) : 'not a buffer'),
        callback: () => {
          calls++;
        },
      },
    });
    const errors = [];
    socket.on('error', (e) => errors.push(e));
    const peerSide = await accepted;
    // The client fails with most of these bytes unread, which (as TCP's RST) the peer sees as ECONNRESET.
    const peerErrors = [];
    peerSide.on('error', (e) => peerErrors.push(e.code));
    server.close();
    peerSide.resume();
    peerSide.write(Buffer.alloc(1000, 1));
    assert.equal(await closed(socket), true);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'ERR_INVALID_RETURN_VALUE');
    assert.ok(errors[0] instanceof TypeError);
    assert.equal(calls, 1);
    await once(peerSide, 'close');
    assert.deepEqual(peerErrors, ['ECONNRESET']);
  });
});
