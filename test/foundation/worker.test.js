'use strict';
// The addon polls on the loop of the environment that uses it, so sockets
// work inside worker threads (and several workers at once).
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { Worker } = require('node:worker_threads');
require('../helpers/fixtures');
const xenring = require('../..');
const { PatternChecker } = require('../helpers/pattern');

const workerSource = `
  const { parentPort, workerData } = require('node:worker_threads');
  const xenring = require(workerData.pkg);
  const { writePattern } = require(workerData.pattern);
  const socket = xenring.connect({ port: workerData.port }, () => {
    writePattern(socket, workerData.total, 65536, () => socket.end());
  });
  socket.resume();
  socket.on('close', (hadError) => parentPort.postMessage({ hadError, written: socket.bytesWritten }));
`;

describe('foundation: worker threads', function () {
  it('three workers each stream 32 MiB to a server on the main thread', async function () {
    const total = 32 << 20;
    const results = [];
    const server = xenring.createServer((socket) => {
      const check = new PatternChecker();
      socket.on('data', (d) => check.update(d));
      socket.on('end', () => results.push(check));
    });
    server.listen(0);
    await once(server, 'listening');
    const workers = [0, 1, 2].map(
      () =>
        new Worker(workerSource, {
          eval: true,
          workerData: {
            pkg: require.resolve('../..'),
            pattern: require.resolve('../helpers/pattern'),
            port: server.address().port,
            total,
          },
        }),
    );
    const exits = workers.map((w) => once(w, 'exit'));
    const reports = await Promise.all(workers.map((w) => once(w, 'message').then(([m]) => m)));
    assert.deepEqual(await Promise.all(exits), [[0], [0], [0]]);
    server.close();
    assert.deepEqual(reports, [0, 1, 2].map(() => ({ hadError: false, written: total })));
    assert.equal(results.length, 3);
    for (const check of results) assert.deepEqual([check.received, check.ok], [total, true]);
  });
});
