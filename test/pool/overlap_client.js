'use strict';
// The client process of the "reconnect before the last connection closed"
// case in test/pool/ring_reuse.test.js. Connection A ends its side but stays
// paused, so the server's end is not read and A is not closed here (its
// rendezvous socket stays open) while B connects; then A is read to its end
// and closes, and C connects while B is still open. Reports each
// connection's ring (the inode of the server's memfd it mapped) by IPC and
// waits for the parent's 'go' between steps.
const fs = require('node:fs');
const { once } = require('node:events');
const xenring = require('../..');

const opts = JSON.parse(process.argv[2]);
const send = (m) => new Promise((r) => process.send(m, r));
const go = () => new Promise((r) => process.once('message', r));

function ringMappings() {
  const out = new Set();
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[5] === '/memfd:xenring') out.add(Number(f[4]));
  }
  return out;
}

/** A new connection and the ring it mapped (the one inode that was not mapped before). */
async function connect() {
  const before = ringMappings();
  const s = xenring.connect({ port: opts.port, pool: false });
  await once(s, 'connect');
  const fresh = [...ringMappings()].filter((i) => !before.has(i));
  return { s, ring: fresh.length === 1 ? fresh[0] : null, mapped: fresh };
}

(async () => {
  const a = await connect();
  a.s.pause();
  a.s.end();
  await send({ event: 'a', ring: a.ring, mapped: a.mapped });
  await go();
  const b = await connect();
  await send({ event: 'b', ring: b.ring, mapped: b.mapped, aClosed: a.s.closed });
  a.s.resume();
  await once(a.s, 'close');
  await send({ event: 'a-closed' });
  await go();
  const c = await connect();
  await send({ event: 'c', ring: c.ring, mapped: c.mapped });
  for (const { s } of [b, c]) {
    s.resume();
    s.end();
    await once(s, 'close');
  }
  await send({ event: 'done' });
  process.exit(0);
})().catch((err) => {
  process.send({ event: 'error', message: err.message }, () => process.exit(1));
});
