'use strict';
// node bench/xenstore.js [runs] [delayMs]: the xenstore client's fd pool
// against one fd, which is what it did before (one request on the wire per
// process), on the fake Xen host (no Xen needed; issue 12 item 4).
//  - stuck: a Xen listen + connect + accept while one unrelated xenstore
//    reply is stuck in each domain (one fd: the connect waits for the stuck
//    request's 10 s timeout);
//  - slow: 16 concurrent connects in one domain while every xenstore reply
//    takes `delayMs` (default 15 ms, a loaded emulated lab): how many
//    connect within the 10 s connect timeout, and how long all of it took.
const path = require('path');
const root = path.join(__dirname, '..');
const { FakeXenstored } = require(path.join(root, 'test', 'xen-fake', 'fake_xenstored'));
const { setup, listen, connect } = require(path.join(root, 'test', 'xen-fake', 'helpers'));
const { xenStoreFor } = require(path.join(root, 'dist', 'transports', 'xen', 'xenstore.js'));

const CASES = [
  ['pool (default, up to 8 fds)', undefined],
  ['one fd (as before)', { maxConnections: 1 }],
];

async function stuckOnce(storeOptions) {
  const env = setup({ storeOptions });
  const xs0 = xenStoreFor(env.d0);
  const xs5 = xenStoreFor(env.d5);
  await Promise.all([xs0.write('data/stuck', 's'), xs5.write('data/stuck', 's'), xs0.ownDomid(), xs5.ownDomid()]);
  env.host.xs.inject({ op: 'read', path: /\/data\/stuck$/, code: null, times: 2 });
  const stuck = [xs0.read('data/stuck').catch(() => {}), xs5.read('data/stuck').catch(() => {})];
  const t = process.hrtime.bigint();
  const l = await listen(env.t0, { port: 'p' });
  const c = await connect(env.t5, { port: 'p', domid: 0 });
  const s = await l.nextLink();
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  c.release();
  s.release();
  l.close();
  xs0.close();
  xs5.close();
  await Promise.all(stuck);
  env.host.close();
  return ms;
}

async function slowOnce(storeOptions, delayMs) {
  const process0 = FakeXenstored.prototype.process;
  FakeXenstored.prototype.process = function (...args) {
    setTimeout(() => this.conns.has(args[0]) && process0.apply(this, args), delayMs).unref();
  };
  try {
    const env = setup({ storeOptions });
    const l = await listen(env.t0, { port: 0 });
    const port = l.address().port;
    const t = Date.now();
    const res = await Promise.allSettled(Array.from({ length: 16 }, () => connect(env.t0, { port, domid: 0 })));
    const ms = Date.now() - t;
    for (const r of res) if (r.status === 'fulfilled') r.value.release();
    for (const k of l.links) k.release();
    l.close();
    await new Promise((r) => setTimeout(r, 300));
    env.host.close();
    return { ms, ok: res.filter((r) => r.status === 'fulfilled').length };
  } finally {
    FakeXenstored.prototype.process = process0;
  }
}

(async () => {
  const runs = Number(process.argv[2] || 3);
  const delayMs = Number(process.argv[3] || 15);
  for (const [name, opts] of CASES) {
    const t = [];
    for (let i = 0; i < runs; i++) t.push(await stuckOnce(opts));
    t.sort((a, b) => a - b);
    console.log(`stuck, ${name}: listen+connect+accept median ${t[t.length >> 1].toFixed(0)} ms, range ${t[0].toFixed(0)}-${t[t.length - 1].toFixed(0)} ms (${runs} runs)`);
  }
  for (const [name, opts] of CASES) {
    const { ms, ok } = await slowOnce(opts, delayMs);
    console.log(`slow (${delayMs} ms per reply), ${name}: ${ok}/16 concurrent connects succeeded, all settled in ${ms} ms`);
  }
  process.exit(0);
})();
