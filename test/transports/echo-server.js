'use strict';
// A local xenring echo server in its own process, for connect-setup.test.js:
// echoes every connection, reports its port over IPC, exits when the test
// process disconnects.
const xenring = require('../..');

const server = xenring.createServer((socket) => {
  socket.on('error', () => {});
  socket.pipe(socket);
});
server.listen({ port: 0 }, () => process.send({ port: server.address().port }));
process.on('disconnect', () => process.exit(0));
