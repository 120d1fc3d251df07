'use strict';
// The victim of test/pool/pid_reuse.test.js: connects once (64 KiB ring, no
// pool), reads what the server writes, closes in order, reports the ring
// memfd's inode it mapped, then stays alive (a long-lived client) until killed.
const fs = require('node:fs');
const xenring = require('../..');

const { port } = JSON.parse(process.argv[2]);
const s = xenring.connect({ port, ringSize: 65536, pool: false }, () => {
  let ringIno = 0;
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[5] === '/memfd:xenring') ringIno = Number(f[4]);
  }
  let bytes = 0;
  s.on('data', (d) => (bytes += d.length));
  s.on('close', () => process.send({ event: 'closed', bytes, ringIno }));
});
setInterval(() => {}, 1000);
