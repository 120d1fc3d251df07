'use strict';
// Run in a fresh process (no xenstore use yet): `node guest_address.js PORT`.
// Listens on transport 'xen', prints address() as listen() returned it (and
// how long listen() took), then answers one client with that address as
// JSON and exits once the server has closed. domu-peer.js step 12 runs it in
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
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const early = server.address();
console.log(JSON.stringify({ early, listenMs: +ms.toFixed(2) }));
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
server.on('close', () => process.exit(0));
