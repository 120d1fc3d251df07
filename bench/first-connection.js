'use strict';
// What a short-lived client pays: a new Node process that loads the library
// (or node:net), makes one connection, echoes one byte and exits, as a
// command-line tool or a cron job does. Per sample, measured inside that
// process: the require, connect() until 'connect', the first 1-byte round
// trip; and the whole process from spawn to exit, as seen from here. The
// server is one forked process per transport, warmed up by earlier samples
// (rounds alternate the transports; the first round is not recorded).
//
//   node bench/first-connection.js [--samples 15] [--transports xenring,uds,tcp] [--json FILE]
//   XENRING_BENCH_BEFORE=/path/to/built/checkout node bench/first-connection.js --transports xenring,xenring-before,tcp

const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { TRANSPORTS, listen, removeSocketFile } = require('./transports');
const { LIB_PATH, optionValue } = require('./common');

function usage(status) {
  process.stdout.write(`usage: node bench/first-connection.js [--samples N] [--transports LIST] [--json FILE]
  --samples N        fresh client processes per transport (default 15)
  --transports LIST  from: xenring, uds, tcp, xenring-before (default xenring,uds,tcp;
                     xenring-before: the build in $XENRING_BENCH_BEFORE)
  --json FILE        append one JSON line per sample
`);
  process.exit(status);
}

// ---- the server (a forked child) -----------------------------------------------
async function serve(name) {
  const ready = await listen(name, { echo: true }, (sock) => {
    sock.on('data', (d) => sock.write(d));
    sock.on('end', () => sock.end());
    sock.on('error', () => {});
  });
  process.on('message', (m) => {
    if (m === 'exit') {
      ready.server.close();
      removeSocketFile(ready.cleanupPath);
      process.exit(0);
    }
  });
  process.send({ ready: { port: ready.port, path: ready.path } });
}

// ---- the client (a fresh process per sample) -------------------------------------
function client(name, ready) {
  const spec = TRANSPORTS[name];
  const t0 = process.hrtime.bigint();
  const lib = spec.xr ? require(spec.before ? path.resolve(process.env.XENRING_BENCH_BEFORE) : LIB_PATH) : require('node:net');
  const t1 = process.hrtime.bigint();
  let sock;
  if (spec.xr) sock = lib.connect({ port: ready.port, transport: spec.xr.transport });
  else if (spec.net === 'tcp') sock = lib.connect({ host: '127.0.0.1', port: ready.port, noDelay: true });
  else sock = lib.connect({ path: ready.path });
  sock.once('connect', () => {
    const t2 = process.hrtime.bigint();
    sock.once('data', (d) => {
      const t3 = process.hrtime.bigint();
      if (d.length !== 1 || d[0] !== 0x2a) throw new Error(`echo: got ${d.toString('hex')}`);
      const ms = (a, b) => Number(b - a) / 1e6;
      process.send({ sample: { requireMs: ms(t0, t1), connectMs: ms(t1, t2), echoMs: ms(t2, t3) } }, () => sock.destroy());
    });
    sock.write(Buffer.from([0x2a]));
  });
  sock.on('error', (err) => {
    process.send({ error: `${name}: ${err.code || err.message}` });
    process.exit(1);
  });
}

function oneSample(name, ready) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const cp = fork(__filename, ['--client', name, JSON.stringify(ready)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let sample = null;
    cp.on('message', (m) => {
      if (m && m.sample) sample = m.sample;
      else if (m && m.error) reject(new Error(m.error));
    });
    cp.on('exit', (code) => {
      if (!sample) return reject(new Error(`${name} client exited (${code}) without a sample`));
      resolve({ ...sample, processMs: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
  });
}

async function startServer(name) {
  const cp = fork(__filename, ['--serve', name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise((resolve, reject) => {
    cp.on('message', (m) => m && m.ready && resolve(m.ready));
    cp.once('exit', (code) => reject(new Error(`${name} server exited (${code})`)));
  });
  return { ready, stop: () => new Promise((resolve) => { cp.once('exit', resolve); cp.send('exit'); }) };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const cell = (xs) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;

async function main(argv) {
  if (argv.includes('--help') || argv.includes('-h')) usage(0);
  const samples = Number(optionValue(argv, 'samples', 15));
  const transports = String(optionValue(argv, 'transports', 'xenring,uds,tcp')).split(',').filter(Boolean);
  const jsonFile = optionValue(argv, 'json', null);
  if (!(samples > 0) || transports.some((t) => !TRANSPORTS[t] || !['xenring', 'xenring-before', 'uds', 'tcp'].includes(t))) usage(2);
  const started = new Date();
  const servers = {};
  for (const t of transports) servers[t] = await startServer(t);
  const results = Object.fromEntries(transports.map((t) => [t, []]));
  try {
    for (let r = 0; r <= samples; r++) {
      for (const t of r % 2 ? [...transports].reverse() : transports) {
        const s = await oneSample(t, servers[t].ready);
        if (r === 0) continue; // the servers' own first connections
        results[t].push(s);
        if (jsonFile) fs.appendFileSync(jsonFile, JSON.stringify({ tool: 'xenring-bench-first-connection', transport: t, ...s }) + '\n');
      }
    }
  } finally {
    for (const t of transports) await servers[t].stop();
  }
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`### A short-lived client: a new process loads the library, connects once, echoes 1 byte, exits (${samples} processes per transport)\n`);
  console.log(`${started.toISOString()}, ${secs} s, load ${os.loadavg()[0].toFixed(2)}, Node ${process.version}; median (range), ms\n`);
  console.log('| transport | require | connect → \'connect\' | first round trip | library + connect + echo | whole process (spawn → exit) |');
  console.log('|:---|---:|---:|---:|---:|---:|');
  for (const t of transports) {
    const rs = results[t];
    const col = (k) => cell(rs.map((x) => x[k]));
    console.log(`| ${t} | ${col('requireMs')} | ${col('connectMs')} | ${col('echoMs')} | ${cell(rs.map((x) => x.requireMs + x.connectMs + x.echoMs))} | ${col('processMs')} |`);
  }
}

if (process.argv[2] === '--serve') {
  serve(process.argv[3]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else if (process.argv[2] === '--client') {
  client(process.argv[3], JSON.parse(process.argv[4]));
} else {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
