'use strict';
// Run in a fresh process (no xenstore use yet): `node guest_address.js PORT`.
// Listens on transport 'xen', prints address() as listen() returned it (and
// how long listen() and that first address() took), then answers one client
// with that address as JSON and exits once the server has closed. domu-peer.js step 12 runs it in
// the guest; dom0's half (socket.test.js) connects and checks the answer.
const path = require('node:path');
const xenring = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const port = Number(process.argv[2]);
const server = xenring.createServer((s) => {
  s.on('error', () => {});
  s.end(JSON.stringify(early));
  server.close();
});
const t0 = process.hrtime.bigint();
server.listen({ port, transport: 'xen' });
const t1 = process.hrtime.bigint();
const early = server.address();
const t2 = process.hrtime.bigint();
const ms = (a, b) => +(Number(b - a) / 1e6).toFixed(2);
console.log(JSON.stringify({ early, listenMs: ms(t0, t1), addressMs: ms(t1, t2) }));
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
server.on('close', () => process.exit(0));
