'use strict';
// Node clients over xenring sockets, no mocks: the servers run in another
// process (a forked `bench/real.js --serve KIND`, or PostgreSQL / redis-server
// behind `xenring proxy --listen ring:NAME`), the clients here; every answer
// is checked byte for byte (the load helpers throw on a wrong one). Speed is
// compared by `npm run bench -- --real`, not here.
const assert = require('node:assert/strict');
require('../helpers/fixtures');
const xenring = require('../..');
const real = require('../../bench/real');
const { frontedServer } = require('../helpers/fronted_server');

/** For the enclosing describe: a forked Node server of `kind`; ctx.server once started. */
function nodeServer(kind) {
  const ctx = { server: null };
  before(async function () {
    ctx.server = await real.startNodeServer(kind);
  });
  after(async function () {
    if (ctx.server) await ctx.server.stop();
  });
  return ctx;
}

/** For the enclosing describe: `program` with a ring bridge in front (ctx.front.ring: its ring port). */
const bridgedServer = (program, start) => frontedServer(program, start, real.startRingBridge);

/**
 * Three rounds on one bench session (`open()`), with the server's id of the
 * connection (`probe(session)`) the same before and after, and another on a
 * second session (so the probe does tell connections apart).
 */
async function assertOneConnection(open, probe, options) {
  const session = await open();
  let id;
  try {
    id = await probe(session);
    for (let i = 0; i < 3; i++) await session.run(options);
    assert.equal(await probe(session), id, 'the rounds of a session share one connection');
  } finally {
    await session.close();
  }
  const other = await open();
  try {
    assert.notEqual(await probe(other), id, 'a new connection has another id');
  } finally {
    await other.close();
  }
}

