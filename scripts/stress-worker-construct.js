'use strict';
// npm run stress:worker-construct [-- --runs N] [--cuts N] [--root DIR]
// Hunts crashes around native construction in workers being terminated (not
// part of npm test: a crash shows up in a few runs of many, never on demand).
//  1. Runs test/process/worker-construct.test.js --runs times (default 20),
//     each in its own process, and counts the runs that failed or died by a
//     signal (the CI segfault).
//  2. Cuts constructors short at known points: a worker constructs a
//     PoolQueue or a RingEndpoint whose options object has one getter that
//     blocks (Atomics.wait) until the parent terminates the worker; --cuts
//     (default 20) workers per option, in one child process per option, which
//     must exit cleanly.
// Each child also checks that none of its workers' pages stay mapped.
// --root DIR runs another built checkout's test and dist (an A/B against an
// older commit). Exits 1 if any run failed or crashed.
const path = require('node:path');
const { execFile } = require('node:child_process');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(opt('runs', 20));
const cuts = Number(opt('cuts', 20));
const root = path.resolve(opt('root', path.join(__dirname, '..')));

function run(file, argv, cwd) {
  return new Promise((resolve) => {
    execFile(process.execPath, [...argv.node, file, ...argv.args], { cwd, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, signal: err ? err.signal : null, output: `${stdout}${stderr}` });
    });
  });
}

const verdict = (r) => (r.signal ? `died (${r.signal})` : r.code !== 0 ? `failed (exit ${r.code})` : 'ok');

// The child of part 2: `node stress-worker-construct.js --cut-child ROOT CTOR OPTION COUNT`.
function cutChild([dir, ctor, option, count]) {
  const { Worker } = require('node:worker_threads');
  const code = `
    const { parentPort, workerData: w } = require('node:worker_threads');
    const { native } = require(w.dir + '/dist/native');
    const { poolNative } = require(w.dir + '/dist/pool/native_pool');
    const size = 4096 + 2 * 4096;
    const fd = native.memfdCreate('xenring-stress', size);
    const opts = w.ctor === 'PoolQueue'
      ? { mapping: new poolNative.PoolMapping(fd, size, true), slots: 64, words: 2, limit: 4096, offset: 0, role: 'producer', init: true }
      : (() => {
          const m = new native.SharedMapping(fd, size, true);
          return { role: 'server', init: true, ext: true, control: m, controlOffset: 0,
            left: { mapping: m, offset: 4096, order: 12 }, right: { mapping: m, offset: 8192, order: 12 } };
        })();
    const value = opts[w.option];
    const flag = new Int32Array(w.sab);
    Object.defineProperty(opts, w.option, { enumerable: true, get() {
      parentPort.postMessage('cut here');
      Atomics.wait(flag, 0, 0); // until worker.terminate()
      return value;
    } });
    if (w.ctor === 'PoolQueue') new poolNative.PoolQueue(opts);
    else new native.RingEndpoint(opts);
    parentPort.postMessage('constructed: the getter never blocked');
  `;
  (async () => {
    for (let i = 0; i < Number(count); i++) {
      const w = new Worker(code, { eval: true, workerData: { dir, ctor, option, sab: new SharedArrayBuffer(4) } });
      w.once('message', (m) => (m === 'cut here' ? w.terminate() : process.exit(3)));
      w.once('error', (e) => {
        console.error(e);
        process.exit(2);
      });
      await new Promise((r) => w.once('exit', r));
      if (global.gc) global.gc();
    }
    // Every worker has exited: its teardown unmapped whatever it mapped.
    const left = require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('xenring-stress'));
    if (left.length > 0) {
      console.error(`still mapped after the workers exited:\n${left.join('\n')}`);
      process.exit(4);
    }
  })();
}

async function main() {
  let bad = 0;
  console.log(`root ${root}; load ${require('node:os').loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const mocha = path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');
  const tally = {};
  for (let i = 1; i <= runs; i++) {
    const r = await run(mocha, { node: ['--expose-gc'], args: ['--no-config', '--timeout', '120000', '--exit', '-r', 'test/helpers/root-hooks.js', 'test/process/worker-construct.test.js'] }, root);
    const v = verdict(r);
    tally[v] = (tally[v] || 0) + 1;
    if (v !== 'ok') {
      bad++;
      const lastTest = r.output.split('\n').filter((l) => l.includes('✔')).pop();
      console.log(`run ${i}: ${v}; last test passed: ${lastTest ? lastTest.trim() : 'none'}`);
    }
  }
  console.log(`worker-construct.test.js, ${runs} runs: ${Object.entries(tally).map(([k, n]) => `${n} ${k}`).join(', ')}`);
  const options = {
    PoolQueue: ['role', 'slots', 'words', 'limit', 'offset', 'init', 'mapping'],
    RingEndpoint: ['role', 'ext', 'init', 'control', 'controlOffset', 'left', 'right'],
  };
  for (const [ctor, names] of Object.entries(options)) {
    for (const option of names) {
      const r = await run(__filename, { node: ['--expose-gc'], args: ['--cut-child', root, ctor, option, String(cuts)] }, root);
      const v = verdict(r);
      if (v !== 'ok') bad++;
      console.log(`new ${ctor}() cut at options.${option}, ${cuts} workers: ${v}${v === 'ok' ? '' : `\n${r.output.slice(-2000)}`}`);
    }
  }
  process.exitCode = bad ? 1 : 0;
}

if (args[0] === '--cut-child') cutChild(args.slice(1));
else main();
