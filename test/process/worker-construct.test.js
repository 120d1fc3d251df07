'use strict';
// A worker terminated while it makes pool objects leaves none of its pool
// pages mapped. Once a worker is being terminated, every N-API call that may
// run JS fails; a native constructor that throws after it mapped pages (or
// took a reference on them) never runs its destructor, so those pages stayed
// mapped in this process for good (test/process/worker-terminate.test.js saw
// one 64 MiB pool region left about once in 300 random terminations; here a
// worker does nothing else, so most terminations land in a constructor).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const DIST = path.resolve(__dirname, '..', '..', 'dist');

/** Inodes of the pool memfds mapped in this process. */
const mappedInodes = () =>
  fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('memfd:xenring-pool'))
    .map((l) => l.split(/\s+/)[4]);

/** `body` runs in a loop in a worker (`fd`: a 1 MiB pool memfd, `mapping`: one PoolMapping of it), terminated 5 ms after it started. */
function terminatedWhile(body) {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { poolNative } = require(workerData.dist + '/pool/native_pool');
    const { native } = require(workerData.dist + '/native');
    const fd = native.memfdCreate('xenring-pool', 1 << 20);
    const mapping = new poolNative.PoolMapping(fd, 1 << 20, true);
    parentPort.postMessage(String(require('node:fs').fstatSync(fd).ino));
    for (;;) { ${body} }
  `;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { dist: DIST } });
    let inode = null;
    w.once('message', (ino) => {
      inode = ino;
      setTimeout(() => w.terminate(), 5);
    });
    w.once('error', reject);
    w.once('exit', () => resolve(inode));
  });
}

describe('process safety: a worker terminated inside a pool constructor', function () {
  this.timeout(60000);

  for (const [what, body, rounds] of [
    ['PoolMapping', 'new poolNative.PoolMapping(fd, 1 << 20, true).close();', 24],
    ['PoolQueue', "new poolNative.PoolQueue({ mapping, slots: 64, words: 2, limit: 4096, offset: 0, role: 'producer', init: false });", 60],
  ]) {
    it(`new ${what}() in a loop, terminated ${rounds} times: none of the worker's pool pages stay mapped`, async function () {
      const left = [];
      for (let i = 0; i < rounds; i++) {
        const inode = await terminatedWhile(body);
        assert.ok(inode, 'the worker started');
        // The worker has exited: its environment was torn down, every
        // finalizer has run, so its pages are unmapped now or never.
        if (mappedInodes().includes(inode)) left.push(i);
      }
      assert.deepEqual(left, [], `rounds whose pool pages stayed mapped after the worker exited`);
    });
  }
});
