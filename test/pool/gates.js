'use strict';
// A writer made on a fresh connection opens no run and copies no ordinary
// Buffer into pool pages it never wrote until its ring has been written
// through RUNS_AFTER_RING_PASSES times (runs onto pages never written:
// COLD_RUNS_AFTER_RING_PASSES) (lib/ring/writer.ts runsGate). Tests
// of those paths open the gates: in this process (mocha hooks, or around
// one case) and in a forked peer (openGates() in its script).
const { runsGate, RUNS_AFTER_RING_PASSES, COLD_RUNS_AFTER_RING_PASSES } = require('../../dist/ring/writer');

/** Writers made from now on in this process run and copy into the pool from their first write. */
function openGates() {
  runsGate.ringPasses = 0;
  runsGate.coldCopyPasses = 0;
  runsGate.coldRunPasses = 0;
}

function closeGates() {
  runsGate.ringPasses = RUNS_AFTER_RING_PASSES;
  runsGate.coldCopyPasses = RUNS_AFTER_RING_PASSES;
  runsGate.coldRunPasses = COLD_RUNS_AFTER_RING_PASSES;
}

/** Mocha hooks: the gates open for a whole describe(). */
function gatesOpen() {
  before(openGates);
  after(closeGates);
}

/** Runs `fn` (async) with the gates open. */
async function withGatesOpen(fn) {
  openGates();
  try {
    return await fn();
  } finally {
    closeGates();
  }
}

module.exports = { openGates, closeGates, gatesOpen, withGatesOpen };
