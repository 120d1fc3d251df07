'use strict';
// A xenring echo server in its own process for the process-safety tests:
// reports { event: 'listening', port } and answers { cmd: 'stats' } with the
// number of sockets still open, so a test can see every peer's hang-up arrive.
const xenring = require('../..');

const open = new Set();
let accepted = 0;
const server = xenring.createServer((socket) => {
  accepted++;
  open.add(socket);
  socket.on('error', () => {});
  socket.on('close', () => open.delete(socket));
  socket.pipe(socket);
});
server.listen({ port: Number(process.argv[2] || 0) }, () => process.send({ event: 'listening', port: server.address().port }));
process.on('message', (m) => {
  if (m.cmd === 'stats') process.send({ event: 'stats', open: open.size, accepted });
});
process.on('disconnect', () => process.exit(0));
