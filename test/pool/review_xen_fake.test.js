'use strict';
// Review finding on the xen transport (fake host, as test/xen-fake/pool.test.js):
// a pool both sides agreed on, whose queues cannot open on our side, must
// fail the connection. Going on without it (as before) left the peer
// sending payloads by reference into a pool nobody reads: they were lost
// from the stream without any error. And the regions handed to the link
// that failed were never freed (grants and a mapping held for good).
const assert = require('node:assert');
const path = require('node:path');
const { listen, connect, until, setup, NOTHING_HELD, root } = require('../xen-fake/helpers');
const { listenPath } = require(path.join(root, 'transports', 'xen', 'transport.js'));
const { poolGrantsHeld } = require(path.join(root, 'transports', 'xen', 'xen_pool.js'));
const { poolNative } = require(path.join(root, 'pool', 'native_pool.js'));

describe('pool: review findings on xen (fake host)', function () {
  this.timeout(20000);
  let env;
  beforeEach(() => (env = setup()));
  afterEach(() => env.host.close());

  for (const [side, mapperDomid] of [['client', 5], ['server', 0]]) {
  it(`a ${side} whose mapping of the peer's pool is unusable fails the connection instead of dropping the peer's payloads; nothing is held`, async () => {
    const { host } = env;
    const mapPool = host.gntMapPool;
    // That side's mapping of the peer's region comes back unusable: its
    // pages are dropped (the fake host still counts it until its close()).
    host.gntMapPool = function (mapper, granter, refs) {
      const m = mapPool.call(this, mapper, granter, refs);
      if (mapper === mapperDomid) poolNative.PoolMapping.prototype.close.call(m);
      return m;
    };
    const l = await listen(env.t0, { port: 'p' });
    let c = null;
    try {
      c = await connect(env.t5, { port: 'p', domid: 0 });
    } catch (err) {
      assert.ok(err instanceof Error);
    }
    if (c) {
      const s = await l.nextLink();
      const [mine, theirs] = side === 'client' ? [c, s] : [s, c];
      const lost = theirs.pool && theirs.pool.sender && (mine.pool === null || mine.pool.receiver === null);
      c.release();
      s.release();
      l.close();
      assert.fail(lost ? 'connected without the pool the peer sends into: its payloads would be lost' : 'connected');
    }
    l.close();
    await until(() => !host.xs.get(listenPath(0, 'p')), 3000, 'listener node removed');
    await until(() => host.held().grants === 0 && host.held().mappings === 0, 3000, `everything freed: ${JSON.stringify(host.held())}`);
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
    assert.strictEqual(poolGrantsHeld(env.d5), 0);
    assert.strictEqual(poolGrantsHeld(env.d0), 0);
  });
  }
});
