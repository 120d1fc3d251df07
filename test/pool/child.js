'use strict';
// The receiving process of the pool tests: maps the ring memfd (fd 4) and the
// pool region (fd 5) its parent created, reads the merged stream, verifies
// every byte against the position pattern and reports over IPC.
//   opts.release: 'explicit' (release() each view after checking it),
//                 'gc' (drop views; the collector returns them),
//                 'hold' (keep every view, close, then re-check them),
//                 'none' (opts.views false: private copies, nothing to release)
const { PatternChecker } = require('../helpers/pattern');
const { attachRing, attachPool, MixedReader, pump } = require('./pair');
const { poolNative } = require('../../dist/pool');

const opts = JSON.parse(process.argv[2]);
const send = (m) => process.send(m);

async function main() {
  const { ep } = attachRing(4, opts, 'client');
  let failure = null;
  const receiver = attachPool(5, opts, 'receiver', { views: opts.views !== false, onError: (e) => (failure = e) });
  const check = new PatternChecker();
  const held = [];
  let sinceGc = 0;
  const reader = new MixedReader(ep, receiver, (chunk, byRef) => {
    check.update(chunk);
    if (!byRef) return;
    if (opts.views === false && receiver.release(chunk)) throw new Error('a private copy was taken for a view');
    if (opts.release === 'explicit' && !receiver.release(chunk)) throw new Error('release() refused a held view');
    if (opts.release === 'hold') held.push({ chunk, pos: check.received - chunk.length });
  });
  await pump(
    () => {
      if (failure) throw failure;
      return reader.step();
    },
    () => check.received >= opts.total || !check.ok,
    () => {
      // Idle: the writer is waiting for pool pages. Let the collector find dropped views.
      if (opts.release === 'gc' && ++sinceGc % 5 === 0) global.gc();
    },
  );
  const report = { event: 'done', received: check.received, ok: check.ok, badOffset: check.badOffset, stats: receiver.stats };
  if (opts.release === 'gc') {
    // The tail of the stream may still be held by uncollected views: collect them.
    for (let i = 0; i < 20 && receiver.stats.held > 0; i++) {
      global.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    report.stats = { ...receiver.stats };
  }
  send(report);
  if (opts.release === 'hold') {
    receiver.close();
    ep.close();
    await new Promise((r) => process.once('message', r)); // the parent has closed and unmapped its side
    const recheck = held.every(({ chunk, pos }) => {
      const c = new PatternChecker();
      c.received = pos;
      c.update(chunk);
      return c.ok;
    });
    const aliveHolding = poolNative.poolRegionsAlive();
    held.length = 0;
    for (let i = 0; i < 20 && poolNative.poolRegionsAlive() > 0; i++) {
      global.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    send({ event: 'afterClose', recheck, aliveHolding, aliveAfter: poolNative.poolRegionsAlive(), stats: receiver.stats });
  }
  process.disconnect();
}

main().catch((err) => {
  send({ event: 'error', code: err.code, message: err.message });
  process.disconnect();
});
