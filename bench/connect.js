'use strict';
// What one NEW connection costs: N sequential connections, each connect +
// 1-byte echo + end + 'close', after a warm-up, per transport in one run
// (rounds alternate the order). Per connection: wall time, CPU of the client
// (this process) and of the server (a forked child, which reports its own
// process.cpuUsage()), minor page faults on both sides, and with --strace
// the syscalls of both processes (strace -c -f attached for the measured
// connections only). Medians and ranges over the rounds.
//
//   node bench/connect.js [--conns 1000] [--warmup 200] [--rounds 5]
//        [--transports xenring,uds,tcp] [--strace] [--ring-size N] [--reply BYTES] [--request BYTES] [--json FILE]
// --reply: the server also writes BYTES (one Buffer, the i % 251 pattern) before
// the echo; the client checks them and hands each xenring Buffer back at once
// (socket.release): a connection whose pool is used, as a reader that is done
// with its data (lib/transports/local_recycle.ts recycles only then).
// --request: the client first writes BYTES (one new ordinary Buffer, the same
// pattern), which the server checks (releasing each xenring Buffer), before
// the byte it echoes: a request larger than a socket buffer on a new
// connection (a redis SET, an upload).
// Warm-up: V8 optimizes a function only after it has run a while, so a fresh
// process runs its per-connection path unoptimized (interpreted, then
// baseline code) for its first ~1,500 connections; on this 2-vCPU VM that
// doubles the CPU a connection costs, on both sides and on every transport
// (2026-12-05: a node:http server 330-390 µs per connection before, 110-140
// after). The default warm-up is past that; --curve shows it: fresh client
// and server processes every round, the costs per window of connection
// numbers, e.g. --curve 250,500,1000,1500,2000,3000.
// --http: each connection is instead one node:http GET of --reply bytes
// (default 1 KiB, checked) with keep-alive off: the server answers and ends
// first (`Connection: close`), the client's socket comes from the transport
// (agent.createConnection), as an HTTP/1.0-style client does.
//   XENRING_BENCH_BEFORE=/work/wt/before node bench/connect.js --transports xenring,xenring-before,uds,tcp

const { fork, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { TRANSPORTS, listen, connect, dial, removeSocketFile, isXenring, xenring } = require('./transports');
const { parseSize } = require('./common');

function usage(status) {
  process.stdout.write(`usage: node bench/connect.js [options]
  --conns N          measured connections per round (default 1000)
  --warmup N         unmeasured connections first, in each round (default 3000: past V8's tier-up)
  --rounds N         rounds; each runs every transport once, order alternating (default 5)
  --transports LIST  from: ${Object.keys(TRANSPORTS).filter((n) => !TRANSPORTS[n].onread && !/xen-/.test(n)).join(', ')} (default xenring,uds,tcp;
                     xenring-before needs XENRING_BENCH_BEFORE=<built checkout>)
  --ring-size N      ringSize for the xenring rows (default: the library's)
  --reply BYTES      the server writes BYTES back before the echo (checked, released by the client)
  --request BYTES    the client writes BYTES before the echoed byte (checked, released by the server)
  --http             each connection is a node:http GET of --reply bytes (default 1024), keep-alive off
  --idle MS          pause MS before each measured connection (a client that connects every few
                     seconds; wall time excludes the pauses, CPU includes what the processes
                     do while idle, e.g. V8's garbage collection)
  --curve LIST       costs per window of connection numbers from fresh processes (each round
                     forks a new client too), e.g. 250,500,1000,1500,2000,3000; replaces --conns/--warmup
  --strace           also count syscalls of both processes (strace -c -f), measured connections only
  --json FILE        write one JSON line per transport and round
`);
  process.exit(status);
}

function parseArgs(argv) {
  const o = { conns: 1000, warmup: 3000, rounds: 5, curve: null, idle: 0, transports: ['xenring', 'uds', 'tcp'], strace: false, http: false, ringSize: undefined, reply: 0, request: 0, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(2);
      return argv[++i];
    };
    if (a === '--conns') o.conns = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--transports') o.transports = next().split(',').filter(Boolean);
    else if (a === '--ring-size') o.ringSize = parseSize(next());
    else if (a === '--reply') o.reply = parseSize(next());
    else if (a === '--request') o.request = parseSize(next());
    else if (a === '--strace') o.strace = true;
    else if (a === '--http') o.http = true;
    else if (a === '--json') o.json = next();
    else if (a === '--curve') o.curve = next().split(',').map(Number);
    else if (a === '--idle') o.idle = Number(next());
    else if (a === '--help' || a === '-h') usage(0);
    else usage(2);
  }
  for (const t of o.transports) if (!TRANSPORTS[t]) throw new Error(`unknown transport ${t}`);
  if (!(o.conns > 0) || !(o.warmup >= 0) || !(o.rounds > 0)) usage(2);
  if (o.curve && !o.curve.every((n, i) => Number.isInteger(n) && n > (i === 0 ? 0 : o.curve[i - 1]))) usage(2);
  if (o.curve && o.strace) usage(2);
  if (!(o.idle >= 0) || (o.idle > 0 && o.curve)) usage(2);
  if (o.http && o.reply === 0) o.reply = 1024;
  if (o.http && o.request > 0) usage(2);
  return o;
}

