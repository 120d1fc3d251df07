'use strict';
// A worker thread that connects over transport 'xen' and then stays busy
// (so it cannot exit by itself): test/xen/teardown.test.js terminates it.
const path = require('node:path');
const { parentPort, workerData } = require('node:worker_threads');
const { xenTransport } = require(path.join(__dirname, '..', '..', 'dist', 'transports', 'xen', 'transport.js'));

xenTransport.connect({ port: workerData.port, domid: workerData.domid }, new AbortController().signal).then(
  (link) => {
    parentPort.postMessage({ ready: true, pool: link.pool !== null });
    setInterval(() => {}, 1000);
  },
  (err) => parentPort.postMessage({ error: `${err.code} ${err.message}` }),
);
