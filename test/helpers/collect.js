'use strict';
// Garbage collection for tests that watch buffers come back (recycled slabs,
// pool views): V8 collects them in minor GCs too, and their finalizers run
// from the event loop afterwards, so each collection is followed by two loop
// turns. Needs node --expose-gc (the mocha config and the test children set it).

/** Two turns of the event loop: finalizers queued by a GC run in them. */
const settle = () => new Promise((r) => setImmediate(r)).then(() => new Promise((r) => setImmediate(r)));

/** Collects with minor GCs only (three, each followed by settle()). */
async function minorGc() {
  for (let i = 0; i < 3; i++) {
    global.gc({ type: 'minor' });
    await settle();
  }
}

/** minorGc(), then a full GC and settle(): everything unreachable is collected and finalized. */
async function collectAll() {
  await minorGc();
  global.gc();
  await settle();
}

module.exports = { settle, minorGc, collectAll };