function counters() {
  const cpu = process.cpuUsage();
  const ru = process.resourceUsage();
  return { user: cpu.user, system: cpu.system, faults: ru.minorPageFault + ru.majorPageFault };
}
const diff = (a, b) => ({ user: b.user - a.user, system: b.system - a.system, faults: b.faults - a.faults });

// ---- child: an echo server on one transport --------------------------------
/** `n` bytes, byte i = i % 251. */
function pattern(n) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

async function child(name, ringSize, reply, request, http) {
  const replyBytes = reply > 0 ? pattern(reply) : null;
  const requestBytes = request > 0 ? pattern(request) : null;
  const httpServer = http ? require('node:http').createServer((req, res) => res.end(replyBytes)) : null;
  const ready = await listen(name, { ringSize, echo: !http }, (sock) => {
    if (httpServer !== null) {
      httpServer.emit('connection', sock);
      return;
    }
    let at = 0; // request bytes checked so far
    sock.on('data', (d) => {
      if (requestBytes !== null && at < request) {
        const n = Math.min(d.length, request - at);
        if (!d.subarray(0, n).equals(requestBytes.subarray(at, at + n))) process.send({ error: `request: wrong bytes at ${at}` });
        at += n;
        const rest = n < d.length ? Buffer.from(d.subarray(n)) : null;
        if (typeof sock.release === 'function') sock.release(d);
        if (rest === null) return;
        d = rest;
      }
      if (replyBytes !== null) sock.write(Buffer.from(replyBytes)); // a new Buffer each time, as a server's answer
      sock.write(d);
    });
    sock.on('end', () => sock.end());
    sock.on('error', (err) => process.send({ error: `server socket: ${err.code || err.message}` }));
  });
  process.on('message', (m) => {
    if (m === 'counters') process.send({ counters: counters() });
    else if (m === 'exit') {
      ready.server.close();
      removeSocketFile(ready.cleanupPath);
      process.exit(0);
    }
  });
  process.send({ ready: { port: ready.port, path: ready.path } });
}

// ---- parent -----------------------------------------------------------------
function ask(cp, what) {
  return new Promise((resolve, reject) => {
    const onMsg = (m) => {
      if (m && m[what] !== undefined) {
        cp.off('message', onMsg);
        resolve(m[what]);
      } else if (m && m.error) reject(new Error(m.error));
    };
    cp.on('message', onMsg);
    if (what === 'counters') cp.send('counters');
  });
}

