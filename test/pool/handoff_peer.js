'use strict';
// The other process of test/pool/handoff_gc.test.js: a xenring server that
// answers every 16 MiB pool message with 1 byte on arrival, after releasing
// it, and counts its own major GCs. Messages: { event: 'ready', port },
// { event: 'done', msgs, majorGCs, releasedEmpty, stats }.
const { PerformanceObserver, constants } = require('node:perf_hooks');
const xenring = require('../..');

const size = Number(process.argv[2]);
let majors = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
}).observe({ entryTypes: ['gc'] });

const server = xenring.createServer((sock) => {
  server.close();
  let got = 0;
  let msgs = 0;
  let releasedEmpty = 0;
  const ack = Buffer.from([1]);
  sock.on('data', (d) => {
    got += d.length;
    if (sock.release(d) && d.length === 0) releasedEmpty++;
    for (; got >= size; got -= size) {
      msgs++;
      sock.write(ack);
    }
  });
  process.on('message', (m) => {
    if (m !== 'count') return;
    // Observer entries arrive asynchronously: let them in first.
    setImmediate(() => {
      process.send({ event: 'counted', msgs, majorGCs: majors, releasedEmpty, stats: sock.poolStats() });
      majors = 0;
    });
  });
  sock.on('end', () => sock.end());
});
server.listen({ port: 0, transport: 'local' }, () => process.send({ event: 'ready', port: server.address().port }));
process.on('disconnect', () => process.exit(0));
