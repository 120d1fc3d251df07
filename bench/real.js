#!/usr/bin/env node
'use strict';
/*
 * Real programs through `xenring proxy`, next to the same programs over
 * direct TCP in the same run: `npm run bench -- --real [--seconds N] [--rounds N]`.
 *
 *   redis     Debian's redis-server, driven by redis-benchmark (SET and GET,
 *             20 clients; and SET of 16 KiB values)
 *   postgres  PostgreSQL, driven by pgbench (TPC-B-like, 4 clients), after
 *             `pgbench -i` (which loads its tables with COPY) through the same path
 *
 *   Node clients (a second table): undici, http2, ws, tls (tls.connect({ socket })),
 *             pg (its `stream` option), ioredis (a Connector) over a xenring socket vs over TCP, and
 *             autocannon against an http server through `xenring proxy`
 *             tcp -> ring; every answer verified (see nodeClientRows)
 *
 * Path "xenring": client -TCP-> xenring proxy -ring-> xenring proxy -TCP-> server
 * (two extra processes and two extra TCP hops: the cost of reaching a TCP
 * program through a ring, not the ring's own speed). Its control: the same two
 * proxies joined by TCP. Likewise every Node client that needs a proxy is also
 * measured through the same proxy with TCP in place of the ring. Servers
 * listen on 127.0.0.1 on free ports and are stopped after. The helpers here
 * are also used by test/cli/real-programs.test.js and test/clients.
 *
 * `--only NAME,...` runs some rows: redis, postgres, undici, http, autocannon,
 * http2, ws, tls, pg, ioredis.
 */
const { spawn, execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { optionValue } = require('./common');

const BIN = path.join(__dirname, '..', 'bin', 'xenring.js');

/** The first of `names` found in PATH or `extraDirs`, else null. */
function which(name, extraDirs = []) {
  for (const d of [...(process.env.PATH || '').split(':'), ...extraDirs]) {
    if (d && fs.existsSync(path.join(d, name))) return path.join(d, name);
  }
  return null;
}

function pgBinDirs() {
  const base = '/usr/lib/postgresql';
  if (!fs.existsSync(base)) return [];
  return fs.readdirSync(base).sort((a, b) => Number(b) - Number(a)).map((v) => path.join(base, v, 'bin'));
}

/** Why a program cannot run here (a sentence), or null if it can. */
function unavailable(program) {
  if (program === 'redis') {
    const missing = ['redis-server', 'redis-benchmark'].filter((n) => !which(n));
    return missing.length ? `${missing.join(' and ')} not installed (apt-get install redis-server redis-tools; .ci/run does)` : null;
  }
  if (program === 'postgres') {
    const missing = ['initdb', 'postgres', 'pgbench'].filter((n) => !which(n, pgBinDirs()));
    if (missing.length) return `${missing.join(', ')} not installed (apt-get install postgresql; .ci/run does)`;
    if (process.getuid() === 0 && !pgUser()) return "running as root and there is no 'postgres' user to run the server as";
    return null;
  }
  throw new Error(`unknown program ${program}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Resolves once 127.0.0.1:port accepts a TCP connection (or rejects after `ms`). */
async function waitForPort(port, ms, child) {
  const until = Date.now() + ms;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before listening`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listening on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => (clearTimeout(t), resolve()));
    child.kill(signal);
  });
}

function run(file, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 << 20, timeout: 120000, ...options }, (err, stdout, stderr) =>
      err ? reject(Object.assign(new Error(`${path.basename(file)} ${args.join(' ')}: ${err.message.split('\n')[0]}\n${stderr}`), { stdout, stderr })) : resolve({ stdout, stderr }),
    );
  });
}

// ------------------------------------------------------------------ servers
async function startRedis() {
  const port = await freePort();
  const child = spawn(which('redis-server'), ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: 'ignore' });
  await waitForPort(port, 10000, child);
  return { port, stop: () => stopChild(child) };
}

function pgUser() {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    return { uid, gid };
  } catch {
    return null;
  }
}

