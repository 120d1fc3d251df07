'use strict';
// Issue 12 item 1: no native call may abort the process while a worker that
// uses xenring is terminated, whatever it is doing. The workers run in a
// separate harness process (an abort there fails the test instead of killing
// mocha) against an echo server in a third process; after every round the
// harness's fds and memfd mappings are back where they started and the server
// has seen every terminated worker's connection hang up.
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
require('../helpers/fixtures');

const ROUNDS = Number(process.env.XENRING_TERMINATE_ROUNDS || 4);
const PHASES = ['connecting', 'mid-transfer', 'destroy-in-data', 'exit-in-data', 'throw-in-data', 'listening', 'armed', 'armed-streaming', 'random'];

function forkQuiet(file, args) {
  const child = fork(path.join(__dirname, file), args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  child.output = () => output;
  return child;
}

async function serverStats(server) {
  server.send({ cmd: 'stats' });
  const [m] = await once(server, 'message');
  return m;
}

describe('process safety: terminating workers', function () {
  let server;
  let harness;
  let harnessExited;
  before(async function () {
    server = forkQuiet('echo-server.js', []);
    const [{ port }] = await once(server, 'message');
    harness = forkQuiet('terminate-child.js', [String(port), String(ROUNDS)]);
    harnessExited = once(harness, 'exit');
  });
  after(async function () {
    server.disconnect();
    if (harness.connected) harness.disconnect();
    const [code, signal] = await harnessExited;
    assert.deepEqual([code, signal], [0, null], harness.output());
    assert.doesNotMatch(harness.output(), /FATAL|Aborted|Segmentation/);
  });

  for (const phase of PHASES) {
    it(`${phase}: ${ROUNDS} workers terminated, no abort, nothing leaked, the peer sees each hang-up`, async function () {
      harness.send({ phase });
      const report = await Promise.race([
        once(harness, 'message').then(([m]) => m),
        harnessExited.then(([code, signal]) => {
          throw new Error(`harness died (code ${code}, signal ${signal}):\n${harness.output()}`);
        }),
      ]);
      const want = phase === 'throw-in-data' ? { threw: ROUNDS } : { exited: ROUNDS };
      assert.deepEqual(report.results, want, harness.output());
      assert.deepEqual(report.after, report.before, `fds and memfd mappings back to the start; left:\n${report.left.join('\n')}`);
      // The harness is still alive: the hang-ups come from the terminated
      // workers' own fds, closed at their teardown.
      let stats = await serverStats(server);
      for (let i = 0; i < 100 && stats.open > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        stats = await serverStats(server);
      }
      assert.equal(stats.open, 0, 'connections of terminated workers still open at the server');
    });
  }
});
