'use strict';
// The other process of keep_drop.test.js: a xenring server with default
// options (but allowHalfOpen: either side may finish writing first) that, on its one connection, receives the parent's stream
// ('keep' or 'drop', opts.mode) while writing its own (opts.rounds of
// bulkPlan) back, then reports { event: 'done', sent, received, stats }.
const xenring = require('../..');
const { bulkPlan, writeBulk, receiveBulk } = require('./bulk_stream');

const opts = JSON.parse(process.argv[2]);
const send = (m) => process.send(m);

const server = xenring.createServer({ allowHalfOpen: true }, (s) => {
  s.on('error', (err) => send({ event: 'error', code: err.code, message: err.message }));
  const received = receiveBulk(s, opts.mode);
  const sent = writeBulk(s, bulkPlan(opts.rounds)).then((n) => {
    s.end();
    return n;
  });
  Promise.all([sent, received]).then(([n, r]) => {
    send({ event: 'done', sent: n, received: r, stats: s.poolStats() });
    server.close();
  });
  s.on('close', () => setTimeout(() => process.exit(0), 20));
});
server.listen({ port: 0 }, () => send({ event: 'ready', port: server.address().port }));
