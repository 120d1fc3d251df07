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
const { PatternChecker } = require('../helpers/pattern');

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

/** Reads opts.expect bytes from `s` (the pattern checked), releasing each Buffer; then pauses it. */
function readExpected(s) {
  const checker = new PatternChecker();
  return new Promise((resolve) => {
    const onData = (d) => {
      checker.update(d);
      s.release(d); // the extent goes back: the server's region is idle again
      if (checker.received >= opts.expect) {
        s.off('data', onData);
        s.pause();
        resolve(checker.ok && checker.received === opts.expect);
      }
    };
    s.on('data', onData);
  });
}

/** A new connection and the ring it mapped (the one inode that was not mapped before); `read`: take opts.expect bytes first. */
async function connect(read = true) {
  const before = ringMappings();
  const s = xenring.connect({ port: opts.port, pool: opts.pool ?? false });
  if (!read) s.pause(); // before anything arrives: the server's end is not read either
  await once(s, 'connect');
  const fresh = [...ringMappings()].filter((i) => !before.has(i));
  const ok = read && opts.expect ? await readExpected(s) : true;
  return { s, ring: fresh.length === 1 ? fresh[0] : null, mapped: fresh, ok };
}

(async () => {
  const a = await connect(false);
  a.s.end();
  await send({ event: 'a', ring: a.ring, mapped: a.mapped });
  await go();
  const b = await connect();
  await send({ event: 'b', ring: b.ring, mapped: b.mapped, aClosed: a.s.closed, ok: b.ok });
  const aRead = opts.expect ? readExpected(a.s) : null; // (resumes it)
  a.s.resume();
  if (aRead !== null) a.ok = await aRead;
  await once(a.s, 'close');
  await send({ event: 'a-closed', ok: a.ok });
  await go();
  const c = await connect();
  await send({ event: 'c', ring: c.ring, mapped: c.mapped, ok: c.ok });
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
