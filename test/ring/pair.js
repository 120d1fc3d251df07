'use strict';
// A ring pair in one process (both endpoints on one memfd), for testing the
// ring's parts alone: no transport, no fd watcher.
const fs = require('node:fs');
const { native } = require('../../dist/native');

function ringPair(order = 12) {
  const size = 4096 + 2 * (1 << order);
  const fd = native.memfdCreate('ring-test', size);
  const m = new native.SharedMapping(fd, size, true);
  fs.closeSync(fd);
  const place = { control: m, controlOffset: 0, left: { mapping: m, offset: 4096, order }, right: { mapping: m, offset: 4096 + (1 << order), order } };
  const server = new native.RingEndpoint({ role: 'server', init: true, ext: true, ...place });
  const client = new native.RingEndpoint({ role: 'client', init: false, ext: true, ...place });
  client.setLive(1);
  return {
    server,
    client,
    close() {
      server.close();
      client.close();
      m.unmap();
    },
  };
}

module.exports = { ringPair };
