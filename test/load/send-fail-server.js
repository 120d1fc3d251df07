'use strict';
// An echo server process for handshake-send.test.js: with argv[2] === 'fail',
// its first handshake send meets EAGAIN (the addon's sendMessage answers -1
// once). Reports its port over IPC.
const { native } = require('../../dist/native');

if (process.argv[2] === 'fail') {
  const send = native.sendMessage;
  let failed = false;
  native.sendMessage = (...a) => (failed ? send(...a) : ((failed = true), -1));
}
const xenring = require('../..');

const server = xenring.createServer((s) => {
  s.on('error', () => {});
  s.pipe(s);
});
server.listen(0, () => process.send(server.address().port));
process.on('disconnect', () => process.exit(0));