/** initdb (trust auth, no fsync) into a temp directory and start postgres on a free port. */
async function startPostgres() {
  const bin = (n) => which(n, pgBinDirs());
  // The server refuses to run as root: then run it as the 'postgres' user.
  const as = process.getuid() === 0 ? pgUser() : {};
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-pg-'));
  if (as.uid !== undefined) fs.chownSync(dir, as.uid, as.gid);
  const data = path.join(dir, 'data');
  await run(bin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { ...as, cwd: dir });
  const port = await freePort();
  const child = spawn(bin('postgres'), ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'], { ...as, cwd: dir, stdio: 'ignore' });
  await waitForPort(port, 20000, child);
  // Accepting TCP is not yet accepting queries: wait for the server to be ready.
  for (let i = 0; ; i++) {
    try {
      await run(bin('pg_isready') || bin('psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'], { env: { ...process.env } });
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    stop: async () => {
      await stopChild(child, 'SIGINT'); // fast shutdown
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------ proxies
function startCli(args, bin = BIN) {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const listening = new Promise((resolve, reject) => {
    child.stderr.on('data', () => {
      const m = /listening on (\S+),/.exec(err);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`xenring ${args.join(' ')} exited ${code}: ${err}`)));
  });
  return { child, listening, stderr: () => err };
}

/**
 * client -> tcp:127.0.0.1:<port> -> proxy -> MIDDLE -> proxy -> tcp:127.0.0.1:<target>,
 * MIDDLE a ring (the product) or, as a control, TCP (the same two proxies with no ring).
 * Resolves { port, stop() }; stop() sends SIGTERM and checks both proxies exit 0.
 */
async function startProxyChain(target, middle = 'ring') {
  const hop = middle === 'ring' ? `ring:real-${process.pid}-${target}` : `tcp:127.0.0.1:${await freePort()}`;
  const back = startCli(['proxy', '--listen', hop, '--connect', `tcp:127.0.0.1:${target}`]);
  await back.listening;
  const front = startCli(['proxy', '--listen', 'tcp:127.0.0.1:0', '--connect', hop]);
  const port = Number(/:([0-9]+)$/.exec(await front.listening)[1]);
  return {
    port,
    stderr: () => front.stderr() + back.stderr(),
    /** CPU seconds (user + system) both proxies have used so far. */
    cpuSeconds: () => cpuSeconds(front.child.pid) + cpuSeconds(back.child.pid),
    async stop() {
      const codes = await Promise.all([front, back].map((p) => new Promise((resolve) => {
        if (p.child.exitCode !== null) return resolve(p.child.exitCode);
        p.child.once('exit', (code) => resolve(code));
        p.child.kill('SIGTERM');
      })));
      if (codes.some((c) => c !== 0)) throw new Error(`a proxy exited with ${codes}: ${front.stderr()} ${back.stderr()}`);
    },
  };
}

/** CPU seconds (user + system) process `pid` has used, from /proc (0 where there is none). */
function cpuSeconds(pid) {
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ, 100 on Linux
  } catch {
    return 0;
  }
}

// ------------------------------------------------------------------ loads
/** redis-benchmark --csv; rejects on any error line. Resolves [{ test, rps, p50, p99 }]. */
async function redisBenchmark(port, { requests = 20000, clients = 20, tests = 'set,get', size } = {}) {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-n', String(requests), '-c', String(clients), '-t', tests, '--csv'];
  if (size) args.push('-d', String(size));
  const { stdout, stderr } = await run(which('redis-benchmark'), args);
  if (/error/i.test(stdout + stderr)) throw new Error(`redis-benchmark reported errors: ${stdout}${stderr}`);
  const rows = stdout.trim().split('\n').slice(1).map((l) => l.split(',').map((c) => c.replace(/"/g, '')));
  if (rows.length === 0) throw new Error(`redis-benchmark printed no results: ${stdout}${stderr}`);
  return rows.map((r) => ({ test: r[0] + (size ? ` ${size >> 10} KiB` : ''), rps: Number(r[1]), p50: Number(r[4]), p99: Number(r[6]) }));
}

/** pgbench -i, then a timed TPC-B-like run. Resolves { tps, latencyMs, failed, transactions }. */
async function pgbench(port, { seconds = 3, clients = 4, init = true } = {}) {
  const bin = which('pgbench', pgBinDirs());
  const conn = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'];
  if (init) await run(bin, ['-i', '-q', '-s', '1', ...conn, 'postgres']);
  const { stdout } = await run(bin, ['-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds), '-n', ...conn, 'postgres']);
  const num = (re) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : NaN;
  };
  return {
    tps: num(/tps = ([0-9.]+)/),
    latencyMs: num(/latency average = ([0-9.]+) ms/),
    failed: num(/number of failed transactions: ([0-9]+)/) || 0,
    transactions: num(/number of transactions actually processed: ([0-9]+)/),
    output: stdout,
  };
}

// ------------------------------------------------------------- Node clients
// Node clients over a xenring socket (no proxy), next to the same client over
// TCP. A forked child (this file with --serve KIND) runs the server, listening
// on a named ring port and on 127.0.0.1 TCP at once; pg and ioredis reach their
// servers through one `xenring proxy --listen ring:NAME --connect tcp:...`.

/**
 * The library the ring paths use: this checkout, or the built checkout named
 * by $XENRING_BENCH_LIB (e.g. /work/wt/before, for an A/B in one run; the
 * forked server inherits it).
 */
function xenringLib() {
  return require(process.env.XENRING_BENCH_LIB ? path.resolve(process.env.XENRING_BENCH_LIB) : '..');
}

/** `n` deterministic bytes: byte i is i % 251 (a lost or shifted chunk never lines up). */
function patternBytes(n) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

/**
 * A fresh self-signed key and certificate for CN=localhost in a new temporary
 * directory (openssl): { dir, key, cert } (file paths), or null without openssl.
 */
function tlsKeyPair() {
  if (!which('openssl')) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-bench-tls-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { dir, key, cert };
}

/**
 * The child side of startNodeServer: http (GET /bytes/N), http2 (same), ws
 * (echo) or tls (echo; key and certificate from XENRING_BENCH_TLS_KEY and
 * XENRING_BENCH_TLS_CERT) on ring + TCP.
 */
async function serve(kind) {
  const http = require('node:http');
  const http2 = require('node:http2');
  const xenring = xenringLib();
  const cache = new Map();
  const bytes = (url) => {
    const n = Number(/^\/bytes\/([0-9]+)/.exec(url || '')?.[1] || 0);
    if (!cache.has(n)) cache.set(n, patternBytes(n));
    return cache.get(n);
  };
  let target;
  if (kind === 'tls') {
    const tls = require('node:tls');
    const key = fs.readFileSync(process.env.XENRING_BENCH_TLS_KEY);
    const cert = fs.readFileSync(process.env.XENRING_BENCH_TLS_CERT);
    target = tls.createServer({ key, cert }, (s) => s.pipe(s));
  } else if (kind === 'h2') {
    target = http2.createServer({ maxSessionMemory: 256 }); // MB: 200 concurrent streams outgrow the default 10
    target.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
      stream.end(bytes(headers[':path']));
    });
  } else {
    target = http.createServer((req, res) => res.end(bytes(req.url)));
    target.keepAliveTimeout = 60000;
    if (kind === 'ws') {
      const { WebSocketServer } = require('ws');
      const wss = new WebSocketServer({ server: target, maxPayload: 64 << 20 });
      wss.on('connection', (ws) => ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary })));
    }
  }
  await new Promise((resolve) => target.listen(0, '127.0.0.1', resolve));
  const ring = `clients-${process.pid}-${kind}`;
  const ringServer = xenring.createServer((socket) => target.emit('connection', socket));
  // A listener's ring size is the most a client gets (it may ask for less): the http2 server offers
  // 16 MiB for the row that asks for it, every other client asks for the default 2 MiB (dialer()).
  const ceiling = process.env.XENRING_BENCH_RING_CEILING || (kind === 'h2' ? String(16 << 20) : '');
  await new Promise((resolve) => ringServer.listen(ceiling ? { port: ring, ringSize: Number(ceiling) } : ring, resolve));
  // The control for Node's stream wrapper: TCP connections handed over inside a JS Duplex.
  const wrappedServer = net.createServer((socket) => target.emit('connection', inJsDuplex(socket)));
  await new Promise((resolve) => wrappedServer.listen(0, '127.0.0.1', resolve));
  process.send({ ring, tcp: target.address().port, wrapped: wrappedServer.address().port });
  process.on('disconnect', () => process.exit(0));
}

/** Forks `--serve kind` (with Node's `execArgv`, e.g. --cpu-prof); resolves { ring, tcp, stop() } (ring: the named ring port). */
async function startNodeServer(kind, execArgv = process.execArgv) {
  const child = require('node:child_process').fork(__filename, ['--serve', kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const ports = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`--serve ${kind} exited ${code}`)));
  });
  // Disconnecting makes the child exit by itself (so --cpu-prof writes its profile); SIGTERM if it has not within 2 s.
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const stop = async () => {
    if (child.connected) child.disconnect();
    if (!exited()) await new Promise((resolve) => setTimeout(resolve, 2000).unref() && child.once('exit', resolve));
    await stopChild(child);
  };
  return { ...ports, pid: child.pid, stop };
}

