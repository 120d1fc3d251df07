'use strict';
// Bad input gets a clear, coded error; never a crash or a hang.
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { closed } = require('../helpers/fixtures');
const xenring = require('../..');

describe('foundation: bad arguments', function () {
  it('rejects bad ports, ring sizes and transports synchronously', function () {
    assert.throws(() => xenring.connect({ port: -1 }), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' });
    assert.throws(() => xenring.connect({ port: 65536 }), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' });
    assert.throws(() => xenring.connect({ port: 'no/slash' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => xenring.connect({ port: {} }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xenring.connect({}), { name: 'TypeError', code: 'ERR_MISSING_ARGS' });
    assert.throws(() => xenring.connect(), { name: 'TypeError', code: 'ERR_MISSING_ARGS' });
    assert.throws(() => xenring.connect({ port: 1, ringSize: 3000 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xenring.connect({ port: 1, ringSize: 1 << 30 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xenring.connect({ port: 1, ringSize: '4096' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xenring.connect({ port: 1, transport: 'carrier-pigeon' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
    });
    assert.throws(() => xenring.connect({ port: 1, spinMicros: -5 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xenring.createServer().listen({ port: 1.5 }), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' });
    assert.throws(() => xenring.createServer().listen({ port: 0, ringSize: 100 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new xenring.Socket().setTimeout('1'), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new xenring.Socket().setTimeout(-1), { code: 'ERR_OUT_OF_RANGE' });
  });

  it('connecting to a port nobody listens on fails with ECONNREFUSED, then close(true)', async function () {
    const socket = xenring.connect({ port: 'nobody-here' });
    const events = [];
    socket.on('connect', () => events.push('connect'));
    socket.on('error', (e) => events.push(`error ${e.code} ${e.syscall}`));
    const hadError = await closed(socket);
    assert.deepEqual(events, ['error ECONNREFUSED connect']);
    assert.equal(hadError, true);
  });

  it('write() of a non-buffer throws ERR_INVALID_ARG_TYPE', function () {
    const s = new xenring.Socket();
    assert.throws(() => s.write(1337), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    s.destroy();
  });

  it('listen on a port already taken emits EADDRINUSE', async function () {
    const a = xenring.createServer().listen({ port: 'taken-port' });
    await once(a, 'listening');
    const b = xenring.createServer().listen({ port: 'taken-port' });
    const [err] = await once(b, 'error');
    assert.equal(err.code, 'EADDRINUSE');
    a.close();
  });
});
