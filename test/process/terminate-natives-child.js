'use strict';
// Runs in its own process (an abort must not take mocha down): worker threads
// that create native objects over a memfd pool region in a tight loop are
// terminated at a random moment, several at once, so that the termination
// lands inside the native calls (between one N-API call and the next). Stays
// alive until the parent disconnects.
//   fork terminate-natives-child.js
// The parent sends { work, rounds }; this process answers with the outcomes
// and its memfd mappings before and after (and the lines of any left).
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const nativePath = path.join(__dirname, '../../dist/native.js');
const CONCURRENT = 4;
const memfdMaps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('memfd:xenring'));

const prelude = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { native } = require(workerData.nativePath);
  const SIZE = 1 << 20;
  const fd = native.memfdCreate('xenring-pool', SIZE);
  const mapping = new native.PoolMapping(fd, SIZE, true);
  native.closeFd(fd);
  const queueOptions = (role) => ({ mapping, offset: 0, slots: 16, words: 4, role, init: false, limit: SIZE - 4096 });
  parentPort.postMessage('go');
`;
// Each body loops until the worker is terminated.
const works = {
  // the receiver's payload views (PoolReceiver.take: ViewReturns.view), both kinds
  'returning views': `
    const returns = new native.ViewReturns(() => {});
    for (let i = 0; ; i++) returns.view(mapping, 4096 + (i & 7) * 4096, 4096, i, (i & 1) === 0)[0] = i;`,
  // the sender's loans (PoolSender.allocBuffer: PoolMapping.view), some detached as when sent
  'loan views': `
    for (let i = 0; ; i++) { const v = mapping.view(4096, 4096); if (i & 1) native.detachView(v.buffer); }`,
  // a connection's queues and the watched peer index (PoolReceiver, RingReader.bindWatch)
  'queues': `
    for (let i = 0; ; i++) { const q = new native.PoolQueue(queueOptions(i & 1 ? 'producer' : 'consumer')); q.peerIndex(); if (i & 2) q.close(); }`,
  // whole pool regions mapped and dropped (a connection's set-up and close)
  'regions': `
    const rfd = native.memfdCreate('xenring-pool', SIZE);
    for (let i = 0; ; i++) { const m = new native.PoolMapping(rfd, SIZE, true); m.view(0, 4096); if (i & 1) m.close(); }`,
};

function runOne(work) {
  return new Promise((resolve) => {
    const w = new Worker(prelude + works[work], { eval: true, workerData: { nativePath } });
    let outcome = 'exited';
    w.on('error', (e) => (outcome = `error: ${e?.stack ?? e}`));
    w.on('message', () => setTimeout(() => w.terminate(), Math.random() * 8));
    w.on('exit', () => resolve(outcome));
  });
}

let warm = null;
process.on('message', async ({ work, rounds }) => {
  warm ??= runOne('regions'); // the addon loads once per process
  await warm;
  const before = memfdMaps();
  const results = {};
  let started = 0;
  const lane = async () => {
    while (started < rounds) {
      started++;
      const outcome = await runOne(work);
      results[outcome] = (results[outcome] || 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT }, lane));
  await new Promise((r) => setTimeout(r, 50)); // as terminate-child.js
  const after = memfdMaps();
  process.send({ work, results, before: before.length, after: after.length, left: after.filter((l) => !before.includes(l)) });
});
process.on('disconnect', () => process.exit(0));
