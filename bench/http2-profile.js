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
 * client's receive window (session and streams; default http2's 64 KiB);
 * a path may carry its own (`--paths ring,tcp,ring@16777216,tcp@16777216`:
 * both windows in one run), and a ring path its ring size after `~`
 * (`ring~8388608@16777216`: 8 MiB rings, a 16 MiB window; plain ring paths
 * ask for the default 2 MiB, and the server offers the largest size named).
 *
 *   node bench/http2-profile.js --trace [--streams 200] [--size 262144]
 *
 * --trace: where one round trip of the ring path goes. Both processes log,
 * with the monotonic clock (one clock on one host), every native ring
 * write (start, end, bytes), wake-up and chunk pushed to the stream (and
 * whether the stream was paused then: http2 pauses its socket while a write
 * is in flight); one round after two unrecorded ones. Per window (the
 * server's 64 KiB write to the next one): server write → client push,
 * client push → its WINDOW_UPDATE write, that write's own duration, →
 * server push, → next server write; medians, means and 90th percentiles.
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
    const serverCpu0 = cpuMsAll(server.pid);
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
    const serverCpu = cpuMsAll(server.pid) - serverCpu0; // includes its warm-up round
    await server.stop();
    const med = [...result.rates].sort((a, b) => a - b)[result.rates.length >> 1];
    console.log(`\n=== ${p}: MiB/s median ${med.toFixed(0)} (${Math.min(...result.rates).toFixed(0)}–${Math.max(...result.rates).toFixed(0)}); client CPU ${(result.cpuMs / rounds).toFixed(1)} ms per round; server CPU ${(serverCpu / (rounds + 1)).toFixed(0)} ms per round (warm-up included)`);
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
  const defaultWindow = process.argv.includes('--window') ? Number(arg('--window')) : undefined;
  // A path may name its own window: ring@16777216.
  const windowOf = (p) => (p.includes('@') ? Number(p.split('@')[1]) : defaultWindow);
  // ...and its ring size: ring~8388608 (others ask for the default 2 MiB). The listener's size caps
  // a client's ask: the server listens with the largest named, at least real.js's 16 MiB.
  const sizes = paths.filter((p) => p.split('@')[0].includes('~')).map((p) => Number(p.split('@')[0].split('~')[1]));
  if (sizes.length) process.env.XENRING_BENCH_RING_CEILING = String(Math.max(16 << 20, ...sizes));
  const ringSizeOf = (p) => (p.split('@')[0].includes('~') ? Number(p.split('@')[0].split('~')[1]) : undefined);
  const kindOf = (p) => p.split('@')[0].split('~')[0];
  const before = arg('--before', '/work/wt/before');
  const real = require('./real');
  const windows = (streams * size) / 65536;
  console.log(`${new Date().toISOString()}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${streams} streams of ${size} B, window ${defaultWindow ?? 'default'}, ${rounds} rounds`);
  // One server per library; the wrapped and tcp paths use the first one's.
  const servers = {};
  const serverFor = async (p) => {
    const key = kindOf(p) === 'ring-before' ? 'before' : 'this';
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
    const k = kindOf(p);
    targets[p] = k.startsWith('ring') ? s.ring : k === 'wrapped' ? { wrapped: s.wrapped } : s.tcp;
  }
  const run = (p) => {
    if (kindOf(p) === 'ring-before') process.env.XENRING_BENCH_LIB = before; // read by real.js's dialer at dial time
    try {
      return real.h2Streams(targets[p], { streams, size, window: windowOf(p), ringSize: ringSizeOf(p) });
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

/** The --trace event log of this process (installed by traceInstall()). */
const events = [];

/**
 * Logs ring writes, wake-ups, pushes and pauses of this process into
 * `events` while on (SIGUSR1 starts, SIGUSR2 writes $XENRING_H2TRACE_DIR/PID.json).
 * Every wrapper passes every argument through (see bench/client-counts.js).
 */
function traceInstall() {
  const dist = path.join(__dirname, '..', 'dist');
  const { native } = require(path.join(dist, 'native'));
  let on = false;
  const now = () => Number(process.hrtime.bigint() / 1000n);
  const Endpoint = native.RingEndpoint;
  const write = Endpoint.prototype.write;
  native.RingEndpoint = function TracedEndpoint(...a) {
    const ep = new Endpoint(...a);
    Object.defineProperty(ep, 'write', {
      configurable: true,
      value: (...x) => {
        const t0 = now();
        const n = write.apply(ep, x);
        if (on) events.push(['write', t0, now(), n]);
        return n;
      },
    });
    return ep;
  };
  const Watcher = native.FdWatcher;
  native.FdWatcher = function TracedWatcher(fd, cb) {
    return new Watcher(fd, (...a) => (on && events.push(['wake', now()]), cb(...a)));
  };
  const P = require(path.join(dist, 'socket')).Socket.prototype;
  const push = P.push;
  P.push = function (chunk, ...rest) {
    if (on && chunk) events.push(['push', now(), chunk.length, this.isPaused() ? 1 : 0]);
    return push.call(this, chunk, ...rest);
  };
  process.on('SIGUSR1', () => ((on = true), (events.length = 0)));
  process.on('SIGUSR2', () => {
    on = false;
    fs.writeFileSync(path.join(process.env.XENRING_H2TRACE_DIR, `${process.pid}.json`), JSON.stringify(events));
  });
}

async function trace() {
  const streams = Number(arg('--streams', 200));
  const size = Number(arg('--size', 256 << 10));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-h2trace-'));
  process.env.XENRING_H2TRACE_DIR = dir;
  process.env.XENRING_H2TRACE = 'child'; // the forked server preloads this file in that role
  traceInstall();
  const real = require('./real');
  const server = await real.startNodeServer('h2', ['-r', __filename]);
  delete process.env.XENRING_H2TRACE;
  try {
    console.log(`${new Date().toISOString()}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${streams} streams of ${size} B over the ring`);
    for (let i = 0; i < 2; i++) await real.h2Streams(server.ring, { streams, size });
    process.kill(server.pid, 'SIGUSR1');
    process.emit('SIGUSR1');
    await new Promise((r) => setTimeout(r, 100));
    const r = await real.h2Streams(server.ring, { streams, size });
    process.kill(server.pid, 'SIGUSR2');
    process.emit('SIGUSR2');
    await new Promise((r) => setTimeout(r, 300));
    const load = (pid) => JSON.parse(fs.readFileSync(path.join(dir, `${pid}.json`), 'utf8'));
    traceReport(load(process.pid), load(server.pid), r.mibps);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Splits each window's round trip into its steps (see --trace in the header). */
function traceReport(client, server, mibps) {
  const big = 32 << 10;
  const serverWrites = server.filter((e) => e[0] === 'write' && e[3] >= big);
  const clientPushes = client.filter((e) => e[0] === 'push' && e[2] >= big);
  const clientWrites = client.filter((e) => e[0] === 'write' && e[3] > 0 && e[3] < big);
  const serverPushes = server.filter((e) => e[0] === 'push' && e[2] < big);
  // The first event of `list` at or after time t (lists are in time order).
  const firstAfter = (list, t) => {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (list[m][1] < t) lo = m + 1;
      else hi = m;
    }
    return list[lo];
  };
  const steps = {
    'server write → client push': [],
    'client push → its write': [],
    "client's write (copy + kick)": [],
    'client write end → server push': [],
    'server push → next server write': [],
    "server's write (copy + kick)": [],
    'whole window': [],
  };
  const pausedSteps = { client: [[], []], server: [[], []] };
  for (const w of serverWrites) {
    const p = firstAfter(clientPushes, w[1]);
    const cw = p && firstAfter(clientWrites, p[1]);
    const sp = cw && firstAfter(serverPushes, cw[1]);
    const next = sp && firstAfter(serverWrites, sp[1]);
    if (!next) break;
    steps['server write → client push'].push(p[1] - w[2]);
    steps['client push → its write'].push(cw[1] - p[1]);
    steps["client's write (copy + kick)"].push(cw[2] - cw[1]);
    steps['client write end → server push'].push(sp[1] - cw[2]);
    steps['server push → next server write'].push(next[1] - sp[1]);
    steps["server's write (copy + kick)"].push(w[2] - w[1]);
    steps['whole window'].push(next[1] - w[1]);
    pausedSteps.client[p[3]].push(cw[1] - p[1]);
    pausedSteps.server[sp[3]].push(next[1] - sp[1]);
  }
  const sorted = (xs) => [...xs].sort((a, b) => a - b);
  const med = (xs) => sorted(xs)[xs.length >> 1];
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const p90 = (xs) => sorted(xs)[Math.floor(xs.length * 0.9)];
  const n = steps['whole window'].length;
  console.log(`${mibps.toFixed(0)} MiB/s; ${n} windows; wake-ups: client ${client.filter((e) => e[0] === 'wake').length}, server ${server.filter((e) => e[0] === 'wake').length}`);
  console.log('| step | median µs | mean µs | p90 µs |');
  console.log('|:---|---:|---:|---:|');
  for (const [k, xs] of Object.entries(steps)) console.log(`| ${k} | ${med(xs)} | ${mean(xs).toFixed(0)} | ${p90(xs)} |`);
  for (const side of ['client', 'server']) {
    const [run, paused] = pausedSteps[side];
    const f = (xs) => (xs.length ? `${xs.length} windows, median ${med(xs)} µs, mean ${mean(xs).toFixed(0)} µs` : 'none');
    console.log(`${side}: push → its write when the stream was flowing: ${f(run)}; paused (http2's write in flight): ${f(paused)}`);
  }
}

if (process.env.XENRING_H2TRACE === 'child') traceInstall();
else if (process.argv[2] === '--client') client().catch((e) => (console.error(e), process.exit(1)));
else if (process.argv.includes('--trace')) trace().catch((e) => (console.error(e), process.exit(1)));
else if (process.argv.includes('--ab')) ab().catch((e) => (console.error(e), process.exit(1)));
else main().catch((e) => (console.error(e), process.exit(1)));