/** One `xenring proxy --listen LISTEN --connect CONNECT` (the `bin` of another checkout for an A/B); resolves { listening (the bound address), port (if TCP), pid, stop() }. */
async function startProxy(listen, connect, bin = BIN) {
  const p = startCli(['proxy', '--listen', listen, '--connect', connect], bin);
  const listening = await p.listening;
  return { listening, port: Number(/^tcp:.*:([0-9]+)$/.exec(listening)?.[1]), pid: p.child.pid, stop: () => stopChild(p.child) };
}

/** `xenring proxy --listen ring:NAME --connect tcp:127.0.0.1:<port>`: a ring port for a TCP server. */
async function startRingBridge(port) {
  const ring = `bridge-${process.pid}-${port}`;
  const p = await startProxy(`ring:${ring}`, `tcp:127.0.0.1:${port}`);
  return { ring, pid: p.pid, stop: p.stop };
}

/** `xenring proxy --listen tcp:127.0.0.1:0 --connect ring:NAME`: a TCP port for a ring server (load tools). */
async function startTcpBridge(ring) {
  const p = await startProxy('tcp:127.0.0.1:0', `ring:${ring}`);
  return { port: p.port, pid: p.pid, stop: p.stop };
}

/**
 * `xenring proxy --listen tcp:127.0.0.1:0 --connect tcp:127.0.0.1:<port>`: the
 * control for a bridge, the same extra process and hop with TCP in place of the ring.
 */
async function startTcpRelay(port) {
  const p = await startProxy('tcp:127.0.0.1:0', `tcp:127.0.0.1:${port}`);
  return { port: p.port, pid: p.pid, stop: p.stop };
}

/**
 * `socket` (TCP) inside a plain JS Duplex that forwards both ways: no libuv
 * handle, so http2 and tls wrap it in Node's JSStreamSocket as they wrap a
 * xenring Socket. TCP through it shows what that wrapper costs with no ring.
 */
function inJsDuplex(socket) {
  const { Duplex } = require('node:stream');
  const d = new Duplex({
    read: () => socket.resume(),
    write: (chunk, encoding, cb) => socket.write(chunk, encoding, cb),
    writev: (chunks, cb) => {
      // One writev on the TCP socket, as a xenring socket takes them; the last write's callback covers all.
      socket.cork();
      chunks.forEach(({ chunk, encoding }, i) => socket.write(chunk, encoding, i === chunks.length - 1 ? cb : undefined));
      socket.uncork();
    },
    final: (cb) => socket.end(cb),
    destroy: (err, cb) => (socket.destroy(err), cb(err)),
  });
  socket.on('data', (chunk) => d.push(chunk) || socket.pause());
  socket.on('end', () => d.push(null));
  socket.on('error', (err) => d.destroy(err));
  socket.on('connect', () => d.emit('connect'));
  return d;
}

/**
 * A stream factory: a xenring socket to ring port `ring`, (given a number) TCP
 * to 127.0.0.1, or (given { wrapped: port }) that TCP inside a JS Duplex.
 */
function dialer(to, ringSize) {
  if (typeof to === 'number') return () => net.connect(to, '127.0.0.1');
  if (typeof to === 'object') return () => inJsDuplex(net.connect(to.wrapped, '127.0.0.1'));
  const xenring = xenringLib();
  return () => xenring.connect({ port: to, ringSize: ringSize ?? DEFAULT_RING });
}

/** The ring size a client asks for unless a row names one: xenring's default, whatever the server offers. */
const DEFAULT_RING = 2 << 20;

/** The two ways the Node-client rows use a connection (labels of their load column). */
const FRESH = 'new connection per round';
const WARM = 'one warm connection, reused';

/** a ÷ b as a table cell ('–' when b is 0 or missing). */
const ratio = (a, b) => (b ? `${(a / b).toFixed(2)}×` : '–');
const mibps = (bytes, ms) => bytes / (1 << 20) / (ms / 1000);
function check(ok, what) {
  if (!ok) throw new Error(`wrong answer: ${what}`);
}

/**
 * The one-shot form of a session opener: open a connection, run one round on
 * it, close it (what a client that connects per job sees, warm-up included).
 */
function oneRound(open) {
  return async (to, options = {}) => {
    const session = await open(to, options);
    try {
      return await session.run(options);
    } finally {
      await session.close();
    }
  };
}

/**
 * An undici Client (one connection, `pipelining` deep) over dial(): a session,
 * { run({ requests, size }) -> { rps }, close() }; each run GETs `requests`
 * bodies of `size`, verified, and fails if the Client had to dial again (the
 * rounds of a session are meant to share one connection).
 */
