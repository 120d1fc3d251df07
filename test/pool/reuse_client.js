'use strict';
// The client process of test/pool/reuse.test.js: connects `rounds` times, one
// connection after the other, to opts.port; each time writes a pattern plan
// (pool payloads and ring bytes), then checks the server's plan coming back.
//   stall: connect once, keep what arrives, wait to be killed (SIGKILL)
//   hold: keep every Buffer received (views of the server's region) to the
//         end, and check then that they still read as received; otherwise
//         each is released after checking (s.release(d): the extent goes
//         back to the server at once, as a reader that is done with it).
// Messages: { event: 'round', i, sentBytes, ok, bytes }, { event: 'done', heldOk }.
const { once } = require('node:events');
const xenring = require('../..');
const { PatternChecker } = require('../helpers/pattern');
const { writePlan } = require('./plan');

const opts = JSON.parse(process.argv[2]);
const send = (m) => new Promise((r) => process.send(m, r));

async function round(i, held) {
  const s = xenring.connect({ port: opts.port });
  await once(s, 'connect');
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
  await send({ event: 'round', i, sentBytes, ok: checker.ok, bytes: checker.received });
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
