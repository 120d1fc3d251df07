'use strict';
// A xenring client in its own process for the freeze test (it is this
// process's event loop the hostile server tries to block). Connects to
// argv[2], then writes a byte every 2 ms for argv[3] ms after the server says
// it is attacking (a line on stdin), and reports that its loop kept turning.
const xenring = require('../..');

const port = process.argv[2];
const ms = Number(process.argv[3]);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const socket = xenring.connect({ port });
socket.on('error', (err) => say({ event: 'error', code: err.code }));
socket.on('connect', () => {
  say({ event: 'connected' });
  process.stdin.once('data', () => {
    let writes = 0;
    const timer = setInterval(() => {
      socket.write(Buffer.of(writes++ & 0xff));
    }, 2);
    setTimeout(() => {
      clearInterval(timer);
      say({ event: 'alive', writes });
      process.exit(0);
    }, ms);
  });
});
