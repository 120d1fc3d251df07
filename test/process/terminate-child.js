'use strict';
// Runs in its own process (an abort must not take mocha down): starts worker
// threads that use xenring against an echo server in another process and
// terminates them at one phase each, `rounds` times per phase. Stays alive
// (its own fds open) until the parent disconnects.
//   fork terminate-child.js <port> <rounds>
const fs = require('node:fs');
const { Worker } = require('node:worker_threads');

const [port, rounds] = [Number(process.argv[2]), Number(process.argv[3])];
const pkg = require.resolve('../..');
const countFds = () => fs.readdirSync('/proc/self/fd').length;
const memfdMaps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('memfd:xenring'));

const prelude = `
  const { parentPort, workerData } = require('node:worker_threads');
  const xenring = require(workerData.pkg);
  const post = (m) => parentPort.postMessage(m);
  const block = Buffer.alloc(256 << 10, 0x5a);
  const pump = (s) => { const go = () => { while (!s.destroyed && s.write(block)); }; s.on('drain', go); go(); };
`;
// Each phase posts 'now' at the moment the parent should terminate it.
const phases = {
  // terminated while the handshake is in flight
  connecting: `const s = xenring.connect({ port: workerData.port }); s.on('error', () => {}); post('now');`,
  // terminated with both directions streaming
  'mid-transfer': `
    const s = xenring.connect({ port: workerData.port }, () => pump(s));
    s.on('error', () => {});
    s.once('data', () => post('now'));`,
  // the program: echo 1 MiB, destroy inside 'data', post, terminated
  'destroy-in-data': `
    const s = xenring.connect({ port: workerData.port }, () => s.write(Buffer.alloc(1 << 20, 1)));
    let got = 0;
    s.on('error', () => {});
    s.on('data', (d) => { got += d.length; if (got >= (256 << 10)) { s.destroy(); post('now'); } });`,
  // the worker ends itself from inside a native callback
  'exit-in-data': `
    const s = xenring.connect({ port: workerData.port }, () => pump(s));
    s.on('data', () => process.exit(0));`,
  // an exception thrown by a listener ends the worker with an error
  'throw-in-data': `
    const s = xenring.connect({ port: workerData.port }, () => pump(s));
    s.on('data', () => { throw new Error('listener threw'); });`,
  // a listening server in the worker, with a connection of its own streaming
  listening: `
    const server = xenring.createServer((c) => c.pipe(c));
    server.listen(0, () => {
      const s = xenring.connect({ port: server.address().port }, () => pump(s));
      s.on('error', () => {});
      s.once('data', () => post('now'));
    });`,
  // spinMicros 0: terminated while its reader sleeps with the next read armed
  // (the wait fd's watcher would read natively), then while the echoes of a
  // stream wake it (and that read runs) over and over
  armed: `
    const s = xenring.connect({ port: workerData.port, spinMicros: 0 }, () => s.write('x'));
    s.on('error', () => {});
    s.once('data', () => setTimeout(() => post('now'), 5));`,
  'armed-streaming': `
    const s = xenring.connect({ port: workerData.port, spinMicros: 0 }, () => pump(s));
    s.on('error', () => {});
    s.once('data', () => post('now'));`,
  // terminated at a random moment (0-20 ms after start), whatever it is doing
  random: `
    const server = xenring.createServer((c) => c.pipe(c));
    server.listen(0);
    const s = xenring.connect({ port: workerData.port }, () => pump(s));
    s.on('error', () => {});
    post('go');`,
};

function runOne(phase) {
  return new Promise((resolve) => {
    const w = new Worker(prelude + phases[phase], { eval: true, workerData: { pkg, port } });
    let outcome = 'exited';
    w.on('error', (e) => {
      // An unexpected error keeps its stack: the report says where it came from.
      outcome = e.message === 'listener threw' ? 'threw' : `error: ${e?.stack ?? e}`;
    });
    w.on('message', (m) => {
      if (m === 'now') w.terminate();
      else if (m === 'go') setTimeout(() => w.terminate(), Math.random() * 20);
    });
    w.on('exit', () => resolve(outcome));
  });
}

// The parent sends { phase } for each phase to run; this process answers with
// that phase's outcomes and its fds / memfd mappings before and after.
let warm = null;
process.on('message', async ({ phase }) => {
  warm ??= runOne('mid-transfer'); // the addon and modules load once per process
  await warm;
  const mapsBefore = memfdMaps();
  const before = { fds: countFds(), memfdMaps: mapsBefore.length };
  const results = {};
  for (let i = 0; i < rounds; i++) {
    const outcome = await runOne(phase);
    results[outcome] = (results[outcome] || 0) + 1;
  }
  await new Promise((r) => setTimeout(r, 50)); // let closing handles finish
  const mapsAfter = memfdMaps();
  const after = { fds: countFds(), memfdMaps: mapsAfter.length };
  // Name and size of any mapping left say what it was (a ring, a pool region).
  process.send({ phase, results, before, after, left: mapsAfter.filter((l) => !mapsBefore.includes(l)) });
});
process.on('disconnect', () => process.exit(0));
