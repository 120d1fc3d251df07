'use strict';
// The main demo: stream data from this process to a forked child over a
// xenring ring, verify every byte, then ping-pong small messages, and print
// what was measured. Runs on any Linux machine (local transport).
//
//   npm run demo            # 2 GiB bulk + 20,000 round trips
//   npm run demo -- --quick # 256 MiB + 2,000 round trips
const { fork } = require('node:child_process');
const xenring = require('..'); // in your project: require('xenring')

const quick = process.argv.includes('--quick');
const TOTAL = quick ? 256 * 2 ** 20 : 2 * 2 ** 30;
const CHUNK = 64 * 1024;
const ROUND_TRIPS = quick ? 2000 : 20000;
const PERIOD = 251; // byte i of the stream is i % 251

if (process.argv[2] === 'child') {
  // Receiver: verify the stream, report, then echo ping-pong messages.
  const socket = xenring.connect({ port: Number(process.argv[3]) });
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

const server = xenring.createServer((socket) => {
  server.close();
  const child = childProcess;
  child.once('message', (report) => {
    const gbps = report.received / report.seconds / 1e9;
    console.log(`bulk: ${(report.received / 2 ** 20).toFixed(0)} MiB in ${report.seconds.toFixed(3)} s ` +
      `= ${gbps.toFixed(2)} GB/s (receiver-measured, ${CHUNK / 1024} KiB writes), ` +
      `sampled bytes ${report.ok ? 'verified' : 'CORRUPT'}`);
    if (!report.ok) process.exitCode = 1;
    pingPong(socket);
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

function pingPong(socket) {
  const times = [];
  const msg = Buffer.from('x');
  let t0 = 0n;
  socket.on('data', () => {
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
    if (times.length === ROUND_TRIPS) {
      const sorted = times.slice(ROUND_TRIPS / 10).sort((a, b) => a - b); // first 10% is warm-up
      const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
      console.log(`ping-pong: ${sorted.length} round trips of 1 byte after warm-up: ` +
        `median ${q(0.5).toFixed(1)} µs, p99 ${q(0.99).toFixed(1)} µs`);
      socket.end();
      return;
    }
    t0 = process.hrtime.bigint();
    socket.write(msg);
  });
  t0 = process.hrtime.bigint();
  socket.write(msg);
}

let childProcess;
server.listen(0, () => {
  const { port, address } = server.address();
  console.log(`xenring demo: local transport, rendezvous ${address}, child process receives`);
  childProcess = fork(__filename, ['child', String(port), ...(quick ? ['--quick'] : [])]);
  childProcess.on('exit', (code) => {
    if (code !== 0) {
      console.error(`child exited with ${code}`);
      process.exitCode = 1;
    }
  });
});
