'use strict';
// The main demo: stream data from this process to a forked child over a
// xenring ring, verify every sampled byte, then ping-pong small messages; then
// the same over a UNIX domain socket (node:net) in the same run, so the
// figures can be judged against this machine's own baseline and its load.
// Runs on any Linux machine (local transport).
//
//   npm run demo            # 2 GiB bulk + 20,000 round trips, each way
//   npm run demo -- --quick # 256 MiB + 2,000 round trips
const { fork } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const xenring = require('..'); // in your project: require('xenring')

const quick = process.argv.includes('--quick');
const TOTAL = quick ? 256 * 2 ** 20 : 2 * 2 ** 30;
const CHUNK = 64 * 1024;
const ROUND_TRIPS = quick ? 2000 : 20000;
const PERIOD = 251; // byte i of the stream is i % 251

// The two ways of connecting: xenring (a ring port) and node:net over a UNIX socket (a path).
const KINDS = {
  xenring: { label: 'xenring', connect: (addr) => xenring.connect({ port: Number(addr) }), createServer: (fn) => xenring.createServer(fn) },
  uds: { label: 'UDS    ', connect: (addr) => net.connect(addr), createServer: (fn) => net.createServer(fn) },
};

if (process.argv[2] === 'child') {
  // Receiver: verify the stream, report, then echo ping-pong messages.
  const socket = KINDS[process.argv[3]].connect(process.argv[4]);
  let received = 0;
  let ok = true;
  let first = 0;
  let phase = 'bulk';
  socket.on('data', (d) => {
    if (phase === 'echo') return void socket.write(d);
    if (received === 0) first = process.hrtime.bigint();
    for (let i = 0; i < d.length; i += 4093) if (d[i] !== (received + i) % PERIOD) ok = false;
    if (d[d.length - 1] !== (received + d.length - 1) % PERIOD) ok = false;
    received += d.length;
    if (received === TOTAL) {
      const seconds = Number(process.hrtime.bigint() - first) / 1e9;
      phase = 'echo';
      process.send({ received, ok, seconds });
    }
  });
  socket.on('end', () => socket.end());
  return;
}

/** Runs the bulk transfer and the ping-pong over one kind of connection; resolves { gbps, median, p99 }. */
function runCase(kind) {
  const K = KINDS[kind];
  return new Promise((resolve, reject) => {
    let child;
    const result = {};
    const server = K.createServer((socket) => {
      server.close();
      child.once('message', (report) => {
        result.gbps = report.received / report.seconds / 1e9;
        console.log(`${K.label} bulk: ${(report.received / 2 ** 20).toFixed(0)} MiB in ${report.seconds.toFixed(3)} s ` +
          `= ${result.gbps.toFixed(2)} GB/s (receiver-measured, ${CHUNK / 1024} KiB writes), ` +
          `sampled bytes ${report.ok ? 'verified' : 'CORRUPT'}`);
        if (!report.ok) process.exitCode = 1;
        pingPong(socket, K.label, (median, p99) => Object.assign(result, { median, p99 }));
      });
      // Sender: pattern chunks, honouring backpressure.
      const pattern = Buffer.alloc(CHUNK + PERIOD);
      for (let i = 0; i < pattern.length; i++) pattern[i] = i % PERIOD;
      let sent = 0;
      const pump = () => {
        while (sent < TOTAL) {
          const start = sent % PERIOD;
          const ok = socket.write(pattern.subarray(start, start + CHUNK));
          sent += CHUNK;
          if (!ok) return void socket.once('drain', pump);
        }
      };
      pump();
    });
    const udsPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-demo-')), 'uds.sock');
    server.listen(kind === 'uds' ? udsPath : 0, () => {
      const addr = kind === 'uds' ? udsPath : String(server.address().port);
      if (kind === 'xenring') console.log(`xenring demo: local transport, rendezvous ${server.address().address}, child process receives`);
      child = fork(__filename, ['child', kind, addr, ...(quick ? ['--quick'] : [])]);
      child.on('exit', (code) => {
        fs.rmSync(path.dirname(udsPath), { recursive: true, force: true });
        if (code !== 0) return reject(new Error(`${kind} child exited with ${code}`));
        resolve(result);
      });
    });
  });
}

function pingPong(socket, label, done) {
  const times = [];
  const msg = Buffer.from('x');
  let t0 = 0n;
  socket.on('data', () => {
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
    if (times.length === ROUND_TRIPS) {
      const sorted = times.slice(ROUND_TRIPS / 10).sort((a, b) => a - b); // first 10% is warm-up
      const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
      console.log(`${label} ping-pong: ${sorted.length} round trips of 1 byte after warm-up: ` +
        `median ${q(0.5).toFixed(1)} µs, p99 ${q(0.99).toFixed(1)} µs`);
      done(q(0.5), q(0.99));
      socket.end();
      return;
    }
    t0 = process.hrtime.bigint();
    socket.write(msg);
  });
  t0 = process.hrtime.bigint();
  socket.write(msg);
}

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

(async () => {
  const cpus = os.cpus();
  console.log(`machine: ${cpus.length} CPUs (${cpus[0] ? cpus[0].model.trim() : 'unknown'}), load average ${load()} (1, 5, 15 min)`);
  const ring = await runCase('xenring');
  const uds = await runCase('uds');
  console.log(`same run, xenring vs UDS: bulk ${(ring.gbps / uds.gbps).toFixed(1)}× the throughput, ` +
    `round trip ${(ring.median / uds.median).toFixed(2)}× the time (median)`);
  console.log(`load average now ${load()}: with a load near or above the CPU count both figures drop; ` +
    'the ratios are what to compare (README, Performance, has a quiet-machine run)');
})().catch((e) => {
  console.error(e.message);
  process.exitCode = 1;
});
