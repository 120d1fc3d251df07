'use strict';
// A connected xenring pair through a 64 KiB ring, both ends in this process
// (the runs tests): the reader checks every byte, and releases each Buffer
// or, with `hold`, keeps it (a view then keeps its run in flight while a
// test reads the sender's counts).
const { once } = require('node:events');
const xenring = require('../..');
const { PatternChecker } = require('../helpers/pattern');
const { listenOnce } = require('../helpers/fixtures');
const { gatesOpen } = require('./gates');

const RING = 64 * 1024;

/**
 * Mocha hooks for a describe() whose cases need runs on a fresh connection:
 * a writer made meanwhile in this process may open runs (and copy ordinary
 * Buffers into the pool) from its first write (gates.js). A forked peer's
 * writers keep the default.
 */
function runsFromTheStart() {
  gatesOpen();
}

async function localPair({ hold = false } = {}) {
  const { server, port, accepted } = await listenOnce();
  const c = xenring.connect({ port, ringSize: RING });
  await once(c, 'connect');
  const s = await accepted;
  server.close();
  const checker = new PatternChecker();
  const held = [];
  s.on('data', (d) => {
    checker.update(d);
    if (hold) held.push(d);
    else s.release(d);
  });
  const ended = once(s, 'end');
  return { c, s, checker, held, ended };
}

module.exports = { RING, localPair, runsFromTheStart };
