'use strict';
// The client process of test/pool/reuse.test.js: connects `rounds` times, one
// connection after the other, to opts.port; each time writes a pattern plan
// (pool payloads and ring bytes), then checks the server's plan coming back.
//   stall: connect once, keep what arrives, wait to be killed (SIGKILL)
//   ringSizes: the ringSize asked for in each round (cycled; default: none asked)
//   pool: the pool option of each connection (e.g. { size: 0 }: every byte through the ring)
//   waitGo: once connected, say { event: 'connected', i } and wait for a message before writing
//   hold: keep every Buffer received (views of the server's region) to the
//         end, and check then that they still read as received; otherwise
//         each is released after checking (s.release(d): the extent goes
//         back to the server at once, as a reader that is done with it).
// Messages: { event: 'round', i, sentBytes, ok, bytes, ringInodes }, { event: 'done', heldOk }.
// ringInodes: the ring memfds this process has mapped for the connection
// (its connections are one after the other: the current one's, the server's
// memfd), not counting the mappings of closed ones it keeps for reuse
// (lib/transports/local_ring_cache.ts); ringCache: that cache's stats then.
const fs = require('node:fs');
const { once } = require('node:events');
const xenring = require('../..');
const { ringCacheStats } = require('../../dist/transports/local_ring_cache');
const { PatternChecker } = require('../helpers/pattern');
const { writePlan } = require('./plan');

const opts = JSON.parse(process.argv[2]);
const send = (m) => new Promise((r) => process.send(m, r));

/** Inodes of the ring memfds mapped here (/proc/self/maps: the inode is field 5; pool regions are "xenring-pool"), but those kept for reuse. */
function ringInodes() {
  const kept = new Set(ringCacheStats().keys.map((k) => Number(k.split(':')[1])));
  const out = new Set();
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[5] === '/memfd:xenring' && !kept.has(Number(f[4]))) out.add(Number(f[4]));
  }
  return [...out];
}

async function round(i, held) {
  const ringSize = opts.ringSizes?.[i % opts.ringSizes.length];
  const s = xenring.connect({ port: opts.port, ...(ringSize && { ringSize }), ...(opts.pool && { pool: opts.pool }) });
  await once(s, 'connect');
  const rings = ringInodes();
  const ringCache = ringCacheStats();
  if (opts.waitGo) {
    const go = new Promise((r) => process.once('message', r));
    await send({ event: 'connected', i });
    await go;
  }
  const checker = new PatternChecker();
  const mine = [];
  s.on('data', (d) => {
    checker.update(d);
    if (opts.hold) mine.push(d);
    else s.release(d);
  });
  const ended = once(s, 'end');
  const sentBytes = await writePlan(s, opts.plan);
  s.end();
  await ended;
  await once(s, 'close');
  held.push(mine);
  await send({ event: 'round', i, sentBytes, ok: checker.ok, bytes: checker.received, ringInodes: rings, ringCache });
}

if (opts.stall) {
  // Connects, takes what comes without returning it, and waits to be killed.
  const s = xenring.connect({ port: opts.port }, () => send({ event: 'connected' }));
  const held = [];
  s.on('data', (d) => held.push(d));
  setInterval(() => {}, 1000);
} else (async () => {
  const held = [];
  for (let i = 0; i < opts.rounds; i++) await round(i, held);
  // Held views must read as what arrived, whatever later connections moved.
  let heldOk = true;
  for (const views of held) {
    const again = new PatternChecker();
    for (const v of views) again.update(v);
    if (!again.ok) heldOk = false;
  }
  await send({ event: 'done', heldOk, held: held.reduce((n, v) => n + v.length, 0) });
  process.exit(0);
})().catch((err) => {
  process.send({ event: 'error', message: err.message }, () => process.exit(1));
});