async function undiciSession(to, { pipelining = 8 } = {}) {
  const { Client } = require('undici');
  const dial = dialer(to);
  let dials = 0;
  const client = new Client('http://ring', {
    pipelining,
    connect: (_opts, callback) => {
      dials++;
      const socket = dial();
      socket.once('connect', () => callback(null, socket)).once('error', (err) => callback(err, null));
    },
  });
  return {
    async run({ requests = 1000, size = 1024 } = {}) {
      const want = patternBytes(size);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: requests }, async () => {
        const { statusCode, body } = await client.request({ path: `/bytes/${size}`, method: 'GET' });
        const got = Buffer.from(await body.arrayBuffer());
        check(statusCode === 200 && got.equals(want), `undici status ${statusCode}, ${got.length} bytes`);
      }));
      const ms = performance.now() - t0;
      check(dials === 1, `undici dialed ${dials} connections for one session`);
      return { rps: (requests * 1000) / ms };
    },
    close: () => client.close(),
  };
}

/** undici Client on a new connection: GETs `requests` bodies of `size`, verified (see undiciSession). */
const undiciRequests = oneRound(undiciSession);

/**
 * node:http with keep-alive off: `requests` GETs of `size` bytes one after
 * another, each on its own new connection (connect, request, response, close;
 * what an HTTP/1.0-style client or `Connection: close` does), verified.
 */
async function httpPerConnection(to, { requests = 500, size = 1024 } = {}) {
  const http = require('node:http');
  const agent = new http.Agent({ keepAlive: false });
  agent.createConnection = dialer(to);
  const want = patternBytes(size);
  const t0 = performance.now();
  for (let i = 0; i < requests; i++) {
    const got = await new Promise((resolve, reject) => {
      const req = http.get({ host: 'ring', path: `/bytes/${size}`, agent }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts) }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    check(got.status === 200 && got.body.equals(want), `http status ${got.status}, ${got.body.length} bytes`);
  }
  return { rps: (requests * 1000) / (performance.now() - t0) };
}

/**
 * One http2 session over dial(); `streams` concurrent GETs of `size` bytes
 * each, verified. `window`: the client's receive window in bytes, for the
 * session and for each stream (default: http2's 64 KiB, one round trip per
 * 64 KiB whatever the transport). `ringSize`: the ring path's ring size
 * (default: the server's, 2 MiB).
 */
async function h2Streams(to, { streams = 200, size = 64 << 10, window, ringSize } = {}) {
  const http2 = require('node:http2');
  const dial = dialer(to, ringSize);
  const options = { createConnection: () => dial(), maxSessionMemory: 256 };
  if (window !== undefined) options.settings = { initialWindowSize: Math.min(window, 2 ** 31 - 1) };
  const session = http2.connect('http://ring', options);
  await new Promise((resolve, reject) => session.once('connect', resolve).once('error', reject));
  if (window !== undefined) session.setLocalWindowSize(window);
  const windowSize = session.state.effectiveLocalWindowSize;
  const want = patternBytes(size);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: streams }, () => new Promise((resolve, reject) => {
    const req = session.request({ ':path': `/bytes/${size}` });
    const chunks = [];
    let status = 0;
    req.on('response', (h) => (status = h[':status']));
    req.on('data', (d) => chunks.push(d));
    req.on('error', reject);
    req.on('end', () => {
      const got = Buffer.concat(chunks);
      if (status === 200 && got.equals(want)) resolve();
      else reject(new Error(`wrong answer: http2 status ${status}, ${got.length} bytes`));
    });
    req.end();
  })));
  const ms = performance.now() - t0;
  await new Promise((resolve) => session.close(resolve));
  return { mibps: mibps(streams * size, ms), windowSize };
}

/** ws over dial(): `messages` small messages echoed in order, then one `big` message echoed intact. */
async function wsEcho(to, { messages = 10000, big = 16 << 20, ringSize } = {}) {
  const { WebSocket } = require('ws');
  const dial = dialer(to, ringSize);
  const ws = new WebSocket('ws://ring/', { createConnection: () => dial(), maxPayload: 64 << 20 });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const replies = [];
  let waiter = null;
  ws.on('message', (m) => {
    replies.push(m);
    if (waiter && replies.length >= waiter.n) waiter.resolve();
  });
  const until = (n) => (replies.length >= n ? Promise.resolve() : new Promise((resolve, reject) => {
    waiter = { n, resolve };
    ws.once('close', () => reject(new Error(`ws closed after ${replies.length} of ${n} replies`)));
  }));
  let t0 = performance.now();
  for (let i = 0; i < messages; i++) ws.send(`message ${i}`);
  await until(messages);
  const smallMs = performance.now() - t0;
  replies.forEach((m, i) => check(m.toString() === `message ${i}`, `ws reply ${i}: ${String(m).slice(0, 40)}`));
  const blob = patternBytes(big);
  t0 = performance.now();
  ws.send(blob);
  await until(messages + 1);
  const bigMs = performance.now() - t0;
  check(Buffer.from(replies[messages]).equals(blob), `ws ${big}-byte echo`);
  ws.close();
  return { msgps: (messages * 1000) / smallMs, bigMibps: mibps(2 * big, bigMs) };
}

/**
 * tls.connect({ socket: dial() }) to the tls echo server: `bytes` written in
 * 1 MiB chunks and read back, every byte checked; MiB/s counts both ways.
 * Over TCP TLS runs on the socket's libuv handle; over a ring (or TCP in a
 * JS Duplex) Node wraps the stream in its JS stream wrapper first.
 */
