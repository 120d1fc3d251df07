#!/usr/bin/env node
'use strict';
/*
 * Where the CPU of bench/real.js's http2 row goes (issue 14): the same load
 * (one session, `--streams` concurrent GETs of `--size` bytes, every body
 * verified) over each path, with the client and the forked server each run
 * under `node --cpu-prof`; prints their CPU per round and the top frames of
 * both profiles (bench/profile-summary.js).
 *
 *   node bench/http2-profile.js [--paths ring,tcp,wrapped,ring-before] [--rounds 5]
 *        [--streams 200] [--size 262144] [--top 25] [--dir DIR] [--before DIR]
 *
 * Paths: ring (a xenring socket), tcp (net, a native handle), wrapped (TCP
 * inside a plain JS Duplex on both sides: Node's JSStreamSocket, as around a
 * xenring socket, without the ring), ring-before (the ring with the built
 * checkout `--before DIR`, default /work/wt/before: an A/B in one run).
 * A fresh server and client process per path, so each profile is one path's.
 *
 *   node bench/http2-profile.js --ab [--paths ring,ring-before,wrapped,tcp] [--rounds 9] [--window BYTES]
 *
 * --ab: no profiler; one server per library, every path in turn each round
 * (the order rotating), and per path the median rate with its range and
 * the median CPU per 64 KiB of body of the client and of the server (all
 * their threads, /proc/PID/task/N/schedstat, to the ns). `--window`: the
 * client's receive window (session and streams; default http2's 64 KiB).
 */
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

async function client() {
  // Runs in the forked client: --client PATH TO ROUNDS STREAMS SIZE
  const [, , , pathName, to, rounds, streams, size] = process.argv;
  const real = require('./real');
  const target = pathName.startsWith('ring') ? to : pathName === 'wrapped' ? { wrapped: Number(to) } : Number(to);
  await real.h2Streams(target, { streams: Number(streams), size: Number(size) }); // warm-up
  const rates = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < Number(rounds); i++) rates.push((await real.h2Streams(target, { streams: Number(streams), size: Number(size) })).mibps);
  const c = process.cpuUsage(c0);
  process.send({ rates, cpuMs: (c.user + c.system) / 1000 });
}

async function main() {
  const paths = arg('--paths', 'ring,tcp,wrapped').split(',');
  const rounds = Number(arg('--rounds', 5));
  const streams = Number(arg('--streams', 200));
  const size = Number(arg('--size', 256 << 10));
  const top = arg('--top', '25');
  const dir = arg('--dir', fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-h2prof-')));
  const before = arg('--before', '/work/wt/before');
  const real = require('./real');
  console.log(`${new Date().toISOString()}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${streams} streams of ${size} B, ${rounds} rounds; profiles in ${dir}`);
  for (const p of paths) {
    const env = { ...process.env };
    if (p === 'ring-before') env.XENRING_BENCH_LIB = before;
    const sdir = path.join(dir, `${p}-server`);
    const cdir = path.join(dir, `${p}-client`);
    if (p === 'ring-before') process.env.XENRING_BENCH_LIB = before; // the forked server inherits it
    const server = await real.startNodeServer('h2', ['--cpu-prof', `--cpu-prof-dir=${sdir}`]);
    delete process.env.XENRING_BENCH_LIB;
    const serverCpu0 = real.cpuSeconds(server.pid);
    const to = p.startsWith('ring') ? server.ring : p === 'wrapped' ? server.wrapped : server.tcp;
    const child = fork(__filename, ['--client', p, String(to), String(rounds), String(streams), String(size)], {
      execArgv: ['--cpu-prof', `--cpu-prof-dir=${cdir}`],
      env,
    });
    const result = await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`client exited ${code}`)));
    });
    await new Promise((resolve) => child.once('exit', resolve));
    const serverCpu = real.cpuSeconds(server.pid) - serverCpu0; // includes its warm-up round
    await server.stop();
    const med = [...result.rates].sort((a, b) => a - b)[result.rates.length >> 1];
    console.log(`\n=== ${p}: MiB/s median ${med.toFixed(0)} (${Math.min(...result.rates).toFixed(0)}–${Math.max(...result.rates).toFixed(0)}); client CPU ${(result.cpuMs / rounds).toFixed(1)} ms per round; server CPU ${((serverCpu * 1000) / (rounds + 1)).toFixed(0)} ms per round (10 ms ticks, warm-up included)`);
    for (const d of [cdir, sdir]) {
      const files = fs.readdirSync(d).map((f) => path.join(d, f));
      const out = require('node:child_process').execFileSync(process.execPath, [path.join(__dirname, 'profile-summary.js'), ...files, '--top', top]);
      console.log(`--- ${d.endsWith('server') ? 'server' : 'client'}`);
      process.stdout.write(out);
    }
  }
}

