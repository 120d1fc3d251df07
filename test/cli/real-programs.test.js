'use strict';
// Real programs through `xenring proxy` (tcp -> ring -> tcp), no mocks:
// Debian's redis-server under redis-benchmark (a C client), PostgreSQL under
// pgbench. A few seconds of load each; the comparison with direct TCP is
// `npm run bench -- --real`, not a test.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const net = require('node:net');
require('../helpers/fixtures');
const real = require('../../bench/real');
const { frontedServer } = require('../helpers/fronted_server');

/** SET a 1 MiB random value and GET it back over RESP through `port`; resolves true if it came back intact. */
function redisRoundTrip(port) {
  const value = crypto.randomBytes(1 << 20);
  const bulk = (b) => Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);
  const cmd = (...args) => Buffer.concat([Buffer.from(`*${args.length}\r\n`), ...args.map((a) => bulk(Buffer.from(a)))]);
  const expected = Buffer.concat([Buffer.from('+OK\r\n'), bulk(value)]);
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const got = [];
    let n = 0;
    s.on('data', (d) => {
      got.push(d);
      n += d.length;
      if (n >= expected.length) {
        s.end();
        resolve(Buffer.concat(got).equals(expected));
      }
    });
    s.on('error', reject);
    s.write(Buffer.concat([cmd('SET', 'xenring-big', value), cmd('GET', 'xenring-big')]));
  });
}

/** For the enclosing describe: `program` behind a tcp -> ring -> tcp proxy chain (ctx.front). */
const proxiedServer = (program, start) => frontedServer(program, start, real.startProxyChain);

describe('real programs through xenring proxy', function () {
  this.timeout(120000);

  describe('redis-server driven by redis-benchmark', function () {
    const ctx = proxiedServer('redis', real.startRedis);

    it('SET and GET, 20 clients: every request answered, no errors', async function () {
      const rows = await real.redisBenchmark(ctx.front.port, { requests: 10000, clients: 20, tests: 'set,get' });
      assert.deepEqual(rows.map((r) => r.test), ['SET', 'GET']);
      for (const r of rows) assert.ok(r.rps > 0, `${r.test}: ${r.rps}`);
    });

    it('SET of 16 KiB values, then a 1 MiB value read back intact', async function () {
      const rows = await real.redisBenchmark(ctx.front.port, { requests: 2000, clients: 10, tests: 'set', size: 16384 });
      assert.ok(rows[0].rps > 0);
      assert.equal(await redisRoundTrip(ctx.front.port), true);
    });
  });

  describe('PostgreSQL driven by pgbench', function () {
    const ctx = proxiedServer('postgres', real.startPostgres);

    it('pgbench -i (COPY) and 2 s of TPC-B-like transactions, 4 clients, none failed', async function () {
      const r = await real.pgbench(ctx.front.port, { seconds: 2, clients: 4 });
      assert.equal(r.failed, 0, r.output);
      assert.ok(r.transactions > 0, r.output);
      assert.ok(r.tps > 0, r.output);
    });
  });
});