async function tlsEcho(to, { bytes = 64 << 20, ca, ringSize } = {}) {
  const tls = require('node:tls');
  const dial = dialer(to, ringSize);
  const socket = tls.connect({ socket: dial(), ca, servername: 'localhost' });
  await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const chunk = patternBytes(1 << 20); // every chunk the same: byte p of the stream is (p mod 1 MiB) mod 251
  let received = 0;
  let bad = -1;
  const t0 = performance.now();
  const done = new Promise((resolve, reject) => {
    socket.on('data', (d) => {
      for (let i = 0; i < d.length && bad < 0; i++) if (d[i] !== ((received + i) % (1 << 20)) % 251) bad = received + i;
      received += d.length;
      if (received >= bytes) resolve();
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`tls closed after ${received} of ${bytes} bytes`)));
  });
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!socket.write(sent + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - sent))) await new Promise((resolve) => socket.once('drain', resolve));
  }
  await done;
  const ms = performance.now() - t0;
  check(bad < 0 && received === bytes, `tls echo: ${received} of ${bytes} bytes, first wrong byte at ${bad}`);
  socket.removeAllListeners('close');
  socket.end();
  return { mibps: mibps(2 * bytes, ms) };
}

/**
 * A pg Client over a xenring socket (ring port name) or TCP (number), connected:
 * a session, { run({ queries, bytea }) -> { qps, byteaMibps }, close() }; each
 * run makes `queries` queries in turn and a `bytea` round trip, verified. A pg
 * Client is one connection and never reconnects, so runs share it.
 */
async function pgSession(to) {
  const pg = require('pg');
  const xenring = xenringLib();
  const config = { user: 'postgres', database: 'postgres', host: '127.0.0.1' };
  // pg calls stream.connect(port, host) with its own port parsed as an integer: the ring port name rides in the Socket.
  if (typeof to === 'number') config.port = to;
  else config.stream = () => new xenring.Socket({ port: to });
  const client = new pg.Client(config);
  await client.connect();
  return {
    async run({ queries = 1000, bytea = 8 << 20 } = {}) {
      const t0 = performance.now();
      for (let i = 0; i < queries; i++) {
        const { rows } = await client.query('SELECT $1::int + 1 AS n', [i]);
        check(rows[0].n === i + 1, `pg ${i} + 1 = ${rows[0].n}`);
      }
      const qms = performance.now() - t0;
      const blob = patternBytes(bytea);
      const t1 = performance.now();
      const { rows } = await client.query('SELECT $1::bytea AS b, length($1::bytea) AS n', [blob]);
      const bms = performance.now() - t1;
      check(rows[0].n === bytea && rows[0].b.equals(blob), `pg bytea of ${rows[0].n} bytes`);
      return { qps: (queries * 1000) / qms, byteaMibps: mibps(2 * bytea, bms) };
    },
    /** The server process serving this connection (a reused connection keeps it). */
    backendPid: async () => (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid,
    close: () => client.end(),
  };
}

/** pg Client on a new connection: `queries` queries, a `bytea` round trip, verified (see pgSession). */
const pgQueries = oneRound(pgSession);

/**
 * ioredis over a custom connector (ring port name) or TCP (number), connected,
 * never reconnecting (so runs share one connection): a session,
 * { run({ ops, big, bigTimes, batch }) -> { opsps, bigMibps }, close() }; each run
 * makes `ops` SET+GET pairs, then `bigTimes` SET+GETs of a `big` value, verified.
 * The big ones are timed together: one alone takes 1-3 ms, within the noise of a
 * shared host; on a fresh connection the first still runs on pages it has not touched yet.
 */
async function ioredisSession(to) {
  const Redis = require('ioredis');
  const options = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null };
  if (typeof to === 'number') Object.assign(options, { host: '127.0.0.1', port: to });
  else {
    const dial = dialer(to);
    options.Connector = class XenringConnector extends Redis.AbstractConnector {
      connect() {
        this.connecting = true;
        this.stream = dial();
        return Promise.resolve(this.stream);
      }
    };
  }
  const redis = new Redis(options);
  await redis.connect();
  return {
    async run({ ops = 5000, big = 1 << 20, bigTimes = 4, batch = 100 } = {}) {
      const t0 = performance.now();
      for (let i = 0; i < ops; i += batch) {
        const keys = Array.from({ length: Math.min(batch, ops - i) }, (_, j) => i + j);
        await Promise.all(keys.map((k) => redis.set(`xenring:${k}`, `value ${k}`)));
        const got = await Promise.all(keys.map((k) => redis.get(`xenring:${k}`)));
        got.forEach((v, j) => check(v === `value ${keys[j]}`, `redis GET xenring:${keys[j]} = ${v}`));
      }
      const ms = performance.now() - t0;
      const blob = patternBytes(big);
      const t1 = performance.now();
      for (let i = 0; i < bigTimes; i++) {
        await redis.set('xenring:big', blob);
        const back = await redis.getBuffer('xenring:big');
        check(back.equals(blob), `redis ${big}-byte value`);
      }
      const bms = performance.now() - t1;
      return { opsps: (2 * ops * 1000) / ms, bigMibps: mibps(2 * big * bigTimes, bms) };
    },
    /** redis-server's id of this connection (a reused connection keeps it). */
    clientId: () => redis.client('ID'),
    close: async () => redis.disconnect(),
  };
}

/** ioredis on a new connection: `ops` SET+GET pairs, then `bigTimes` SET+GETs of a `big` value (see ioredisSession). */
const ioredisOps = oneRound(ioredisSession);

/** autocannon against http://127.0.0.1:<port>/bytes/<size>; rejects on any error, timeout or non-2xx. */
async function autocannonLoad(port, { seconds = 2, connections = 10, size = 1024 } = {}) {
  const autocannon = require('autocannon');
  const r = await autocannon({ url: `http://127.0.0.1:${port}/bytes/${size}`, connections, duration: seconds });
  if (r.errors || r.timeouts || r.non2xx || r['2xx'] === 0) {
    throw new Error(`autocannon: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx, ${r['2xx']} 2xx`);
  }
  return { rps: r.requests.average, mean: r.latency.average, p50: r.latency.p50, p99: r.latency.p99, ok: r['2xx'], bytes: r.throughput.total };
}

// ------------------------------------------------------------------ report
/** The number after `--name N` or `--name=N` in argv, else `dflt`. */
function numberArg(argv, name, dflt) {
  return Number(optionValue(argv, name.slice(2), dflt)) || dflt;
}

