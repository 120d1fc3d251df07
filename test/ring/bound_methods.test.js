'use strict';
// native.bindRingMethods: the per-message endpoint methods become own
// functions bound to one instance (no napi_unwrap per call), once a
// VchanState has seen BIND_AFTER_PASSES passes of its reader or writer (a
// short connection never pays for binding). They must move the same bytes,
// keep their endpoint alive, leave anything but an endpoint (a fake) alone,
// and a spy already in place alone.
const assert = require('node:assert/strict');
const { native } = require('../../dist/native');
const { VchanState, BIND_AFTER_PASSES } = require('../../dist/ring/vchan_state');
const { ringPair } = require('./pair');

const HOT = ['read', 'write', 'waitData', 'service'];

/** A VchanState on `ep` past the passes after which it binds. */
function boundState(ep) {
  const state = new VchanState(ep, true);
  for (let i = 0; i < BIND_AFTER_PASSES; i++) state.used();
  return state;
}

describe('ring: bound endpoint methods', function () {
  it('a VchanState binds read, write, waitData and service to its endpoint after its passes; bytes move as through the prototype', function () {
    const pair = ringPair();
    const proto = native.RingEndpoint.prototype;
    const early = new VchanState(pair.client, true);
    for (let i = 1; i < BIND_AFTER_PASSES; i++) early.used();
    for (const k of HOT) assert.equal(Object.hasOwn(pair.client, k), false, `${k} bound before ${BIND_AFTER_PASSES} passes`);
    early.used();
    const client = early;
    const server = boundState(pair.server);
    for (const ep of [pair.client, pair.server]) {
      for (const k of HOT) {
        assert.ok(Object.hasOwn(ep, k), `${k} is an own property`);
        assert.notEqual(ep[k], proto[k], `${k} is not the prototype method`);
      }
    }
    assert.notEqual(pair.client.read, pair.server.read, 'one function per endpoint');
    assert.equal(pair.client.write(Buffer.from('hello')), 5);
    assert.equal(server.readable, 0, 'the server learns of it through its own calls');
    assert.equal(pair.server.waitData(0), 5);
    assert.equal(server.readable, 5, 'the bound call fills the state array');
    const out = Buffer.alloc(8);
    assert.equal(pair.server.read(out, 1, 7), 5);
    assert.equal(out.subarray(1, 6).toString(), 'hello');
    assert.equal(pair.server.service(), 0);
    assert.equal(client.writable, 4096 - 5, 'as of the client write');
    pair.close();
    assert.throws(() => pair.server.read(out, 0, 1), { code: 'ERR_SOCKET_CLOSED' });
    assert.throws(() => pair.client.write(out), { code: 'ERR_SOCKET_CLOSED' });
  });

  it('argument errors are the prototype methods\' own', function () {
    const pair = ringPair();
    boundState(pair.server);
    assert.throws(() => pair.server.read('x', 0, 1), { name: 'TypeError' });
    assert.throws(() => pair.server.waitData(-1), { name: 'RangeError' });
    assert.throws(() => pair.server.write([1]), { name: 'TypeError' });
    pair.close();
  });

  it('a bound function keeps its endpoint alive after every other reference is gone', async function () {
    if (typeof gc !== 'function') this.skip(); // reason: needs node --expose-gc (npm test sets it in .mocharc.json; a run without it cannot collect on demand)
    const collect = async () => {
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setImmediate(r)); // a WeakRef holds its target until the job ends
        gc();
      }
    };
    // Only the bound `read` (and a WeakRef) reach the server endpoint.
    const make = () => {
      const pair = ringPair();
      boundState(pair.server);
      return { read: pair.server.read, weak: new WeakRef(pair.server), client: pair.client };
    };
    let { read, weak, client } = make();
    await collect();
    assert.ok(weak.deref(), 'the endpoint behind the function was not collected');
    assert.equal(client.write(Buffer.from('abc')), 3);
    const out = Buffer.alloc(3);
    assert.equal(read(out, 0, 3), 3);
    assert.equal(out.toString(), 'abc');
    // Control: once the function goes too, so does the endpoint (the check above can fail).
    read = null;
    client = null;
    await collect();
    assert.equal(weak.deref(), undefined);
  });

  it('leaves anything but a RingEndpoint alone (a fake endpoint), and keeps a spy already in place', function () {
    const pair = ringPair();
    const fd = native.memfdCreate('not-an-endpoint', 4096);
    const mapping = new native.SharedMapping(fd, 4096, true);
    require('node:fs').closeSync(fd);
    for (const bad of [undefined, null, 1, {}, mapping, Object.create(native.RingEndpoint.prototype)]) {
      assert.equal(native.bindRingMethods(bad), false);
    }
    assert.equal(Object.hasOwn(mapping, 'read'), false);
    let calls = 0;
    const real = pair.server.read;
    Object.defineProperty(pair.server, 'read', { value: (...a) => (calls++, real.apply(pair.server, a)), configurable: true });
    boundState(pair.server);
    pair.server.read(Buffer.alloc(1), 0, 1);
    assert.equal(calls, 1, 'the spy stayed');
    assert.notEqual(pair.server.write, native.RingEndpoint.prototype.write, 'the others were bound');
    mapping.unmap();
    pair.close();
  });
});
