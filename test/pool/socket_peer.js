'use strict';
// The other process of test/pool/socket.test.js: a xenring server (or, with
// role 'client', a client) that receives a pattern stream through the public
// API, checks every byte, and reports over IPC. Options (JSON argv[2]):
//   role        'server' (default) | 'client' (connects to opts.port)
//   pool        the pool option for createServer / connect
//   receive     'release' (release(d) after checking) | 'hold' (keep every
//               Buffer) | 'gc' (drop, and collect every 8 payloads) | 'onread'
//               | 'drop' (check, then drop: a plain 'data' listener)
//   plan        after 'end', write this plan back ([size, 'alloc'|'buf'] ...) then end()
//   endAfterAlloc  client: write one allocBuffer of this size, then end() at once
//   gatesOpen   copy ordinary Buffers into the pool from the first write (gates.js)
//   allowHalfOpen  server: keep writing the plan after 'end' however long it takes
//               (without it, net's default ends our side at 'end': a plan that
//               waits for 'drain' would be cut short)
// Messages: { event: 'ready', port }, { event: 'received', bytes, ok, badOffset,
// dataAfterEnd, stats, heldViewsOk }, { event: 'error', code, message }.
const xenring = require('../..');
const { PatternChecker } = require('../helpers/pattern');
const { writePlan } = require('./plan');

const opts = JSON.parse(process.argv[2] || '{}');
if (opts.gatesOpen) require('./gates').openGates();
const send = (m) => process.send(m);

function receive(s, onDone) {
  const checker = new PatternChecker();
  const held = [];
  let ended = false;
  let dataAfterEnd = false;
  let n = 0;
  const take = (d) => {
    if (ended) dataAfterEnd = true;
    checker.update(d);
    if (opts.receive === 'release') s.release(d);
    else if (opts.receive === 'hold') held.push(d);
    else if (opts.receive === 'gc' && ++n % 8 === 0) global.gc();
  };
  if (opts.receive !== 'onread') s.on('data', take);
  s.on('error', (err) => send({ event: 'error', code: err.code, message: err.message }));
  s.on('end', () => {
    ended = true;
    // Held views must still read as what arrived (nothing rewrote them).
    const again = new PatternChecker();
    for (const d of held) again.update(d);
    const report = {
      event: 'received',
      bytes: checker.received,
      ok: checker.ok,
      badOffset: checker.badOffset,
      dataAfterEnd,
      stats: s.poolStats(),
      heldViewsOk: held.length === 0 || (again.ok && again.received === checker.received),
    };
    onDone(report);
  });
  return take;
}

function finish(s, report) {
  send(report);
  if (!opts.plan) {
    s.end();
    return;
  }
  writePlan(s, opts.plan).then(() => s.end());
}

if (opts.role === 'client') {
  let take = null;
  const options = { port: opts.port, pool: opts.pool };
  if (opts.receive === 'onread') options.onread = { buffer: Buffer.alloc(opts.onreadSize || 3000), callback: (n, buf) => take(buf.subarray(0, n)) };
  const s = xenring.connect(options, () => send({ event: 'connected', stats: s.poolStats() }));
  take = receive(s, (report) => {
    send(report);
    s.end();
  });
  s.on('close', () => process.exit(0));
} else {
  const server = xenring.createServer({ pool: opts.pool, allowHalfOpen: opts.allowHalfOpen === true }, (s) => {
    receive(s, (report) => finish(s, report));
    s.on('close', () => {
      server.close();
      setTimeout(() => process.exit(0), 20);
    });
  });
  server.listen({ port: 0 }, () => send({ event: 'ready', port: server.address().port }));
}