/** The names after `--only` (all rows when absent). */
function onlyArg(argv) {
  const only = optionValue(argv, 'only');
  if (only === undefined) return () => true;
  const names = (only || '').split(',');
  return (name) => names.includes(name);
}

async function main(argv) {
  const seconds = numberArg(argv, '--seconds', 5);
  const want = onlyArg(argv);
  const rows = [];
  const note = [];
  const t0 = Date.now();

  // Each load runs direct, through the ring chain and through the TCP-only control chain, alternating.
  // Also the CPU time the two proxies of each chain used during their run (less noisy than rates on a busy host).
  // `warm` runs a short unmeasured load through each chain first: a proxy is a long-running process, and
  // a fresh one spends its first thousands of requests compiling its JavaScript.
  const three = async (serverPort, measure, warm) => {
    const chains = [await startProxyChain(serverPort, 'ring'), await startProxyChain(serverPort, 'tcp')];
    const timed = async (c) => {
      const before = c.cpuSeconds();
      const result = await measure(c.port);
      return Object.assign(result, { proxyCpu: c.cpuSeconds() - before });
    };
    try {
      const direct = await measure(serverPort);
      for (const c of chains) await warm(c.port);
      return [direct, await timed(chains[0]), await timed(chains[1])];
    } finally {
      for (const c of chains) await c.stop();
    }
  };
  const cpuRow = (what, work, ring, tcp) => {
    const us = (r) => ((r.proxyCpu * 1e6) / work).toFixed(1);
    rows.push([what, 'CPU of the two proxies, µs per request', '–', us(ring), us(tcp), '–', ratio(ring.proxyCpu, tcp.proxyCpu)]);
  };
  const redisWhy = unavailable('redis');
  if (!want('redis')) {
    /* not asked for */
  } else if (redisWhy) note.push(`redis: skipped, ${redisWhy}`);
  else {
    const redis = await startRedis();
    try {
      const requests = Math.max(5000, seconds * 8000);
      for (const opts of [{ tests: 'set,get' }, { tests: 'set', size: 16384 }]) {
        const [direct, viaRing, viaTcp] = await three(redis.port, (port) => redisBenchmark(port, { requests, ...opts }), (port) => redisBenchmark(port, { ...opts, requests: 5000 }));
        direct.forEach((d, i) => {
          const [r, t] = [viaRing[i], viaTcp[i]];
          rows.push([`redis-benchmark ${d.test} (20 clients)`, 'requests/s', d.rps.toFixed(0), r.rps.toFixed(0), t.rps.toFixed(0), ratio(r.rps, d.rps), ratio(r.rps, t.rps)]);
          rows.push([`redis-benchmark ${d.test}`, 'p50 / p99 latency, ms', `${d.p50} / ${d.p99}`, `${r.p50} / ${r.p99}`, `${t.p50} / ${t.p99}`, ratio(r.p50, d.p50), ratio(r.p50, t.p50)]);
        });
        // One redis-benchmark run covers all its tests: its CPU is per request of all of them.
        cpuRow(`redis-benchmark ${direct.map((d) => d.test).join(' + ')}`, requests * direct.length, viaRing, viaTcp);
      }
    } finally {
      await redis.stop();
    }
  }

  const pgWhy = unavailable('postgres');
  if (!want('postgres')) {
    /* not asked for */
  } else if (pgWhy) note.push(`postgres: skipped, ${pgWhy}`);
  else {
    const pg = await startPostgres();
    try {
      const res = await three(pg.port, (port) => pgbench(port, { seconds }), (port) => pgbench(port, { seconds: 1, init: false }));
      for (const r of res) if (r.failed) throw new Error(`pgbench: ${r.failed} failed transactions`);
      rows.push(['pgbench TPC-B-like (4 clients, scale 1)', 'transactions/s', ...res.map((r) => r.tps.toFixed(0)), ratio(res[1].tps, res[0].tps), ratio(res[1].tps, res[2].tps)]);
      rows.push(['pgbench', 'mean latency, ms', ...res.map((r) => r.latencyMs.toFixed(2)), ratio(res[1].latencyMs, res[0].latencyMs), ratio(res[1].latencyMs, res[2].latencyMs)]);
      // Per transaction of each chain's own run (they differ in count: -T is a duration).
      const us = (r) => ((r.proxyCpu * 1e6) / r.transactions).toFixed(1);
      rows.push(['pgbench', 'CPU of the two proxies, µs per transaction', '–', us(res[1]), us(res[2]), '–', ratio(res[1].proxyCpu / res[1].transactions, res[2].proxyCpu / res[2].transactions)]);
    } finally {
      await pg.stop();
    }
  }

  const rounds = numberArg(argv, '--rounds', 5);
  const clientRows = await nodeClientRows({ seconds, rounds, want }, note);

  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const out = [
    `## Real programs: direct TCP vs through \`xenring proxy\` (tcp → ring → tcp), same run`,
    '',
    `${new Date().toISOString()}, ${os.cpus().length} vCPUs (${os.cpus()[0].model.trim()}), Node ${process.version}, load average ${load}; ${Math.round((Date.now() - t0) / 1000)} s.`,
    'Columns: the client straight to the server; through two `xenring proxy` processes joined by a ring (tcp → ring → tcp);',
    'the same two proxies joined by TCP instead (tcp → tcp → tcp: the cost of the extra hops without any ring).',
    'Ratios: the ring path ÷ direct (what a user gets) and ÷ the same proxies over TCP (what the ring itself gains);',
    'above 1× is better for rates, worse for latencies. One run each, in turn; noisy on a shared machine. The CPU rows: user + system',
    'time of the two proxy processes during that run (/proc), per request, after a short warm-up load; steadier than rates when other',
    'processes compete for the CPUs (ratio: ring ÷ TCP, below 1× means the ring path costs less).',
    '',
    '| program | metric | direct TCP | via proxies + ring | via proxies + TCP | ring ÷ direct | ring ÷ proxies + TCP |',
    '|:---|:---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    '## Node clients: over a xenring socket vs over TCP, same run',
    '',
    'Each client in this process, its server in a forked Node process (http, http2, ws, tls) listening on a ring port and on TCP at once;',
    'pg and ioredis reach PostgreSQL / redis-server through one `xenring proxy --listen ring:NAME --connect tcp:…` (so their ring path has one extra',
    'process and TCP hop); autocannon (a TCP-only load tool) reaches the ring through `xenring proxy --listen tcp:… --connect ring:NAME`.',
    'For those three, "TCP via a proxy" is the same client through the same extra process with TCP in place of the ring',
    '(`xenring proxy --listen tcp:… --connect tcp:…`): xenring ÷ that is what the ring gains on equal hops.',
    'For http2 and tls that column is TCP handed to http2 / tls inside a plain JS Duplex on both sides: Node wraps such a stream (as any stream',
    'without a libuv handle, a xenring socket included) in its JS stream wrapper, so xenring ÷ that is the ring on equal wrapping.',
    `Every answer is verified. Median of ${rounds} rounds (alternating, each round starting one path later, after one unrecorded warm-up round each way) with the range; ratios above 1× are better for rates, worse for latencies.`,
    `undici, pg and ioredis have two rows per metric. "${FRESH}": connect, one round, close (so it measures mostly a new`,
    `connection's warm-up, JIT included). "${WARM}": one connection per path opened once, its first round unrecorded, then`,
    'every round on it (the steady state a pooled client such as pg.Pool or ioredis sees).',
    '',
    '| client | load | metric | TCP | xenring | xenring ÷ TCP | TCP via a proxy | xenring ÷ TCP via a proxy |',
    '|:---|:---|:---|---:|---:|---:|---:|---:|',
    ...clientRows.map((r) => `| ${r.join(' | ')} |`),
    ...note.map((n) => `\n${n}`),
    '',
  ];
  process.stdout.write(out.join('\n'));
}

