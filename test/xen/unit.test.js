'use strict';
// Xen transport tests that need no Xen: pure policy (orders, validation of
// peer data, ports) and the errors the bindings give on a host without
// /dev/xen. The device paths themselves are exercised in lab.test.js.
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const dist = path.join(__dirname, '..', '..', 'dist', 'transports', 'xen');
const { xen } = require(path.join(dist, 'native_xen.js'));
const { chooseOrders, validateOrders, parsePeerNumber, vchanServer, vchanClient, xenAvailable } = require(path.join(dist, 'handshake.js'));
const { xenTransport, normalizeXenPort } = require(path.join(dist, 'transport.js'));
const { parseDecimal } = require(path.join(dist, 'xenstore.js'));

const hasXen = fs.existsSync('/dev/xen/evtchn');

describe('xen: ring order policy (libxenvchan server_init rules)', () => {
  it('picks in-page rings like libxenvchan', () => {
    assert.deepStrictEqual(chooseOrders(1024, 2048, false), [10, 11]);
    assert.deepStrictEqual(chooseOrders(1, 1, false), [10, 11]);
    assert.deepStrictEqual(chooseOrders(2048, 1024, false), [11, 10]);
    assert.deepStrictEqual(chooseOrders(2048, 2048, false), [11, 12]);
    assert.deepStrictEqual(chooseOrders(1500, 65536, false), [11, 16]);
    assert.deepStrictEqual(chooseOrders(65536, 2000, false), [16, 11]);
    assert.deepStrictEqual(chooseOrders(4097, 65536, false), [13, 16]);
    assert.deepStrictEqual(chooseOrders(1 << 20, 1 << 20, false), [20, 20]);
  });
  it('keeps both rings out of page with the xenring extension', () => {
    assert.deepStrictEqual(chooseOrders(1024, 1024, true), [12, 12]);
    assert.deepStrictEqual(chooseOrders(65536, 8192, true), [16, 13]);
  });
  it('refuses sizes above 1 MiB or not integers', () => {
    assert.throws(() => chooseOrders((1 << 20) + 1, 1024, false), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => chooseOrders(-1, 1024, false), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => chooseOrders('1024', 1024, false), { code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('xen: validation of what the peer publishes', () => {
  it('accepts every order pair a libxenvchan server can produce', () => {
    for (const [l, r] of [[10, 11], [11, 10], [11, 12], [12, 11], [11, 20], [20, 11], [20, 20], [12, 12], [16, 16]]) {
      assert.strictEqual(typeof validateOrders(l, r, false), 'number');
    }
    assert.strictEqual(validateOrders(20, 20, false), 512);
    assert.strictEqual(validateOrders(11, 16, false), 16);
  });
  it('rejects orders out of [10, 20] and a shared in-page slot', () => {
    for (const [l, r] of [[0, 0], [9, 12], [12, 21], [10, 10], [11, 11], [65535, 12]]) {
      assert.throws(() => validateOrders(l, r, false), { code: 'EPROTO' }, `${l},${r}`);
    }
  });
  it('rejects a grant list that would run into an in-page ring', () => {
    // order 10 ring at 1024: 24 + 4 * 256 > 1024
    assert.throws(() => validateOrders(10, 20, false), { code: 'EPROTO' });
    // order 11 ring at 2048: 24 + 4 * 512 > 2048 cannot happen (max 256 grants with one in-page ring)
    assert.strictEqual(validateOrders(11, 20, false), 256);
  });
  it('with the extension, requires out-of-page rings and a free area at 3072', () => {
    assert.throws(() => validateOrders(11, 12, true), { code: 'EPROTO' });
    assert.strictEqual(validateOrders(20, 20, true), 512); // grants end at 2072 < 3072
  });
  it('accepts only plain decimal grant refs >= 8 and ports >= 1', () => {
    assert.strictEqual(parsePeerNumber('8', 'ring-ref'), 8);
    assert.strictEqual(parsePeerNumber('4294967295', 'ring-ref'), 4294967295);
    assert.strictEqual(parsePeerNumber('1', 'event-channel'), 1);
    for (const bad of ['0', '7', '007', '-1', '+9', '9 ', ' 9', '0x10', 'abc', '', '4294967296', '1e3', null]) {
      assert.throws(() => parsePeerNumber(bad, 'ring-ref'), { code: 'EPROTO' }, String(bad));
    }
    assert.throws(() => parsePeerNumber('0', 'event-channel'), { code: 'EPROTO' });
    assert.strictEqual(parseDecimal('12', 0, 20), 12);
    assert.strictEqual(parseDecimal('21', 0, 20), null);
  });
});

describe('xen: ports', () => {
  it('normalizes numbers, numeric strings and names', () => {
    assert.strictEqual(normalizeXenPort(7000, false), 7000);
    assert.strictEqual(normalizeXenPort('7000', false), 7000);
    assert.strictEqual(normalizeXenPort('echo_1-x', false), 'echo_1-x');
    assert.strictEqual(normalizeXenPort(0, true), 0);
    assert.throws(() => normalizeXenPort(0, false), { code: 'ERR_SOCKET_BAD_PORT' });
    assert.throws(() => normalizeXenPort(65536, true), { code: 'ERR_SOCKET_BAD_PORT' });
    assert.throws(() => normalizeXenPort('a.b', true), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => normalizeXenPort('a/b', true), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => normalizeXenPort(null, true), { code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('xen: native argument checks (before any device is opened)', () => {
  it('validates domids, refs and notify offsets', () => {
    assert.throws(() => xen.gntShare(-1, 1, true, -1, -1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xen.gntShare(0, 0, true, -1, -1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xen.gntShare(0, 514, true, -1, -1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xen.gntShare(0, 1, true, 4096, -1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xen.gntMap(0, 'x', true, -1, -1), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xen.gntMap(0, [], true, -1, -1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xen.gntMap(0, [-5], true, -1, -1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => xen.gntMap(0, [8], false, 20, -1), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => xen.evtchnBindInterdomain(0, 0, 0), { code: 'ERR_OUT_OF_RANGE' });
  });
});

describe('xen: on a host without Xen', function () {
  before(function () {
    if (hasXen) this.skip(); // reason: /dev/xen exists here; lab.test.js covers the devices
  });
  it('reports the devices unusable', () => {
    assert.strictEqual(xenAvailable(), false);
    assert.deepStrictEqual(xen.devicesAccessible(), { gntalloc: false, gntdev: false, evtchn: false, xenbus: false });
  });
  it('fails to open each device with ENOENT naming the node', () => {
    const cases = [
      ['/dev/xen/evtchn', () => xen.evtchnOpen()],
      ['/dev/xen/xenbus', () => xen.xenbusOpen()],
      ['/dev/xen/gntalloc', () => xen.gntShare(0, 1, true, -1, -1)],
      ['/dev/xen/gntdev', () => xen.gntMap(0, [8], true, -1, -1)],
    ];
    for (const [node, fn] of cases) {
      assert.throws(fn, (err) => {
        assert.strictEqual(err.code, 'ENOENT');
        assert.strictEqual(err.syscall, 'open');
        assert.strictEqual(err.path, node);
        assert.match(err.message, new RegExp(node));
        return true;
      });
    }
  });
  it('vchanServer / vchanClient reject with ENOENT', async () => {
    await assert.rejects(vchanServer({ domid: 1, path: 'data/vchan/1/x' }), { code: 'ENOENT' });
    await assert.rejects(vchanClient({ domid: 1, path: '/local/domain/1/data/vchan/0/x' }), { code: 'ENOENT' });
  });
  it('xenTransport.connect / listen reject with ENOENT', async () => {
    const signal = new AbortController().signal;
    await assert.rejects(xenTransport.connect({ port: 7000, domid: 0 }, signal), { code: 'ENOENT' });
    await assert.rejects(xenTransport.listen({ port: 7000 }, () => {}, signal), { code: 'ENOENT' });
  });
  it('validates options before touching devices', async () => {
    await assert.rejects(vchanServer({ domid: 'x', path: 'p' }), { code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(vchanServer({ domid: 1, path: 'a b' }), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(vchanClient({ domid: 1, path: '/local/domain/2/data/x' }), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(xenTransport.connect({ port: 'a.b', domid: 0 }, new AbortController().signal), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});
