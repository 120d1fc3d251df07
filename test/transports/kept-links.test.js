'use strict';
// Kept links (lib/transports/local_reuse.ts, issue 14) between real
// processes: a client's next connection to the same port goes through the
// socket, pipes and ring of its last one (REOPEN/REOPENED) instead of a new
// rendezvous connection. Every stream is checked byte for byte; what is
// kept is counted (reuseStats, fds) and must be gone after the idle time;
// a server that closes, dies, holds its side open, or answers REOPEN badly
// (test/hostile/peer.py "reuse-server"), and a client that abuses its kept
// socket ("reuse-client"), are each met with a fresh connection, a clean
// error, or a freed link, never a hang or a leak.
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork, spawn } = require('node:child_process');
const { once } = require('node:events');
const xenring = require('../..');
const reuse = require('../../dist/transports/local_reuse');
const { countFds, children } = require('../helpers/fixtures');
const { slice } = require('../helpers/pattern');
const { hostilePeer } = require('../hostile/helpers');

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
let serial = 0;

/** Bounded: a connect or a peer that hangs fails here, not at mocha's timeout. */
function within(promise, ms, what) {
  let t;
  const late = new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(t));
}

/** The kept_server fixture in its own process, on `port` (a fresh named port by default). */
async function keptServer(port = `kept-${process.pid}-${serial++}`, env = process.env) {
  const child = fork(path.join(__dirname, 'fixtures', 'kept_server.js'), [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
  children.add(child);
  once(child, 'exit').then(() => children.delete(child));
  const [m] = await once(child, 'message');
  const ask = (msg, key) =>
    new Promise((resolve) => {
      const on = (r) => {
        if (r && r[key] !== undefined) {
          child.off('message', on);
          resolve(r[key]);
        }
      };
      child.on('message', on);
      child.send(msg);
    });
  return {
    child,
    port: m.port,
    stats: () => ask('stats', 'stats'),
    hold: (ms) => ask({ hold: ms }, 'held'),
    endsFirst: (on) => ask({ endsFirst: on }, 'endsFirst'),
    close: () => ask('close', 'closed'),
    stop: () => {
      if (child.connected) child.disconnect();
      return child.exitCode === null && child.signalCode === null ? once(child, 'exit') : Promise.resolve();
    },
  };
}

/**
 * One connection: writes `n` pattern bytes from stream position `seed`,
 * ends, and resolves on 'close' with { echoed (bytes equal), error code }.
 */
function echo(port, n, seed, options = {}) {
  const data = Buffer.from(slice(seed, n));
  return within(
    new Promise((resolve) => {
      const got = [];
      let code;
      const s = xenring.connect({ port, ...options }, () => s.end(data));
      s.on('data', (d) => got.push(Buffer.from(d)));
      s.on('error', (e) => (code = e.code));
      s.on('close', () => resolve({ echoed: Buffer.concat(got).equals(data), code }));
    }),
    20000,
    `echo on ${port}`,
  );
}

/**
 * One request: writes `n` pattern bytes and waits for the server's end (an
 * endsFirst server answers and ends: the client's end comes after, so the
 * server closes last). Resolves with { echoed, code }.
 */
function request(port, n, seed) {
  const data = Buffer.from(slice(seed, n));
  return within(
    new Promise((resolve) => {
      const got = [];
      let code;
      const s = xenring.connect({ port });
      s.write(data);
      s.on('data', (d) => got.push(Buffer.from(d)));
      s.on('error', (e) => (code = e.code));
      s.on('close', () => resolve({ echoed: Buffer.concat(got).equals(data), code }));
    }),
    20000,
    `request on ${port}`,
  );
}

const stats = () => ({ ...reuse.reuseStats });
/** Until the server has parked `n` links (its side of the connections before closed). */
async function parked(srv, n) {
  for (let i = 0; i < 200 && (await srv.stats()).parked < n; i++) await tick(10);
  assert.ok((await srv.stats()).parked >= n, `the server parked fewer than ${n} links`);
}
const delta = (before, key) => reuse.reuseStats[key] - before[key];

/**
 * After the client's idle time: it keeps no link and holds the fds it held
 * at `before`; the server's parked links went with the client's closes (at
 * once: not at their own expiry).
 */
async function expired(srv, before) {
  await tick(reuse.REUSE_CLIENT_IDLE_MS + 300);
  assert.equal(reuse.keptClientLinks(), 0);
  assert.equal(countFds(), before);
  for (let i = 0; i < 100 && (await srv.stats()).parked > 0; i++) await tick(10);
  assert.equal((await srv.stats()).parked, 0);
}

describe('transports: kept links (a reconnect reuses the last connection of the same process)', function () {
  this.timeout(60000);
  afterEach(() => reuse.dropKeptLinks());

  it('40 reconnects go through the kept link: every byte checked both ways, each REOPEN answered by the server', async () => {
    const srv = await keptServer();
    try {
      const s0 = stats();
      for (let i = 0; i < 40; i++) {
        // 100 KiB: round the ring many times, under the pool's copy threshold.
        assert.deepEqual(await echo(srv.port, 100 << 10, i * 7919), { echoed: true, code: undefined }, `connection ${i}`);
      }
      const reopened = delta(s0, 'reopened');
      // The first connection is made afresh; a reconnect may be too while
      // the server has not closed its side of the last one yet.
      assert.ok(reopened >= 30, `only ${reopened} of 40 reconnects reused a kept link`);
      assert.equal(delta(s0, 'afresh'), 0, 'a REOPEN went unanswered');
      const st = await srv.stats();
      assert.equal(st.connections, 40);
      assert.equal(st.answered, reopened, 'the server answered every REOPEN the client counted');
      assert.ok(reuse.keptClientLinks() <= reuse.REUSE_PER_PEER);
    } finally {
      await srv.stop();
    }
  });

  for (const last of ['client', 'server']) {
    it(`the ${last} closes last and prepares the ring: the next connect claims it and goes on without waiting (no REOPENED), bytes checked`, async () => {
      const srv = await keptServer();
      try {
        if (last === 'server') await srv.endsFirst(true);
        const run = (i) => (last === 'server' ? request(srv.port, 3000 + i, i * 31) : echo(srv.port, 3000 + i, i * 31));
        assert.deepEqual(await run(0), { echoed: true, code: undefined });
        const s0 = stats();
        const p0 = (await srv.stats()).prepared;
        for (let i = 1; i <= 30; i++) assert.deepEqual(await run(i), { echoed: true, code: undefined }, `connection ${i}`);
        const claimed = delta(s0, 'claimed');
        // A reconnect may still ask (REOPEN) when the last connection's two
        // sides closed at once and neither saw the other gone.
        assert.ok(claimed >= 20, `only ${claimed} of 30 reconnects claimed a prepared ring`);
        // By whichever side closed last: the one that ends last, unless the
        // other's close took longer (both happen, in either order).
        const byServer = (await srv.stats()).prepared - p0;
        const byClient = delta(s0, 'prepared');
        assert.ok(byClient + byServer >= claimed, `prepared ${byClient} + ${byServer} rings, ${claimed} were claimed`);
        const st = await srv.stats();
        assert.equal(st.connections, 31);
        assert.deepEqual(st.errors, []);
      } finally {
        await srv.stop();
      }
    });
  }

  it('a client that reconnects every 2.5 s finds its link still kept each time (prepared, claimed), bytes checked', async () => {
    // A poll or a health check: without its kept link a connect waits for
    // the server process to answer (docs/benchmark.md, "A client that
    // connects every few seconds").
    const srv = await keptServer();
    try {
      assert.deepEqual(await echo(srv.port, 3000, 17), { echoed: true, code: undefined });
      const s0 = stats();
      for (let i = 1; i <= 3; i++) {
        await tick(2500);
        assert.equal(reuse.keptClientLinks(), 1, `the link was freed within ${i * 2.5} s`);
        assert.deepEqual(await echo(srv.port, 3000 + i, 17 * i), { echoed: true, code: undefined }, `connection ${i}`);
      }
      assert.equal(delta(s0, 'reopened'), 3, 'a reconnect after 2.5 s idle was made afresh');
      // Idle that long, the side that closed last has prepared the ring: each connect claimed it without waiting.
      assert.equal(delta(s0, 'claimed'), 3);
      assert.equal(delta(s0, 'afresh'), 0);
      const st = await srv.stats();
      assert.equal(st.connections, 4);
      assert.deepEqual(st.errors, []);
    } finally {
      await srv.stop();
    }
  });

  it('8 connection loops at once from one process (more than the 2 links kept per port): 400 connections, every byte checked, nothing left after expiry', async () => {
    const srv = await keptServer();
    try {
      const before = countFds();
      const s0 = stats();
      const results = await Promise.all(
        Array.from({ length: 8 }, async (_, loop) => {
          const out = [];
          for (let i = 0; i < 50; i++) out.push(await echo(srv.port, 4000 + loop * 100 + i, loop * 1000 + i));
          return out;
        }),
      );
      for (const r of results.flat()) assert.deepEqual(r, { echoed: true, code: undefined });
      assert.ok(delta(s0, 'reopened') > 0, 'no connection went through a kept link');
      assert.ok(reuse.keptClientLinks() <= reuse.REUSE_PER_PEER);
      const st = await srv.stats();
      assert.equal(st.connections, 400);
      assert.deepEqual(st.errors, []);
      await expired(srv, before);
    } finally {
      await srv.stop();
    }
  });

  it('a connection that sent by reference (a pool region crossed) is not kept: the next one is made afresh', async () => {
    const srv = await keptServer();
    try {
      const s0 = stats();
      // 1 MiB in a buffer of the pool's (socket.allocBuffer): by reference, a region made and passed.
      const byRef = await within(
        new Promise((resolve) => {
          const want = Buffer.from(slice(3, 1 << 20));
          const got = [];
          const s = xenring.connect({ port: srv.port }, () => {
            const buf = s.allocBuffer(want.length);
            buf.set(want);
            s.end(buf);
          });
          s.on('data', (d) => got.push(Buffer.from(d)));
          s.on('close', () => resolve({ echoed: Buffer.concat(got).equals(want), byRef: s.poolStats().sentByRef > 0 }));
        }),
        20000,
        'by reference',
      );
      assert.deepEqual(byRef, { echoed: true, byRef: true });
      assert.equal(reuse.keptClientLinks(), 0, 'a link whose pool made a region was kept');
      assert.deepEqual(await echo(srv.port, 1000, 5), { echoed: true, code: undefined });
      assert.equal(delta(s0, 'reopened'), 0);
      assert.equal(reuse.keptClientLinks(), 1, 'the small one is kept');
    } finally {
      await srv.stop();
    }
  });

  it('the server has not closed its side yet: the next connect does not wait for it (made afresh); a later one takes the link once it has', async () => {
    const srv = await keptServer();
    try {
      await srv.hold(400); // the server's loop is busy for 400 ms once it answered: the client's end waits unread
      assert.deepEqual(await echo(srv.port, 100, 1), { echoed: true, code: undefined });
      const s0 = stats();
      assert.deepEqual(await echo(srv.port, 100, 2), { echoed: true, code: undefined });
      assert.equal(delta(s0, 'afresh'), 0, 'a REOPEN was sent to a server still in the last connection');
      assert.equal(delta(s0, 'reopened'), 0);
      // The held connection closes on the server at 400 ms: then both links are there to reuse.
      for (let i = 0; i < 100 && (await srv.stats()).parked < 2; i++) await tick(20);
      assert.equal((await srv.stats()).parked, 2);
      assert.deepEqual(await echo(srv.port, 100, 3), { echoed: true, code: undefined });
      assert.equal(delta(s0, 'reopened'), 1);
    } finally {
      await srv.stop();
    }
  });

  it('the listener closed: its parked links go with it, the client drops its kept link, the next connect is refused', async () => {
    const srv = await keptServer();
    try {
      const before = countFds();
      assert.deepEqual(await echo(srv.port, 1000, 4), { echoed: true, code: undefined });
      assert.equal(reuse.keptClientLinks(), 1);
      await srv.close();
      assert.equal((await srv.stats()).parked, 0);
      for (let i = 0; i < 100 && reuse.keptClientLinks() > 0; i++) await tick(10); // the server's close, seen
      assert.equal(reuse.keptClientLinks(), 0);
      assert.equal(countFds(), before, 'fds of the kept link still open');
      assert.deepEqual(await echo(srv.port, 10, 5), { echoed: false, code: 'ECONNREFUSED' });
    } finally {
      await srv.stop();
    }
  });

  it('a REOPEN sent just as the listener closes: served (it came first), refused or reset; no hang, no fd left', async () => {
    const srv = await keptServer();
    try {
      const before = countFds();
      assert.deepEqual(await echo(srv.port, 1000, 6), { echoed: true, code: undefined });
      srv.child.send('close'); // not awaited: the REOPEN races the close
      // Served; refused; or, made afresh into the backlog of the closing
      // listener, reset (as a TCP connect racing a listener's close).
      const raced = await echo(srv.port, 10, 7);
      assert.ok(raced.echoed ? raced.code === undefined : ['ECONNREFUSED', 'ECONNRESET'].includes(raced.code), JSON.stringify(raced));
      // A message after 'close' on the same channel: once answered, the listener is closed (it
      // closes synchronously) and its parked links dropped; a connect that raced that, on the link
      // the raced one left, could still be reset.
      await srv.stats();
      assert.deepEqual(await echo(srv.port, 10, 8), { echoed: false, code: 'ECONNREFUSED' });
      for (let i = 0; i < 100 && reuse.keptClientLinks() > 0; i++) await tick(10);
      assert.equal(reuse.keptClientLinks(), 0);
      assert.equal(countFds(), before);
    } finally {
      await srv.stop();
    }
  });

  it('the server process killed: the kept link is dropped and a new server on the same port serves the next connect', async () => {
    const port = `kept-${process.pid}-${serial++}`;
    const first = await keptServer(port);
    assert.deepEqual(await echo(port, 1000, 8), { echoed: true, code: undefined });
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    const second = await keptServer(port);
    try {
      const s0 = stats();
      assert.deepEqual(await echo(port, 5000, 9), { echoed: true, code: undefined });
      assert.equal(delta(s0, 'reopened'), 0);
      assert.equal((await second.stats()).connections, 1);
    } finally {
      await second.stop();
    }
  });

  it('another ring size is another link: only a connect with the same asks takes it', async () => {
    const srv = await keptServer();
    try {
      assert.deepEqual(await echo(srv.port, 1000, 10), { echoed: true, code: undefined });
      await parked(srv, 1);
      const s0 = stats();
      assert.deepEqual(await echo(srv.port, 100000, 11, { ringSize: 16384 }), { echoed: true, code: undefined });
      assert.equal(delta(s0, 'reopened'), 0);
      await parked(srv, 2);
      assert.deepEqual(await echo(srv.port, 100000, 12, { ringSize: 16384 }), { echoed: true, code: undefined });
      assert.deepEqual(await echo(srv.port, 1000, 13), { echoed: true, code: undefined });
      assert.equal(delta(s0, 'reopened'), 2);
    } finally {
      await srv.stop();
    }
  });

  it('nothing left behind: kept links expire on both sides, every fd closed', async () => {
    const srv = await keptServer();
    try {
      const before = countFds();
      for (let i = 0; i < 3; i++) assert.deepEqual(await echo(srv.port, 1000, 20 + i), { echoed: true, code: undefined });
      assert.ok(reuse.keptClientLinks() >= 1);
      assert.ok((await srv.stats()).parked >= 1);
      await expired(srv, before);
    } finally {
      await srv.stop();
    }
  });

  it('a kept link keeps no process alive: a client process that is done exits at once', async () => {
    const srv = await keptServer();
    try {
      const script = `
        const x = require(${JSON.stringify(path.join(__dirname, '..', '..'))});
        const r = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'transports', 'local_reuse'))});
        const one = () => new Promise((res) => { const s = x.connect(${JSON.stringify(srv.port)}, () => s.end('ping')); s.resume(); s.on('close', res); });
        const pause = () => new Promise((res) => setTimeout(res, 100)); // the server's side of the first one closes meanwhile
        one().then(pause).then(one).then(() => console.log(JSON.stringify({ kept: r.keptClientLinks(), reopened: r.reuseStats.reopened })));`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.add(child);
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const [code] = await within(once(child, 'exit'), 10000, 'the client process exiting');
      assert.equal(code, 0);
      const r = JSON.parse(out);
      assert.equal(r.kept, 1, 'it held a kept link when it finished');
      assert.equal(r.reopened, 1);
    } finally {
      await srv.stop();
    }
  });

  it('a client busy past the wait when the answer comes takes it (no phantom connection on the server)', async () => {
    // Rings not prepared (XENRING_REUSE_PREPARE=0, both sides): the reconnect asks and waits.
    const srv = await keptServer(undefined, { ...process.env, XENRING_REUSE_PREPARE: '0' });
    process.env.XENRING_REUSE_PREPARE = '0';
    try {
      assert.deepEqual(await echo(srv.port, 1000, 14), { echoed: true, code: undefined });
      await parked(srv, 1);
      const s0 = stats();
      const data = Buffer.from(slice(15, 1000));
      const result = within(
        new Promise((resolve) => {
          const got = [];
          const s = xenring.connect({ port: srv.port }, () => s.end(data));
          s.on('data', (d) => got.push(Buffer.from(d)));
          s.on('close', () => resolve(Buffer.concat(got).equals(data)));
        }),
        20000,
        'busy connect',
      );
      const until = Date.now() + 3 * reuse.REUSE_WAIT_MS; // the REOPEN goes out on the next tick; then we are busy
      await new Promise((r) => setImmediate(r));
      while (Date.now() < until);
      assert.equal(await result, true);
      assert.equal(delta(s0, 'reopened'), 1);
      assert.equal(delta(s0, 'afresh'), 0);
      const st = await srv.stats();
      assert.equal(st.connections, 2, 'a connection the client never took');
      assert.deepEqual(st.errors, []);
    } finally {
      delete process.env.XENRING_REUSE_PREPARE;
      await srv.stop();
    }
  });

  it('a client that asks to keep its link and offers no pool (pool: false) meets a server that keeps none', async () => {
    const srv = await keptServer(undefined, { ...process.env, XENRING_REUSE: '0' });
    try {
      const s0 = stats();
      for (let i = 0; i < 3; i++) assert.deepEqual(await echo(srv.port, 1000, 16 + i, { pool: false }), { echoed: true, code: undefined });
      assert.equal(delta(s0, 'reopened'), 0);
      assert.equal(reuse.keptClientLinks(), 0, 'kept though the server did not agree');
    } finally {
      await srv.stop();
    }
  });

  it('XENRING_REUSE_PREPARE=0 (both sides): links are kept, no ring prepared, every reconnect asks (REOPEN, REOPENED)', async () => {
    const srv = await keptServer(undefined, { ...process.env, XENRING_REUSE_PREPARE: '0' });
    process.env.XENRING_REUSE_PREPARE = '0';
    try {
      const s0 = stats();
      for (let i = 0; i < 10; i++) assert.deepEqual(await echo(srv.port, 2000, 40 + i), { echoed: true, code: undefined });
      assert.ok(delta(s0, 'reopened') >= 7, `${delta(s0, 'reopened')} of 9 reconnects reopened`);
      assert.equal(delta(s0, 'claimed'), 0);
      assert.equal(delta(s0, 'prepared'), 0);
      const st = await srv.stats();
      assert.equal(st.prepared, 0);
      assert.equal(st.answered, delta(s0, 'reopened'), 'each REOPEN answered with REOPENED');
    } finally {
      delete process.env.XENRING_REUSE_PREPARE;
      await srv.stop();
    }
  });

  it('XENRING_REUSE=0 keeps nothing', async () => {
    const srv = await keptServer();
    process.env.XENRING_REUSE = '0';
    try {
      const s0 = stats();
      for (let i = 0; i < 3; i++) assert.deepEqual(await echo(srv.port, 1000, 30 + i), { echoed: true, code: undefined });
      assert.equal(reuse.keptClientLinks(), 0);
      assert.equal(delta(s0, 'reopened'), 0);
    } finally {
      delete process.env.XENRING_REUSE;
      await srv.stop();
    }
  });
});

describe('hostile: kept links against a hostile peer', function () {
  this.timeout(60000);
  afterEach(() => reuse.dropKeptLinks());

  /** peer.py "reuse-server" answering REOPEN as `how` says; its lines queued by event. */
  async function hostileServer(how) {
    const port = `kept-hostile-${process.pid}-${serial++}`;
    const peer = hostilePeer('reuse-server', { path: path.join(process.env.XENRING_DIR, `${port}.sock`), reopen: how });
    assert.equal(await peer.line(), 'ready');
    const events = [];
    (async () => {
      for (;;) {
        const l = await peer.line().catch(() => null);
        if (l === null) return;
        events.push(l);
      }
    })();
    const event = async (name, count = 1) => {
      for (let i = 0; i < 500; i++) {
        const err = events.find((e) => e.event === 'error');
        if (err) throw new Error(`peer: ${err.error}`);
        if (events.filter((e) => e.event === name).length >= count) return events.filter((e) => e.event === name);
        await tick(10);
      }
      throw new Error(`peer never said ${name}: ${JSON.stringify(events)}`);
    };
    return {
      peer,
      port,
      event,
      stop: () => {
        peer.child.kill('SIGKILL');
        return peer.exited; // its pipes closed before the next test counts fds
      },
    };
  }

  it('an honest server of another implementation (Python): the second connection goes through REOPEN on the same socket, bytes checked', async () => {
    const srv = await hostileServer('honest');
    try {
      const s0 = stats();
      assert.deepEqual(await echo(srv.port, 20000, 40), { echoed: true, code: undefined });
      await srv.event('served');
      assert.deepEqual(await echo(srv.port, 20000, 41), { echoed: true, code: undefined });
      assert.equal(delta(s0, 'reopened'), 1);
      const [r] = await srv.event('reopen');
      assert.equal(r.ok, true, 'the REOPEN as sent');
      const served = await srv.event('served', 2);
      assert.deepEqual(served.map((e) => [e.conn, e.round, e.echoed]), [[0, 0, 20000], [0, 1, 20000]]);
    } finally {
      await srv.stop();
    }
  });

  for (const how of ['garbage', 'orders', 'fds']) {
    it(`a REOPEN answered with ${how}: that connect fails with EPROTO, the link is freed, no fd left`, async () => {
      const srv = await hostileServer(how);
      try {
        assert.deepEqual(await echo(srv.port, 1000, 50), { echoed: true, code: undefined });
        await srv.event('served');
        const before = countFds() - 3; // the kept link's socket and pipe ends
        assert.equal(reuse.keptClientLinks(), 1);
        assert.deepEqual(await echo(srv.port, 1000, 51), { echoed: false, code: 'EPROTO' });
        assert.equal(reuse.keptClientLinks(), 0);
        assert.equal(countFds(), before);
      } finally {
        await srv.stop();
      }
    });
  }

  it('a server that marks a garbage ring ready: the connect that claims it fails with EPROTO, nothing crashes, the link is freed, no fd left', async () => {
    const srv = await hostileServer('ready-garbage');
    try {
      assert.deepEqual(await echo(srv.port, 1000, 55), { echoed: true, code: undefined });
      await srv.event('served');
      for (let i = 0; i < 100 && reuse.keptClientLinks() === 0; i++) await tick(10);
      await tick(100); // the peer's scribble (50 ms after its close)
      const before = countFds() - 3; // the kept link's socket and pipe ends
      const s0 = stats();
      const r = await echo(srv.port, 1000, 56);
      // Claimed, then refused by the checks of the new endpoint on that page
      // (before any REOPEN went out): the server sees the link closed.
      assert.deepEqual(r, { echoed: false, code: 'EPROTO' });
      assert.equal(delta(s0, 'claimed'), 0);
      await srv.event('closed');
      assert.equal(reuse.keptClientLinks(), 0);
      assert.equal(countFds(), before);
    } finally {
      await srv.stop();
    }
  });

  for (const how of ['silent', 'close']) {
    it(`a REOPEN ${how === 'silent' ? 'never answered' : 'answered by closing the socket'}: the client connects afresh, bytes checked`, async () => {
      const srv = await hostileServer(how);
      try {
        assert.deepEqual(await echo(srv.port, 1000, 60), { echoed: true, code: undefined });
        await srv.event('served');
        const s0 = stats();
        assert.deepEqual(await echo(srv.port, 3000, 61), { echoed: true, code: undefined });
        assert.equal(delta(s0, 'afresh'), 1);
        assert.equal(delta(s0, 'reopened'), 0);
        const served = await srv.event('served', 2);
        assert.equal(served[1].conn, 1, 'the second connection is a new rendezvous connection');
      } finally {
        await srv.stop();
      }
    });
  }
});

describe('hostile: a client that abuses its kept socket', function () {
  this.timeout(60000);

  /** A xenring echo server here, and peer.py "reuse-client" attacking it. */
  async function attack(how, extra = {}) {
    const errors = [];
    let connections = 0;
    const server = xenring.createServer((s) => {
      connections++;
      s.on('error', (e) => errors.push(e.code));
      s.pipe(s);
    });
    server.listen({ port: 0 });
    await once(server, 'listening');
    const before = countFds();
    const peer = hostilePeer('reuse-client', { path: server.address().address, attack: how, ...extra });
    const closed = await within(peer.line(), 15000, 'server-closed');
    // A late claim sleeps `late` s before its REOPEN, then reads for 2 s.
    const replies = await within(peer.line(), 15000 + 1000 * (extra.late ?? 0), 'replies');
    return { server, peer, closed, replies: replies.replies, ready: replies.ready, errors, before, connections: () => connections };
  }

  /** An honest client still gets served afterwards, and once the peer is gone nothing is left. */
  async function stillServes(a) {
    assert.deepEqual(await echo(a.server.address().port, 5000, 70), { echoed: true, code: undefined });
    await a.peer.end();
    reuse.dropKeptLinks();
    for (let i = 0; i < 100 && (countFds() !== a.before || reuse.parkedLinks() > 0); i++) await tick(10);
    assert.equal(reuse.parkedLinks(), 0);
    assert.equal(countFds(), a.before, 'fds left behind');
    a.server.close();
  }

  it('an honest REOPEN from another implementation (Python) is answered with REOPENED and a new connection', async () => {
    const a = await attack('reopen');
    assert.deepEqual(a.closed, { event: 'server-closed', agreed: true, closed: true });
    assert.deepEqual(a.replies, ['reopened']);
    assert.equal(a.connections(), 2);
    await stillServes(a);
  });

  it('a claimed REOPEN from another implementation (Python) of the ring the server prepared: a new connection, no answer', async () => {
    const a = await attack('claim');
    assert.equal(a.closed.closed, true);
    assert.deepEqual(a.replies, []);
    assert.equal(a.ready, true, 'the server prepared the ring (it closed last)');
    for (let i = 0; i < 100 && a.connections() < 2; i++) await tick(10);
    assert.equal(a.connections(), 2);
    await stillServes(a);
  });

  it('a claimed REOPEN that comes after the server\'s idle time: the link was not freed under the claim, the REOPEN is served', async () => {
    const a = await attack('claim-late', { late: (reuse.REUSE_SERVER_IDLE_MS + 500) / 1000 });
    assert.deepEqual(a.replies, []);
    for (let i = 0; i < 100 && a.connections() < 2; i++) await tick(10);
    assert.equal(a.connections(), 2);
    assert.equal(reuse.parkedLinks(), 0);
    await stillServes(a);
  });

  it('clients that claim their prepared ring and never send the REOPEN: what the server holds stays within the bounds, and it still serves', async () => {
    // The peers' connections end abruptly (reset): their errors are theirs.
    const server = xenring.createServer((s) => s.on('error', () => {}).pipe(s));
    server.listen({ port: 0 });
    await once(server, 'listening');
    const rings = () => require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('memfd:xenring')).length;
    const before = rings();
    const peers = [];
    const wave = async (n) => {
      const w = Array.from({ length: n }, () => hostilePeer('reuse-client', { path: server.address().address, attack: 'claim-late', late: 6 }));
      peers.push(...w);
      for (const p of w) await within(p.line(), 20000, 'server-closed');
      await tick(300); // each has claimed its ring by now, and sleeps
    };
    try {
      // 16 parked and claimed; 24 more evict them one by one (the cache's bound), each claimed, so each waits for a REOPEN.
      await wave(reuse.REUSE_TOTAL);
      await wave(24);
      const held = rings() - before;
      assert.ok(reuse.parkedLinks() <= reuse.REUSE_TOTAL);
      assert.ok(held <= 2 * reuse.REUSE_TOTAL, `${held} rings held for ${peers.length} clients that claimed (parked ${reuse.parkedLinks()})`);
      assert.deepEqual(await echo(server.address().port, 5000, 71), { echoed: true, code: undefined });
    } finally {
      await Promise.all(peers.map((p) => p.end()));
      server.close();
      reuse.dropKeptLinks();
    }
  });

  it('a claimed REOPEN that comes while the server is still open, of a ring nobody prepared: held until the server closed, then refused (the link freed)', async () => {
    const a = await attack('claim-live');
    assert.deepEqual(a.replies, ['closed']);
    assert.equal(a.connections(), 1);
    assert.equal(reuse.parkedLinks(), 0);
    await stillServes(a);
  });

  it('a claimed REOPEN without the claim on the page: refused (the link freed), no connection', async () => {
    const a = await attack('claim-unclaimed');
    assert.deepEqual(a.replies, ['closed']);
    assert.equal(a.connections(), 1);
    assert.equal(reuse.parkedLinks(), 0);
    await stillServes(a);
  });

  it('a REOPEN sent while its connection was still open is answered once the server closed that connection', async () => {
    const a = await attack('live');
    assert.deepEqual(a.replies, ['reopened']);
    assert.equal(a.connections(), 2);
    await stillServes(a);
  });

  for (const how of ['garbage', 'fds']) {
    it(`${how === 'fds' ? 'a REOPEN carrying fds' : 'garbage'} on a parked socket: the link is freed (the client sees the close), its fds closed`, async () => {
      const a = await attack(how);
      assert.deepEqual(a.replies, ['closed']);
      assert.equal(a.connections(), 1);
      assert.equal(reuse.parkedLinks(), 0);
      await stillServes(a);
    });
  }

  it('a flood of REOPENs: refused with the link, or the first answered and that new connection failed with EPROTO; the server stays up', async () => {
    const a = await attack('flood');
    assert.equal(a.replies.at(-1), 'closed', `replies: ${a.replies}`);
    if (a.connections() === 2) {
      // Parked before the flood came: the first answered, the third fails the new connection.
      assert.equal(a.replies[0], 'reopened');
      for (let i = 0; i < 100 && !a.errors.includes('EPROTO'); i++) await tick(10);
      assert.deepEqual(a.errors, ['EPROTO']);
    } else {
      // The flood came as the server closed its side: two REOPENs queued, the link not kept.
      assert.equal(a.connections(), 1);
      assert.deepEqual(a.replies, ['closed']);
      assert.deepEqual(a.errors, []);
    }
    await stillServes(a);
  });
});