let replyPattern = null;
let requestPattern = null;
/** --http: an agent per round's server (its `ready`). */
const httpAgents = new WeakMap();
/** --http: one GET on a new connection (keep-alive off), its body checked. */
function oneRequest(name, ready, opts) {
  let agent = httpAgents.get(ready);
  if (!agent) {
    agent = new (require('node:http').Agent)({ keepAlive: false });
    agent.createConnection = () => dial(name, ready, { ringSize: opts.ringSize });
    httpAgents.set(ready, agent);
  }
  const want = (replyPattern ??= pattern(opts.reply));
  return new Promise((resolve, reject) => {
    const req = require('node:http').get({ host: 'bench', path: '/', agent }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => (Buffer.concat(parts).equals(want) ? resolve() : reject(new Error(`http: ${res.statusCode}, wrong body`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
/** One connection: connect, send one byte, wait for it back (after --reply bytes), end, wait for 'close'. */
async function oneConnection(name, ready, opts, byte) {
  if (opts.http) return oneRequest(name, ready, opts);
  const sock = await connect(name, ready, { ringSize: opts.ringSize, echo: true });
  const expect = opts.reply > 0 ? (replyPattern ??= pattern(opts.reply)) : null;
  await new Promise((resolve, reject) => {
    let got = null;
    let at = 0;
    sock.on('error', reject);
    sock.on('data', (d) => {
      if (expect !== null && at < expect.length) {
        const n = Math.min(d.length, expect.length - at);
        if (!d.subarray(0, n).equals(expect.subarray(at, at + n))) reject(new Error(`reply: wrong bytes at ${at}`));
        at += n;
        const rest = n < d.length ? Buffer.from(d.subarray(n)) : null;
        if (typeof sock.release === 'function') sock.release(d); // done with it: the extent goes back now
        if (rest === null) return;
        d = rest;
      }
      if (got !== null || d.length !== 1 || d[0] !== byte) reject(new Error(`echo: expected one byte ${byte}, got ${d.toString('hex')}`));
      got = d[0];
      sock.end();
    });
    sock.on('close', () => (got === byte ? resolve() : reject(new Error('closed before the echo'))));
    if (opts.request > 0) sock.write(Buffer.from((requestPattern ??= pattern(opts.request)))); // a new Buffer, as a client's request
    sock.write(Buffer.from([byte]));
  });
}

/** strace -c -f on both pids; stop() resolves with the total syscall count. */
function startStrace(pids) {
  const out = path.join(os.tmpdir(), `xenring-connect-strace-${process.pid}-${Date.now()}.txt`);
  const args = ['-c', '-f', '-o', out];
  for (const p of pids) args.push('-p', String(p));
  const st = spawn('strace', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  st.stderr.on('data', (d) => (err += d));
  // strace says "Process N attached" for each process it has attached to.
  const attached = new Promise((resolve, reject) => {
    const check = () => {
      if (pids.every((p) => err.includes(`Process ${p} attached`))) resolve();
    };
    st.stderr.on('data', check);
    st.on('exit', (code) => reject(new Error(`strace exited (${code}): ${err.trim()}`)));
    setTimeout(resolve, 2000); // older straces say less: go on after 2 s
  });
  return {
    attached,
    stop: () => new Promise((resolve) => {
      st.removeAllListeners('exit');
      st.on('exit', () => {
        let total = NaN;
        try {
          const text = fs.readFileSync(out, 'utf8');
          const m = /^\s*100\.00\s+\S+\s+\S+\s+(\d+)\s+(\d+\s+)?total\s*$/m.exec(text) || /^\s*[\d.]+\s+[\d.]+\s+\d*\s*(\d+)\s+\d*\s*total/m.exec(text);
          if (m) total = Number(m[1]);
          fs.rmSync(out, { force: true });
        } catch { /* no output */ }
        resolve(total);
      });
      st.kill('SIGINT');
    }),
  };
}

async function round(name, opts, log) {
  const cp = fork(__filename, ['--child', name, String(opts.ringSize || 0), String(opts.reply), String(opts.request), opts.http ? 'http' : ''], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const ready = await Promise.race([
      ask(cp, 'ready'),
      new Promise((_, reject) => cp.once('exit', (code) => reject(new Error(`${name} server exited (${code})`)))),
    ]);
    if (opts.curve) return await curve(name, cp, ready, opts);
    for (let i = 0; i < opts.warmup; i++) await oneConnection(name, ready, opts, (i * 7 + 1) & 0xff);
    if (global.gc) global.gc();
    let strace = null;
    if (opts.strace) {
      strace = startStrace([process.pid, cp.pid]);
      await strace.attached;
    }
    const s0 = await ask(cp, 'counters');
    const c0 = counters();
    const t0 = process.hrtime.bigint();
    let idled = 0n;
    for (let i = 0; i < opts.conns; i++) {
      if (opts.idle > 0) {
        // --idle: a client that connects now and then; the pause is not the connection's time.
        const p0 = process.hrtime.bigint();
        await new Promise((resolve) => setTimeout(resolve, opts.idle));
        idled += process.hrtime.bigint() - p0;
      }
      await oneConnection(name, ready, opts, (i * 13 + 5) & 0xff);
    }
    const wall = Number(process.hrtime.bigint() - t0 - idled) / 1e3;
    const c1 = counters();
    const s1 = await ask(cp, 'counters');
    const syscalls = strace ? await strace.stop() : NaN;
    const c = diff(c0, c1);
    const s = diff(s0, s1);
    const n = opts.conns;
    const r = {
      transport: name,
      conns: n,
      wallUs: wall / n,
      clientCpuUs: (c.user + c.system) / n,
      clientSysUs: c.system / n,
      serverCpuUs: (s.user + s.system) / n,
      serverSysUs: s.system / n,
      clientFaults: c.faults / n,
      serverFaults: s.faults / n,
      // ask()'s IPC and strace's own pipe are included: a few syscalls per round, not per connection
      syscalls: syscalls / n,
      load: os.loadavg()[0],
    };
    log(r);
    return r;
  } finally {
    cp.send('exit');
    await new Promise((resolve) => (cp.exitCode !== null ? resolve() : cp.once('exit', resolve)));
  }
}

/** --curve: the costs per connection in each window of connection numbers, counted from the processes' start. */
async function curve(name, cp, ready, opts) {
  const windows = [];
  let done = 0;
  let s0 = await ask(cp, 'counters');
  let c0 = counters();
  let t0 = process.hrtime.bigint();
  for (const end of opts.curve) {
    const from = done;
    for (; done < end; done++) await oneConnection(name, ready, opts, (done * 13 + 5) & 0xff);
    const wall = Number(process.hrtime.bigint() - t0) / 1e3;
    const c1 = counters();
    const s1 = await ask(cp, 'counters');
    const c = diff(c0, c1);
    const s = diff(s0, s1);
    const n = end - from;
    windows.push({ transport: name, from, to: end, wallUs: wall / n, clientCpuUs: (c.user + c.system) / n, serverCpuUs: (s.user + s.system) / n });
    s0 = s1;
    c0 = c1;
    t0 = process.hrtime.bigint();
  }
  return windows;
}

/** --curve: one round in a new client process (this file with --round), so that neither side has warmed up. */
function freshRound(name, opts) {
  return new Promise((resolve, reject) => {
    const cp = fork(__filename, ['--round', name, JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result = null;
    cp.on('message', (m) => {
      if (m && m.result) result = m.result;
      else if (m && m.error) reject(new Error(m.error));
    });
    cp.on('exit', (code) => (result ? resolve(result) : reject(new Error(`round client exited (${code})`))));
  });
}

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
function cell(xs, digits = 0) {
  const s = xs.filter((x) => Number.isFinite(x));
  if (s.length === 0) return '–';
  const f = (x) => x.toFixed(digits);
  return s.length === 1 ? f(s[0]) : `${f(median(s))} (${f(Math.min(...s))}–${f(Math.max(...s))})`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const results = Object.fromEntries(opts.transports.map((t) => [t, []]));
  const started = new Date();
  const loads = [os.loadavg()[0]];
  const json = opts.json ? fs.openSync(opts.json, 'a') : null;
  for (let r = 0; r < opts.rounds; r++) {
    const order = r % 2 === 0 ? opts.transports : [...opts.transports].reverse();
    for (const t of order) {
      if (opts.curve) {
        const ws = await freshRound(t, opts);
        process.stderr.write(`round ${r + 1} ${t}: ${ws.map((w) => `${w.to}: ${w.serverCpuUs.toFixed(0)}/${w.clientCpuUs.toFixed(0)}`).join(', ')} (server/client CPU µs)\n`);
        results[t].push(ws);
        if (json !== null) fs.writeSync(json, JSON.stringify({ tool: 'xenring-bench-connect-curve', round: r + 1, windows: ws }) + '\n');
        continue;
      }
      const res = await round(t, opts, (x) => process.stderr.write(`round ${r + 1} ${t}: ${x.wallUs.toFixed(0)} µs/conn, client ${x.clientCpuUs.toFixed(0)} µs, server ${x.serverCpuUs.toFixed(0)} µs, load ${x.load.toFixed(2)}\n`));
      results[t].push(res);
      loads.push(os.loadavg()[0]);
      if (json !== null) fs.writeSync(json, JSON.stringify({ tool: 'xenring-bench-connect', round: r + 1, ...res }) + '\n');
    }
  }
  if (json !== null) fs.closeSync(json);
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  if (opts.curve) {
    printCurve(opts, results, started, secs, loads);
    return;
  }
  console.log(`### New connections: connect + ${describe(opts)} + close (${opts.conns} per round after ${opts.warmup} warm-up, ${opts.rounds} rounds${opts.idle > 0 ? `, ${opts.idle} ms idle before each` : ''})\n`);
  console.log(`${started.toISOString()}, ${secs} s, load ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}, median (range) per connection${opts.ringSize ? `, ringSize ${opts.ringSize}` : ''}\n`);
  const ref = results.tcp ? 'tcp' : null;
  console.log(`| transport | wall µs | client CPU µs (sys) | server CPU µs (sys) | client faults | server faults | syscalls (both) |${ref ? ' CPU both ÷ TCP |' : ''}`);
  console.log(`|:---|---:|---:|---:|---:|---:|---:|${ref ? '---:|' : ''}`);
  const both = (rs) => median(rs.map((x) => x.clientCpuUs + x.serverCpuUs));
  for (const t of opts.transports) {
    const rs = results[t];
    const col = (k, d) => cell(rs.map((x) => x[k]), d);
    const ratio = ref ? ` ${(both(rs) / both(results[ref])).toFixed(2)}× |` : '';
    console.log(`| ${t} | ${col('wallUs')} | ${col('clientCpuUs')} (${median(rs.map((x) => x.clientSysUs)).toFixed(0)}) | ${col('serverCpuUs')} (${median(rs.map((x) => x.serverSysUs)).toFixed(0)}) | ${col('clientFaults', 1)} | ${col('serverFaults', 1)} | ${col('syscalls', 1)} |${ratio}`);
  }
}

function describe(opts) {
  return opts.http
    ? `a node:http GET of ${opts.reply} bytes, keep-alive off (the server ends first)`
    : [opts.request > 0 ? `${opts.request}-byte request (released)` : null, opts.reply > 0 ? `${opts.reply}-byte reply (released)` : null, '1-byte echo'].filter(Boolean).join(' + ') + ' + end';
}

function printCurve(opts, results, started, secs, loads) {
  console.log(`### Warm-up: connect + ${describe(opts)} + close, by connection number from fresh client and server processes (${opts.rounds} rounds)\n`);
  console.log(`${started.toISOString()}, ${secs} s, load ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}, median (range) per connection in each window\n`);
  const ref = results.tcp ? 'tcp' : null;
  console.log(`| transport | connections | wall µs | client CPU µs | server CPU µs |${ref ? ' CPU both ÷ TCP |' : ''}`);
  console.log(`|:---|:---|---:|---:|---:|${ref ? '---:|' : ''}`);
  const both = (ws) => median(ws.map((w) => w.clientCpuUs + w.serverCpuUs));
  for (const t of opts.transports) {
    opts.curve.forEach((end, i) => {
      const ws = results[t].map((round) => round[i]);
      const col = (k) => cell(ws.map((w) => w[k]));
      const ratio = ref ? ` ${(both(ws) / both(results[ref].map((round) => round[i]))).toFixed(2)}× |` : '';
      console.log(`| ${t} | ${i === 0 ? 0 : opts.curve[i - 1]}–${end} | ${col('wallUs')} | ${col('clientCpuUs')} | ${col('serverCpuUs')} |${ratio}`);
    });
  }
}

if (process.argv[2] === '--round') {
  const opts = JSON.parse(process.argv[4]);
  // Loaded before the first window, as the server's side is (by listen()): loading is not a connection's cost (bench/first-connection.js has it).
  if (isXenring(process.argv[3])) xenring(process.argv[3]);
  round(process.argv[3], opts, () => {}).then(
    (result) => process.send({ result }, () => process.exit(0)),
    (err) => process.send({ error: err.message }, () => process.exit(1)),
  );
} else if (process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4]) || undefined, Number(process.argv[5]) || 0, Number(process.argv[6]) || 0, process.argv[7] === 'http').catch((err) => {
    process.send({ error: err.message });
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
