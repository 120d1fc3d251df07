'use strict';
// A xenring peer in its own process, driven by the tests:
//   node peer.js <role> <json options>
// It connects to options.port (or listens when role starts with "listen-"),
// reports over IPC ({ event, ... }) and exits when its socket closes.
const xenring = require('../..');
const { PatternChecker, writePattern } = require('./pattern');

const role = process.argv[2];
const opts = JSON.parse(process.argv[3] || '{}');
const send = (msg) => process.send && process.send(msg);

function run(socket) {
  socket.on('error', (err) => send({ event: 'error', code: err.code, message: err.message }));
  socket.on('close', (hadError) => {
    send({ event: 'close', hadError, bytesRead: socket.bytesRead, bytesWritten: socket.bytesWritten });
    if (process.connected) process.disconnect();
  });
  switch (role) {
    case 'send': // write opts.total pattern bytes in opts.chunk writes, then end
      writePattern(socket, opts.total, opts.chunk, () => socket.end());
      socket.resume();
      break;
    case 'recv': {
      // verify the pattern; report on 'end'; optionally reply then end
      const check = new PatternChecker();
      socket.on('data', (d) => check.update(d));
      socket.on('end', () => {
        send({ event: 'end', received: check.received, ok: check.ok, badOffset: check.badOffset });
        if (opts.replyTotal) writePattern(socket, opts.replyTotal, opts.chunk || 65536, () => socket.end());
      });
      break;
    }
    case 'echo':
      socket.pipe(socket);
      break;
    case 'hold': // connect, report, and stream forever until killed
      socket.resume();
      if (opts.flood) {
        const buf = Buffer.alloc(65536, 7);
        const pump = () => {
          while (socket.write(buf));
          socket.once('drain', pump);
        };
        pump();
      }
      break;
    case 'halfclose': {
      // end our side at once, keep reading and verifying until the peer ends
      const check = new PatternChecker();
      socket.on('data', (d) => check.update(d));
      socket.on('end', () => send({ event: 'end', received: check.received, ok: check.ok }));
      socket.end();
      break;
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

if (opts.listen) {
  const server = xenring.createServer({ allowHalfOpen: Boolean(opts.allowHalfOpen) }, (socket) => {
    server.close();
    run(socket);
  });
  server.listen({ port: 0, ringSize: opts.ringSize }, () => send({ event: 'listening', port: server.address().port }));
} else {
  const socket = xenring.connect({ port: opts.port, ringSize: opts.ringSize, allowHalfOpen: Boolean(opts.allowHalfOpen) }, () =>
    send({ event: 'connect' }),
  );
  run(socket);
}
