'use strict';
// The sender of test/pool/turn_budget.test.js: connects to argv[2] and
// writes argv[3] pool payloads of argv[4] bytes in one tick, each marked with
// its number; tells the parent once they are announced ({ written }); then ends.
const xenring = require('../..');

const [port, count, size] = process.argv.slice(2).map(Number);
const sock = xenring.connect({ port, transport: 'local' }, () => {
  for (let i = 0; i < count; i++) {
    const buf = sock.allocBuffer(size);
    buf[0] = i;
    buf[size - 1] = i;
    sock.write(buf);
  }
  // After the tick's flush: every payload is announced.
  setImmediate(() => process.send({ written: count }));
  sock.end();
});
sock.on('error', (err) => { process.send({ error: err.message }); process.exit(1); });
sock.on('close', () => process.exit(0));
