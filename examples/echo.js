'use strict';
// Echo server and client in two processes.
//   node examples/echo.js            # starts the server, forks a client, exits when done
//   node examples/echo.js server     # just the server (port 'echo-demo')
//   node examples/echo.js client     # just a client
const { fork } = require('node:child_process');
const xenring = require('..'); // in your project: require('xenring')

const PORT = 'echo-demo';
const role = process.argv[2];

if (role === 'client') {
  const socket = xenring.connect({ port: PORT }, () => {
    console.log('client: connected to', socket.remoteAddress);
    socket.end('hello over a shared-memory ring');
  });
  socket.setEncoding('utf8');
  socket.on('data', (text) => console.log(`client: echoed back: ${text}`));
  socket.on('close', () => console.log('client: closed'));
} else {
  const server = xenring.createServer((socket) => {
    console.log('server: connection from', socket.remoteAddress);
    socket.pipe(socket); // echo; ends when the client ends
    if (role !== 'server') socket.on('close', () => server.close());
  });
  server.listen(PORT, () => {
    console.log('server: listening on', server.address());
    if (role !== 'server') fork(__filename, ['client']);
  });
}