/**
 * The Node-client rows: each load `rounds` times over TCP and over the ring,
 * alternating; [client, load, metric, TCP median (range), ring median (range), ratio].
 */
async function nodeClientRows({ seconds, rounds, want = () => true }, note) {
  const rows = [];
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const num = (x, digits) => x.toFixed(digits);
  const fmt = (xs) => {
    const digits = med(xs) < 10 ? 2 : 0; // latencies in ms
    return `${num(med(xs), digits)} (${num(Math.min(...xs), digits)}–${num(Math.max(...xs), digits)})`;
  };
  // measure(to) -> { metricName: number }; `to` a TCP port number or a ring port name;
  // `viaProxy`: the TCP port of the same-hops control (a proxy with TCP on both sides), if any
  // (http2: { wrapped: port }, TCP inside a JS Duplex).
  const compare = async (client, load, tcp, ring, measure, metrics, viaProxy) => {
    const got = { tcp: [], ring: [], proxy: [] };
    // One unrecorded round each way first: a fresh process (a proxy, the forked server, this one on
    // its first http2 session) spends its first thousands of messages compiling its JavaScript, and
    // whichever path ran first would pay for the code both share.
    await measure(tcp);
    await measure(ring);
    if (viaProxy !== undefined) await measure(viaProxy);
    // Each round starts one path later than the last (tcp, ring, proxy; ring, proxy, tcp; ...), so
    // no path always runs right after the same other one (its garbage, its scheduling).
    const paths = [['tcp', tcp], ['ring', ring]];
    if (viaProxy !== undefined) paths.push(['proxy', viaProxy]);
    for (let i = 0; i < rounds; i++) {
      for (let j = 0; j < paths.length; j++) {
        const [key, to] = paths[(i + j) % paths.length];
        got[key].push(await measure(to));
      }
    }
    for (const [key, label] of metrics) {
      const [t, r, p] = [got.tcp, got.ring, got.proxy].map((runs) => runs.map((g) => g[key]));
      const control = p.length ? [fmt(p), ratio(med(r), med(p))] : ['–', '–'];
      rows.push([client, load, label, fmt(t), fmt(r), ratio(med(r), med(t)), ...control]);
    }
  };
  // The same comparison on warm connections: one session (connection) per path, opened once and
  // reused for every round; compare's unrecorded round is then the warm-up on that connection.
  // Steady state, what a pooled client (pg.Pool, ioredis, an undici Pool) sees after its first jobs.
  const compareWarm = async (client, load, tcp, ring, open, options, metrics, viaProxy) => {
    const sessions = new Map();
    try {
      for (const to of [tcp, ring, viaProxy]) if (to !== undefined) sessions.set(to, await open(to, options));
      await compare(client, load, tcp, ring, (to) => sessions.get(to).run(options), metrics, viaProxy);
    } finally {
      for (const session of sessions.values()) await session.close();
    }
  };
  const kinds = { http: want('undici') || want('http') || want('autocannon'), h2: want('http2'), ws: want('ws'), tls: want('tls') };
  const keyPair = kinds.tls ? tlsKeyPair() : null;
  if (kinds.tls && keyPair === null) {
    note.push('tls: skipped, openssl not installed (it makes the test certificate)');
    kinds.tls = false;
  }
  if (keyPair !== null) Object.assign(process.env, { XENRING_BENCH_TLS_KEY: keyPair.key, XENRING_BENCH_TLS_CERT: keyPair.cert });
  for (const kind of ['http', 'h2', 'ws', 'tls'].filter((k) => kinds[k])) {
    const server = await startNodeServer(kind);
    try {
      if (kind === 'http') {
        if (want('undici')) {
          const load = '2,000 GETs of 4 KiB, pipelining 8';
          const options = { requests: 2000, size: 4096 };
          await compare('undici Client', `${load}; ${FRESH}`, server.tcp, server.ring, (to) => undiciRequests(to, options), [['rps', 'requests/s']]);
          await compareWarm('undici Client', `${load}; ${WARM}`, server.tcp, server.ring, undiciSession, options, [['rps', 'requests/s']]);
        }
        if (want('http')) {
          // A new connection per request: what the rows above amortize over 2,000 requests. Both
          // processes first make 2,000 unrecorded connections each way: a process runs a new
          // connection's JavaScript unoptimized for its first ~1,500 (V8's tier-up; the ring's path
          // has more of it: docs/benchmark.md, "Warm-up and steady state"), which the rounds would
          // otherwise mostly measure (the server is a fresh process per kind).
          for (const to of [server.tcp, server.ring]) await httpPerConnection(to, { requests: 2000, size: 1024 });
          await compare('node:http, keep-alive off', '500 GETs of 1 KiB in turn, a new connection each, after 2,000 unrecorded', server.tcp, server.ring, (to) => httpPerConnection(to, { requests: 500, size: 1024 }), [['rps', 'requests/s']]);
        }
        if (!want('autocannon')) continue;
        const bridge = await startTcpBridge(server.ring);
        const relay = await startTcpRelay(server.tcp);
        try {
          const secs = Math.max(1, Math.round(seconds / 2));
          await compare('autocannon → http', `10 connections, ${secs} s, 1 KiB bodies`, server.tcp, bridge.port, (port) => autocannonLoad(port, { seconds: secs }), [['rps', 'requests/s'], ['mean', 'mean latency, ms']], relay.port);
        } finally {
          await bridge.stop();
          await relay.stop();
        }
      } else if (kind === 'h2') {
        // Control: TCP inside a JS Duplex on both sides (Node's stream wrapper, as for any xenring socket, and no ring).
        await compare('http2', '200 concurrent streams of 256 KiB', server.tcp, server.ring, (to) => h2Streams(to, { streams: 200, size: 256 << 10 }), [['mibps', 'MiB/s']], { wrapped: server.wrapped });
        // The same with a 16 MiB receive window (session and streams): http2's default of 64 KiB makes
        // the row above one round trip per 64 KiB; this one is bound by the bytes (see README, http2).
        await compare('http2', '200 concurrent streams of 256 KiB, 16 MiB window', server.tcp, server.ring, (to) => h2Streams(to, { streams: 200, size: 256 << 10, window: 16 << 20 }), [['mibps', 'MiB/s']], { wrapped: server.wrapped });
        // The same over 16 MiB rings (listen's and connect's ringSize): Node's wrapper writes its next batch only
        // once the last one is in the ring, so the ring is the connection's whole buffer (README, http2).
        await compare('http2', '200 concurrent streams of 256 KiB, 16 MiB window, 16 MiB rings', server.tcp, server.ring, (to) => h2Streams(to, { streams: 200, size: 256 << 10, window: 16 << 20, ringSize: 16 << 20 }), [['mibps', 'MiB/s']], { wrapped: server.wrapped });
      } else if (kind === 'tls') {
        // Control: TCP inside a JS Duplex on both sides, wrapped by Node as a xenring socket is.
        const ca = fs.readFileSync(keyPair.cert);
        await compare('tls.connect({ socket })', '64 MiB echo, 1 MiB writes', server.tcp, server.ring, (to) => tlsEcho(to, { bytes: 64 << 20, ca }), [['mibps', 'MiB/s (both ways)']], { wrapped: server.wrapped });
      } else {
        await compare('ws', '10,000 messages, then 16 MiB', server.tcp, server.ring, (to) => wsEcho(to, { messages: 10000, big: 16 << 20 }), [['msgps', 'messages/s'], ['bigMibps', '16 MiB echo, MiB/s']]);
      }
    } finally {
      await server.stop();
    }
  }
  if (keyPair !== null) fs.rmSync(keyPair.dir, { recursive: true, force: true });
  for (const [program, start, client, load, open, options, metrics] of [
    ['pg', startPostgres, 'pg (stream: xenring.Socket)', '1,000 queries in turn; 8 MiB bytea', pgSession, { queries: 1000, bytea: 8 << 20 }, [['qps', 'queries/s'], ['byteaMibps', 'bytea round trip, MiB/s']]],
    ['ioredis', startRedis, 'ioredis (Connector)', '5,000 SET+GET, batches of 100; 4 × 1 MiB value', ioredisSession, { ops: 5000, big: 1 << 20, bigTimes: 4 }, [['opsps', 'commands/s'], ['bigMibps', '4 × 1 MiB SET+GET, MiB/s']]],
  ]) {
    if (!want(program)) continue;
    const why = unavailable(program === 'pg' ? 'postgres' : 'redis');
    if (why) {
      note.push(`${client}: skipped, ${why}`);
      continue;
    }
    const server = await start();
    const bridge = await startRingBridge(server.port);
    const relay = await startTcpRelay(server.port);
    try {
      // Fresh connections first, as before: the warm rows then run in a process whose shared code is warm too.
      await compare(client, `${load}; ${FRESH}`, server.port, bridge.ring, (to) => oneRound(open)(to, options), metrics, relay.port);
      await compareWarm(client, `${load}; ${WARM}`, server.port, bridge.ring, open, options, metrics, relay.port);
    } finally {
      await bridge.stop();
      await relay.stop();
      await server.stop();
    }
  }
  return rows;
}

/** Runs the comparison and prints its table; a failure is printed and sets exit code 1. */
function cli(argv) {
  return main(argv).catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exitCode = 1;
  });
}

module.exports = {
  main: cli, unavailable, cpuSeconds, startRedis, startPostgres, startProxy, startProxyChain, redisBenchmark, pgbench,
  startNodeServer, startRingBridge, startTcpBridge, startTcpRelay, undiciRequests, httpPerConnection, h2Streams, wsEcho, pgQueries, ioredisOps, autocannonLoad,
  undiciSession, pgSession, ioredisSession, tlsEcho, tlsKeyPair,
};

if (require.main === module) {
  if (process.argv[2] === '--serve') serve(process.argv[3]);
  else cli(process.argv.slice(2));
}
