'use strict';
// A connected xenring pair through a 64 KiB ring, both ends in this process
// (the runs tests): the reader checks every byte, and releases each Buffer
// or, with `hold`, keeps it (a view then keeps its run in flight while a
// test reads the sender's counts).
const { once } = require('node:events');
const xenring = require('../..');
const { PatternChecker } = require('../helpers/pattern');
const { listenOnce } = require('../helpers/fixtures');

const RING = 64 * 1024;

/**
 * Mocha hooks for a describe() whose cases need runs on a fresh connection:
 * a writer made meanwhile may open runs from its first write (by default
 * only after its ring has been written through RUNS_AFTER_RING_PASSES times).
 */
function runsFromTheStart() {
  const { runsGate, RUNS_AFTER_RING_PASSES } = require('../../dist/ring/writer');
  before(() => (runsGate.ringPasses = 0));
  after(() => (runsGate.ringPasses = RUNS_AFTER_RING_PASSES));
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
