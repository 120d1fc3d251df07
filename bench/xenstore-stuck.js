'use strict';
// node bench/xenstore-stuck.js [runs]: time of a Xen listen + connect +
// accept while one unrelated xenstore reply is stuck in each domain (issue 12
// item 4; fake Xen host, no Xen needed), with the client's fd pool (default)
// and limited to one fd, which is what it did before (one request on the
// wire per process, so the connect waits for the stuck one's 10 s timeout).
const path = require('path');
const root = path.join(__dirname, '..');
const { setup, listen, connect } = require(path.join(root, 'test', 'xen-fake', 'helpers'));
const { xenStoreFor } = require(path.join(root, 'dist', 'transports', 'xen', 'xenstore.js'));
async function once(storeOptions) {
  const env = setup({ storeOptions });
  const xs0 = xenStoreFor(env.d0), xs5 = xenStoreFor(env.d5);
  await Promise.all([xs0.write('data/stuck', 's'), xs5.write('data/stuck', 's'), xs0.ownDomid(), xs5.ownDomid()]);
  env.host.xs.inject({ op: 'read', path: /\/data\/stuck$/, code: null, times: 2 });
  const stuck = [xs0.read('data/stuck').catch(() => {}), xs5.read('data/stuck').catch(() => {})];
  const t = process.hrtime.bigint();
  const l = await listen(env.t0, { port: 'p' });
  const c = await connect(env.t5, { port: 'p', domid: 0 });
  const s = await l.nextLink();
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  c.release(); s.release(); l.close();
  xs0.close(); xs5.close(); await Promise.all(stuck); env.host.close();
  return ms;
}
(async () => {
  const runs = Number(process.argv[2] || 3);
  for (const [name, opts] of [['pool (default, up to 8 fds)', undefined], ['one fd (as before)', { maxConnections: 1 }]]) {
    const t = [];
    for (let i = 0; i < runs; i++) t.push(await once(opts));
    t.sort((a, b) => a - b);
    console.log(`${name}: listen+connect+accept with a stuck reply in each domain: median ${t[t.length >> 1].toFixed(0)} ms, range ${t[0].toFixed(0)}-${t[t.length - 1].toFixed(0)} ms (${runs} runs)`);
  }
  process.exit(0);
})();