describe('Node clients over xenring sockets', function () {
  this.timeout(120000);

  describe('new Socket({ port }): the port connect() uses, whatever it is given', function () {
    it("connect(5432, 'localhost') reaches the named ring port; a bad preset port fails as connect() would", async function () {
      const { once } = require('node:events');
      const name = `preset-${process.pid}`;
      const server = xenring.createServer((s) => s.end('hello'));
      await new Promise((resolve) => server.listen(name, resolve));
      try {
        const socket = new xenring.Socket({ port: name }).connect(5432, 'localhost');
        const chunks = [];
        socket.on('data', (d) => chunks.push(d));
        await once(socket, 'connect');
        assert.equal(socket.remotePort, name);
        await once(socket, 'end');
        assert.equal(Buffer.concat(chunks).toString(), 'hello');
        assert.throws(() => new xenring.Socket({ port: 70000 }).connect(5432), { code: 'ERR_SOCKET_BAD_PORT' });
      } finally {
        server.close();
      }
    });
  });

  describe('http server (forked child)', function () {
    const ctx = nodeServer('http');

    it('undici Client with a connect function: 1,000 pipelined GETs, every body intact', async function () {
      const r = await real.undiciRequests(ctx.server.ring, { requests: 1000, size: 4096 });
      assert.ok(r.rps > 0);
    });

    it("the bench's warm undici session: 3 rounds of 500 GETs on one connection (its run fails if undici dialed again)", async function () {
      const session = await real.undiciSession(ctx.server.ring);
      try {
        for (let i = 0; i < 3; i++) assert.ok((await session.run({ requests: 500, size: 4096 })).rps > 0);
      } finally {
        await session.close();
      }
    });

    it('autocannon (10 connections, 2 s) through `xenring proxy` tcp -> ring: no errors, all 2xx', async function () {
      const bridge = await real.startTcpBridge(ctx.server.ring);
      try {
        const r = await real.autocannonLoad(bridge.port, { seconds: 2, connections: 10 });
        assert.ok(r.ok > 0);
        assert.equal(r.bytes >= r.ok * 1024, true, `${r.bytes} bytes for ${r.ok} responses`);
      } finally {
        await bridge.stop();
      }
    });
  });

  describe('http2 server (forked child)', function () {
    const ctx = nodeServer('h2');

    it('http2.connect with createConnection: 200 concurrent streams of 64 KiB, every body intact', async function () {
      const r = await real.h2Streams(ctx.server.ring, { streams: 200, size: 64 << 10 });
      assert.ok(r.mibps > 0);
    });

    it("with a 16 MiB receive window (README's http2 advice): 200 streams of 256 KiB intact, the window in force", async function () {
      const r = await real.h2Streams(ctx.server.ring, { streams: 200, size: 256 << 10, window: 16 << 20 });
      assert.equal(r.windowSize, 16 << 20);
      assert.ok(r.mibps > 0);
    });

    it("the bench's control, TCP inside a plain JS Duplex on both sides (Node's stream wrapper, no ring): 200 streams of 64 KiB intact", async function () {
      // bench/real.js compares the ring's http2 rate with this path; a control that lost or reordered bytes would make that comparison worthless.
      const r = await real.h2Streams({ wrapped: ctx.server.wrapped }, { streams: 200, size: 64 << 10 });
      assert.ok(r.mibps > 0);
    });
  });

  describe('ws server (forked child)', function () {
    const ctx = nodeServer('ws');

    it('WebSocket with createConnection: 10,000 messages echoed in order, then a 16 MiB message intact', async function () {
      const r = await real.wsEcho(ctx.server.ring, { messages: 10000, big: 16 << 20 });
      assert.ok(r.msgps > 0 && r.bigMibps > 0);
    });
  });

  describe('PostgreSQL through a ring bridge', function () {
    const ctx = bridgedServer('postgres', real.startPostgres);

    it("pg with stream: () => new xenring.Socket({ port: NAME }) (pg connects with its own integer port): 1,000 queries and an 8 MiB bytea", async function () {
      assert.match(ctx.front.ring, /^[a-z]/, 'the bridge listens on a named ring port');
      const r = await real.pgQueries(ctx.front.ring, { queries: 1000, bytea: 8 << 20 });
      assert.ok(r.qps > 0 && r.byteaMibps > 0);
    });

    it("the bench's warm pg session runs every round on one connection (same backend process), every answer intact", async function () {
      // bench/real.js labels these rounds "one warm connection, reused": a session that reconnected would measure warm-up again.
      await assertOneConnection(() => real.pgSession(ctx.front.ring), (s) => s.backendPid(), { queries: 200, bytea: 1 << 20 });
    });

    it("pg with stream: () => new xenring.FallbackSocket({ port: NAME }): the ring while the bridge listens, else TCP to pg's own host and port; queries intact both ways", async function () {
      const pg = require('pg');
      /** One pg session through a FallbackSocket on ring port `ring`: its transport and a query's answer. */
      const session = async (ring) => {
        let socket = null;
        const stream = () => (socket = new xenring.FallbackSocket({ port: ring, fallback: { timeout: 2000 } }));
        const client = new pg.Client({ user: 'postgres', database: 'postgres', host: '127.0.0.1', port: ctx.server.port, stream });
        await client.connect();
        try {
          const { rows } = await client.query("SELECT repeat('x', 100000) AS s, 7 AS n");
          assert.equal(rows[0].s, 'x'.repeat(100000));
          assert.equal(rows[0].n, 7);
          return socket.transport;
        } finally {
          await client.end();
        }
      };
      assert.equal(await session(ctx.front.ring), 'local');
      // Nothing listens on this ring port: pg's connect(port, host) is where TCP goes (PostgreSQL itself).
      assert.equal(await session(`${ctx.front.ring}-nobody`), 'tcp');
    });

    it('a pg error arrives as pg reports it over TCP (syntax error, the connection stays usable)', async function () {
      const pg = require('pg');
      const client = new pg.Client({ user: 'postgres', database: 'postgres', stream: () => new xenring.Socket({ port: ctx.front.ring }) });
      await client.connect();
      try {
        await assert.rejects(client.query('SELEC 1'), (err) => err.code === '42601');
        assert.deepEqual((await client.query('SELECT 2 AS n')).rows, [{ n: 2 }]);
      } finally {
        await client.end();
      }
    });
  });

  describe('redis-server through a ring bridge', function () {
    const ctx = bridgedServer('redis', real.startRedis);

    it('ioredis with a custom Connector: 2,000 SET/GET pairs and a 1 MiB value', async function () {
      const r = await real.ioredisOps(ctx.front.ring, { ops: 2000, big: 1 << 20 });
      assert.ok(r.opsps > 0 && r.bigMibps > 0);
    });

    it("the bench's warm ioredis session runs every round on one connection (same CLIENT ID), every answer intact", async function () {
      await assertOneConnection(() => real.ioredisSession(ctx.front.ring), (s) => s.clientId(), { ops: 500, big: 64 << 10, bigTimes: 2 });
    });
  });
});
