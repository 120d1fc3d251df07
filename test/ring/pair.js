'use strict';
// A ring pair in one process (both endpoints on one memfd), for testing the
// ring's parts alone: no transport, no fd watcher. `wired`: each endpoint
// also gets an eventfd notifier (as the local transport's pipes), so a test
// can count the kicks with ack(), or watch one side's wait fd (serverWaitFd,
// clientWaitFd). `keepFd`: the memfd stays open (`fd`) so a test can scribble
// on the control page as a hostile peer would; close() closes it.
const fs = require('node:fs');
const { native } = require('../../dist/native');

function ringPair(order = 12, { wired = false, keepFd = false } = {}) {
  const size = 4096 + 2 * (1 << order);
  const fd = native.memfdCreate('ring-test', size);
  const m = new native.SharedMapping(fd, size, true);
  if (!keepFd) fs.closeSync(fd);
  const place = { control: m, controlOffset: 0, left: { mapping: m, offset: 4096, order }, right: { mapping: m, offset: 4096 + (1 << order), order } };
  const server = new native.RingEndpoint({ role: 'server', init: true, ext: true, ...place });
  const client = new native.RingEndpoint({ role: 'client', init: false, ext: true, ...place });
  const fds = wired ? [native.eventfdCreate(), native.eventfdCreate()] : [];
  if (wired) {
    const [c2s, s2c] = fds;
    server.setNotifier(native.eventfdNotifier(s2c, c2s));
    client.setNotifier(native.eventfdNotifier(c2s, s2c));
  }
  client.setLive(1);
  return {
    server,
    client,
    fd: keepFd ? fd : -1,
    serverWaitFd: wired ? fds[0] : -1,
    clientWaitFd: wired ? fds[1] : -1,
    close() {
      server.close();
      client.close();
      m.unmap();
      for (const f of fds) fs.closeSync(f);
      if (keepFd) fs.closeSync(fd);
    },
  };
}

module.exports = { ringPair };
