'use strict';
// A vchan peer in its own process, for peer-death tests:
//   node test/xen/peer.js server|client <domid> <path> [hold|pump <send> <recv>]
// prints "ready" once connected (client) or published (server), then holds the
// link open until killed (hold) or moves pattern bytes and exits (pump).
const path = require('node:path');
const { vchanServer, vchanClient } = require(path.join(__dirname, '..', '..', 'dist', 'transports', 'xen', 'handshake.js'));
const { pump } = require('./helpers');

const [role, domid, xsPath, mode = 'hold', send = '0', recv = '0'] = process.argv.slice(2);
(async () => {
  const link =
    role === 'server'
      ? await vchanServer({ domid: Number(domid), path: xsPath, readSize: 65536, writeSize: 65536 })
      : await vchanClient({ domid: Number(domid), path: xsPath, timeout: 120000 });
  console.log('ready');
  if (mode === 'hold') {
    setInterval(() => {}, 1 << 30);
    return;
  }
  const r = await pump(link, { send: Number(send), recv: Number(recv) });
  console.log(`done sent=${r.sent} recv=${r.recv}`);
  link.release();
  process.exit(0);
})().catch((err) => {
  console.error(`peer ${role} failed: ${err.code || ''} ${err.message}`);
  process.exit(1);
});
