'use strict';
// A xenring server in its own process for the accept-flood test, driven over
// stdin/stdout (one JSON line each way):
//   {"cmd":"fill"}     open /dev/null until EMFILE (an app at its fd limit)
//   {"cmd":"release"}  close those fds again
//   {"cmd":"measure","ms":N}  share of a core this process used over N ms
const fs = require('node:fs');
const readline = require('node:readline');
const xenring = require('../..');

const opts = JSON.parse(process.argv[2]);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const filler = [];

const server = xenring.createServer((s) => s.on('error', () => {}));
server.on('error', (err) => say({ event: 'error', code: err.code }));
server.listen({ port: opts.port, ringSize: 4096 }, () => say({ event: 'listening', path: server.address().address }));

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const { cmd, ms } = JSON.parse(line);
  if (cmd === 'fill') {
    try {
      for (;;) filler.push(fs.openSync('/dev/null', 'r'));
    } catch (err) {
      say({ event: 'filled', code: err.code, opened: filler.length });
    }
  } else if (cmd === 'release') {
    while (filler.length) fs.closeSync(filler.pop());
    say({ event: 'released' });
  } else if (cmd === 'measure') {
    const start = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    setTimeout(() => {
      const used = process.cpuUsage(start);
      const wall = Number(process.hrtime.bigint() - t0) / 1000;
      say({ event: 'measured', cpu: (used.user + used.system) / wall });
    }, ms);
  }
});
process.stdin.on('end', () => process.exit(0));
