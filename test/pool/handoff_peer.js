'use strict';
// The two processes of test/pool/handoff_gc.test.js (each a fresh process,
// so the counts are the hand-off's, not what earlier tests left in a heap):
//   receiver  a xenring server that releases every 16 MiB pool message on
//             arrival and answers it with 1 byte;
//   sender    connects to argv[4], sends `warm` messages, zeroes its counts,
//             then `count` more, each allocBuffer() + write() + wait for the answer.
// Each counts its own major GCs. Messages: { event: 'ready', port } (receiver),
// { event: 'counted', msgs, majorGCs, same, wrong, stats } (the receiver on
// 'count', the sender when done; `same`: Buffers that are the one before
// (allocBuffer() on the sender, 'data' on the receiver); `wrong`: payloads
// whose marks are not their message's (the receiver)). The sender marks
// message i's first and last bytes.
const { PerformanceObserver, constants } = require('node:perf_hooks');
const xenring = require('../..');

const [role, sizeArg, warmArg, countArg, portArg] = process.argv.slice(2);
const size = Number(sizeArg);
let majors = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
}).observe({ entryTypes: ['gc'] });
// Observer entries arrive asynchronously: let them in before reporting.
const report = (m) => setImmediate(() => process.send({ event: 'counted', majorGCs: majors, ...m }));
process.on('disconnect', () => process.exit(0));

if (role === 'receiver') {
  let msgs = 0;
  let same = 0;
  let wrong = 0;
  let last = null;
  let conn = null;
  process.on('message', (m) => {
    if (m !== 'count') return;
    report({ msgs, same, wrong, stats: conn && conn.poolStats() });
    majors = 0;
    same = 0;
  });
  const server = xenring.createServer((sock) => {
    server.close();
    conn = sock;
    let got = 0;
    const ack = Buffer.from([1]);
    sock.on('data', (d) => {
      got += d.length;
      if (d === last) same++;
      last = d;
      if (d.length !== size || d[0] !== (msgs & 0xff) || d[size - 1] !== ((msgs * 7) & 0xff)) wrong++;
      sock.release(d);
      for (; got >= size; got -= size) {
        msgs++;
        sock.write(ack);
      }
    });
    sock.on('end', () => sock.end());
  });
  server.listen({ port: 0, transport: 'local' }, () => process.send({ event: 'ready', port: server.address().port }));
} else {
  const sock = xenring.connect({ port: Number(portArg), transport: 'local', pool: { size: 64 << 20 } });
  sock.once('connect', async () => {
    let acks = 0;
    let wake = null;
    sock.on('data', (d) => {
      acks += d.length;
      if (wake) wake();
    });
    const answered = (n) => new Promise((resolve) => (acks >= n ? resolve() : (wake = resolve)));
    let same = 0;
    let last = null;
    const warm = Number(warmArg);
    const total = warm + Number(countArg);
    for (let i = 0; i < total; i++) {
      if (i === warm) {
        await new Promise((r) => setImmediate(r));
        majors = 0;
        same = 0;
      }
      const buf = sock.allocBuffer(size);
      if (buf === last) same++;
      last = buf;
      buf[0] = i & 0xff;
      buf[size - 1] = (i * 7) & 0xff;
      sock.write(buf);
      await answered(i + 1);
    }
    report({ msgs: total, same, stats: sock.poolStats() });
  });
}