/** CPU ms used so far by every thread of `pid` (/proc/PID/task/N/schedstat: ns on CPU). */
function cpuMsAll(pid) {
  let ns = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return ns / 1e6;
}

async function ab() {
  const paths = arg('--paths', 'ring,ring-before,wrapped,tcp').split(',');
  const rounds = Number(arg('--rounds', 9));
  const streams = Number(arg('--streams', 200));
  const size = Number(arg('--size', 256 << 10));
  const window = process.argv.includes('--window') ? Number(arg('--window')) : undefined;
  const before = arg('--before', '/work/wt/before');
  const real = require('./real');
  const windows = (streams * size) / 65536;
  console.log(`${new Date().toISOString()}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${streams} streams of ${size} B, window ${window ?? 'default'}, ${rounds} rounds`);
  // One server per library; the wrapped and tcp paths use the first one's.
  const servers = {};
  const serverFor = async (p) => {
    const key = p === 'ring-before' ? 'before' : 'this';
    if (!servers[key]) {
      if (key === 'before') process.env.XENRING_BENCH_LIB = before;
      servers[key] = await real.startNodeServer('h2');
      delete process.env.XENRING_BENCH_LIB;
    }
    return servers[key];
  };
  // The client side of ring-before: the same library as its server, loaded once here.
  const targets = {};
  for (const p of paths) {
    const s = await serverFor(p);
    targets[p] = p.startsWith('ring') ? s.ring : p === 'wrapped' ? { wrapped: s.wrapped } : s.tcp;
  }
  const run = (p) => {
    if (p === 'ring-before') process.env.XENRING_BENCH_LIB = before; // read by real.js's dialer at dial time
    try {
      return real.h2Streams(targets[p], { streams, size, window });
    } finally {
      delete process.env.XENRING_BENCH_LIB;
    }
  };
  const got = Object.fromEntries(paths.map((p) => [p, { rate: [], client: [], server: [] }]));
  for (const p of paths) await run(p); // warm-up, unrecorded
  for (let i = 0; i < rounds; i++) {
    const order = paths.map((_, j) => paths[(i + j) % paths.length]);
    for (const p of order) {
      const server = await serverFor(p);
      const c0 = cpuMsAll(process.pid);
      const s0 = cpuMsAll(server.pid);
      const r = await run(p);
      got[p].rate.push(r.mibps);
      got[p].client.push(((cpuMsAll(process.pid) - c0) * 1000) / windows);
      got[p].server.push(((cpuMsAll(server.pid) - s0) * 1000) / windows);
    }
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const fmt = (xs, d = 0) => `${med(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
  console.log('| path | MiB/s | client CPU µs per 64 KiB | server CPU µs per 64 KiB |');
  console.log('|:---|---:|---:|---:|');
  for (const p of paths) console.log(`| ${p} | ${fmt(got[p].rate)} | ${fmt(got[p].client)} | ${fmt(got[p].server)} |`);
  console.log(`load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const s of Object.values(servers)) await s.stop();
}

if (process.argv[2] === '--client') client().catch((e) => (console.error(e), process.exit(1)));
else if (process.argv.includes('--ab')) ab().catch((e) => (console.error(e), process.exit(1)));
else main().catch((e) => (console.error(e), process.exit(1)));
