'use strict';
// Faults and loads of issue 12 item 5, shared by the mocha tests (short
// sizes) and scripts/soak.js (full sizes, writes docs/load-results.json).
// Each scenario returns a row { kind, name, held, result, resources, ok }:
// what was injected or held, what our process saw, and its fds / memfds /
// mappings / RSS before and after (see resources.js).
const path = require('node:path');
const { fork, spawn } = require('node:child_process');
const { once } = require('node:events');
const xenring = require('../..');
const { PatternChecker, writePattern } = require('../helpers/pattern');
const { settled, compare } = require('./resources');

const ECHO_SERVER = path.join(__dirname, '..', 'process', 'echo-server.js');
const PEER = path.join(__dirname, '..', 'helpers', 'peer.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startEchoServer(port = 0) {
  const child = fork(ECHO_SERVER, [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  const ready = once(child, 'message').then(([m]) => m.port);
  return { child, exited, ready };
}

/** Resolves { error, hadError } on 'close' (never rejects), or rejects after `ms`. */
function closeOf(socket, ms = 10_000) {
  return new Promise((resolve, reject) => {
    let error = null;
    socket.on('error', (e) => (error = e));
    const t = setTimeout(() => reject(new Error(`socket did not close within ${ms} ms`)), ms);
    socket.once('close', (hadError) => {
      clearTimeout(t);
      resolve({ error, hadError });
    });
  });
}

/** Connects, writes `bytes` of the pattern, verifies the echo, ends. */
function echoOnce(port, bytes, opts = {}) {
  return new Promise((resolve, reject) => {
    const check = new PatternChecker();
    const s = xenring.connect({ port, ringSize: opts.ringSize }, () => writePattern(s, bytes, 16384, () => {}));
    s.on('data', (d) => {
      check.update(d);
      if (check.received >= bytes) s.end();
    });
    s.on('error', reject);
    s.on('close', () => (check.ok && check.received === bytes ? resolve() : reject(new Error(`echo: ${check.received}/${bytes} bytes, ok=${check.ok}`))));
  });
}

// Node opens some fds once per process (the child-process signal pipe, ...):
// one round of everything the scenarios use happens before the first snapshot.
let warm = null;
function warmUp() {
  warm ??= (async () => {
    const srv = startEchoServer();
    await echoOnce(await srv.ready, 1024);
    srv.child.disconnect();
    await srv.exited;
    const py = spawn('python3', ['-c', 'pass'], { stdio: 'ignore' });
    await once(py, 'exit');
  })();
  return warm;
}

/** Runs fn between two settled snapshots; the row is ok when fn passed and resources match. */
async function measured(kind, name, held, fn) {
  await warmUp();
  const before = await settled();
  let result;
  let failure = null;
  try {
    result = await fn();
  } catch (e) {
    failure = e;
    result = `FAILED: ${e.message}`;
  }
  const after = await settled();
  const cmp = compare(before, after);
  const row = { kind, name, held, result, resources: cmp.text, ok: !failure && cmp.ok, problems: cmp.problems };
  if (failure) row.error = failure;
  return row;
}

const codeOf = (r) => (r.error ? r.error.code || r.error.message : 'none');

// ---- faults ----

async function killBeforeConnect() {
  return measured('fault', 'peer SIGKILL before connect', 'server process killed, then a client connects', async () => {
    const srv = startEchoServer();
    const port = await srv.ready;
    srv.child.kill('SIGKILL');
    await srv.exited;
    const s = xenring.connect({ port });
    const r = await closeOf(s);
    if (codeOf(r) !== 'ECONNREFUSED') throw new Error(`expected ECONNREFUSED, got ${codeOf(r)}`);
    // The stale socket file left by the killed server is replaced by a new one.
    const again = startEchoServer(port);
    if ((await again.ready) !== port) throw new Error('restart on the same port failed');
    await echoOnce(port, 65536);
    again.child.disconnect();
    await again.exited;
    return 'ECONNREFUSED; a new server took the port; echo verified';
  });
}

// A raw rendezvous peer in Python: accepts, reads the hello, kills itself.
const PY_KILL_AFTER_HELLO = `
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1]); s.listen(8)
print('ready', flush=True)
c, _ = s.accept(); c.recv(4096)
os.kill(os.getpid(), signal.SIGKILL)
`;

async function killMidHandshake() {
  return measured('fault', 'peer SIGKILL mid-handshake', 'server reads the hello and is killed before replying', async () => {
    const port = 40000 + Math.floor(Math.random() * 9000);
    const file = path.join(process.env.XENRING_DIR, `${port}.sock`);
    const py = spawn('python3', ['-c', PY_KILL_AFTER_HELLO, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pyExited = once(py, 'exit');
    await once(py.stdout, 'data');
    const r = await closeOf(xenring.connect({ port }));
    await pyExited;
    if (codeOf(r) !== 'ECONNREFUSED') throw new Error(`expected ECONNREFUSED, got ${codeOf(r)}`);
    return 'ECONNREFUSED, no hang';
  });
}

/** A peer process connected to our server: `role` as in test/helpers/peer.js. */
async function withPeerOnOurServer(role, opts, fn) {
  let accept;
  const accepted = new Promise((r) => (accept = r));
  const server = xenring.createServer({ allowHalfOpen: true }, (s) => accept(s));
  server.listen(0);
  await once(server, 'listening');
  const child = fork(PEER, [role, JSON.stringify({ port: server.address().port, ...opts })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const socket = await accepted;
  try {
    return await fn(socket, child);
  } finally {
    server.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

async function killMidTransfer() {
  return measured('fault', 'peer SIGKILL mid-transfer', 'peer floods, we read, peer killed', () =>
    withPeerOnOurServer('hold', { flood: true }, async (socket, child) => {
      let got = 0;
      socket.on('data', (d) => (got += d.length));
      while (got < 4 << 20) await sleep(5);
      const closed = closeOf(socket);
      child.kill('SIGKILL');
      const r = await closed;
      return `closed after ${(got / (1 << 20)).toFixed(0)}+ MiB (error: ${codeOf(r)})`;
    }),
  );
}

async function killDuringEnd() {
  return measured('fault', 'peer SIGKILL during end', 'peer has ended its side, we keep writing, peer killed', () =>
    withPeerOnOurServer('halfclose', {}, async (socket, child) => {
      socket.resume();
      await once(socket, 'end');
      const closed = closeOf(socket);
      const block = Buffer.alloc(65536, 1);
      const pump = () => {
        while (!socket.destroyed && socket.write(block));
      };
      socket.on('drain', pump);
      pump();
      await sleep(20);
      child.kill('SIGKILL');
      const r = await closed;
      return `closed (error: ${codeOf(r)})`;
    }),
  );
}

async function serverRestart(clients = 24) {
  return measured('fault', 'server restart while clients connect', `${clients} clients connecting, server SIGKILLed and restarted`, async () => {
    let srv = startEchoServer();
    const port = await srv.ready;
    const codes = {};
    let restarted = false;
    const client = async (i) => {
      await sleep(i * 4);
      for (let attempt = 0; attempt < 200; attempt++) {
        try {
          await echoOnce(port, 32768);
          return attempt;
        } catch (e) {
          codes[e.code || e.message] = (codes[e.code || e.message] || 0) + 1;
          await sleep(10);
        }
      }
      throw new Error(`client ${i} never got through`);
    };
    const all = Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
    await sleep(clients * 2);
    srv.child.kill('SIGKILL');
    await srv.exited;
    srv = startEchoServer(port);
    await srv.ready;
    restarted = true;
    await all;
    srv.child.disconnect();
    await srv.exited;
    const unexpected = Object.keys(codes).filter((c) => !['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(c));
    if (unexpected.length) throw new Error(`unexpected errors: ${JSON.stringify(codes)}`);
    return `all ${clients} verified after restart=${restarted}; retried errors ${JSON.stringify(codes)}`;
  });
}

async function badRunDirectory() {
  return measured('fault', 'missing or unwritable run directory', 'dir under a regular file (ENOTDIR), under /sys (EPERM)', async () => {
    const fs = require('node:fs');
    const file = path.join(process.env.XENRING_DIR, 'not-a-dir');
    fs.writeFileSync(file, '');
    const seen = [];
    for (const [dir, want] of [
      [path.join(file, 'run'), 'ENOTDIR'],
      ['/sys/xenring-run', 'EPERM'],
    ]) {
      for (const op of ['connect', 'listen']) {
        let code = 'none';
        try {
          if (op === 'connect') {
            const r = await closeOf(xenring.connect({ port: 1, dir }));
            code = codeOf(r);
          } else {
            const server = xenring.createServer();
            server.on('error', (e) => (code = e.code));
            server.listen({ port: 0, dir });
            await sleep(10);
          }
        } catch (e) {
          code = e.code;
        }
        if (code !== want) throw new Error(`${op} with dir ${dir}: expected ${want}, got ${code}`);
        seen.push(`${op} ${code}`);
      }
    }
    return seen.join(', ');
  });
}

// Opens connections to our server until something runs out, keeps them, then
// closes them and checks that a new connection works.
const GREEDY_CHILD = `
const xenring = require(process.argv[1]);
const [port, ringSize, max] = process.argv.slice(2).map(Number);
(async () => {
  const open = []; const codes = {};
  for (let i = 0; i < max; i++) {
    const s = xenring.connect({ port, ringSize });
    const r = await new Promise((res) => { s.once('connect', () => res('ok')); s.once('error', (e) => res(e.code)); });
    if (r === 'ok') open.push(s); else { codes[r] = (codes[r] || 0) + 1; if (codes[r] >= 3) break; }
  }
  const held = open.length;
  for (const s of open) s.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const s = xenring.connect({ port }, () => s.write('after'));
  const back = await new Promise((res) => { s.once('data', (d) => res(String(d))); s.once('error', (e) => res(e.code)); });
  s.destroy();
  process.stdout.write(JSON.stringify({ held, codes, back }));
})();
`;

/** Runs GREEDY_CHILD under `prlimit <limit>` against an echo server in this process. */
async function greedyClient(limit, ringSize, max) {
  let accepted = 0;
  const server = xenring.createServer((s) => {
    accepted++;
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen({ port: 0, ringSize });
  await once(server, 'listening');
  const args = [limit, process.execPath, '-e', GREEDY_CHILD, require.resolve('../..'), String(server.address().port), String(ringSize), String(max)];
  const child = spawn('prlimit', args, { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const [code, signal] = await once(child, 'exit');
  await sleep(50);
  server.close();
  if (code !== 0) throw new Error(`child exited ${code} ${signal}: ${out}`);
  return { ...JSON.parse(out), accepted };
}

async function fdExhaustion(limit = 48) {
  return measured('fault', 'fd exhaustion', `a client process with ulimit -n ${limit} connects until it runs out`, async () => {
    const r = await greedyClient(`--nofile=${limit}`, 65536, 200);
    if (!r.codes.EMFILE || r.back !== 'after') throw new Error(`unexpected: ${JSON.stringify(r)}`);
    return `${r.held} connections held, then EMFILE x${r.codes.EMFILE}; after closing them a new connection echoed; our server stayed up`;
  });
}

async function ringTooLarge() {
  return measured('fault', 'ringSize too large for memory', 'a client process with a 1.5 GB address-space limit opens 64 MiB rings until mmap fails', async () => {
    const r = await greedyClient('--as=1500000000', 1 << 26, 32);
    if (!r.codes.ENOMEM || r.back !== 'after') throw new Error(`unexpected: ${JSON.stringify(r)}`);
    return `${r.held} connections with 64 MiB rings, then ENOMEM x${r.codes.ENOMEM}; after closing them a new connection echoed; our server stayed up`;
  });
}

// ---- load ----

async function concurrent(n = 200, bytes = 256 << 10) {
  return measured('load', 'concurrent connections', `${n} connections through one server process, ${bytes >> 10} KiB echoed and verified each`, async () => {
    const srv = startEchoServer();
    const port = await srv.ready;
    const t = Date.now();
    await Promise.all(Array.from({ length: n }, () => echoOnce(port, bytes, { ringSize: 65536 })));
    const ms = Date.now() - t;
    srv.child.disconnect();
    await srv.exited;
    return `${n} x ${bytes >> 10} KiB verified in ${ms} ms`;
  });
}

async function cycles(n = 2000, parallel = 4) {
  return measured('load', 'connect/close cycles', `${n} connect, 1 KiB echo, close (${parallel} at a time)`, async () => {
    const srv = startEchoServer();
    const port = await srv.ready;
    const t = Date.now();
    let left = n;
    const lane = async () => {
      while (left-- > 0) await echoOnce(port, 1024);
    };
    await Promise.all(Array.from({ length: parallel }, lane));
    const ms = Date.now() - t;
    srv.child.disconnect();
    await srv.exited;
    return `${n} cycles in ${ms} ms (${Math.round((n / ms) * 1000)}/s)`;
  });
}

/** Mixed traffic for `ms`: bulk echoes, small echoes, destroys mid-transfer, half-closes, peer kills. */
async function soak(ms, onProgress = () => {}) {
  return measured('load', 'soak, mixed traffic', `${(ms / 60000).toFixed(ms < 60000 ? 2 : 0)} min of bulk, small, destroyed and half-closed connections and killed peers`, async () => {
    const srv = startEchoServer();
    const port = await srv.ready;
    const end = Date.now() + ms;
    const counts = { bulk: 0, small: 0, destroyed: 0, killed: 0, bytes: 0 };
    const lanes = [
      async () => {
        while (Date.now() < end) {
          await echoOnce(port, 4 << 20);
          counts.bulk++;
          counts.bytes += 4 << 20;
        }
      },
      async () => {
        while (Date.now() < end) {
          await echoOnce(port, 100 + Math.floor(Math.random() * 4000));
          counts.small++;
        }
      },
      async () => {
        while (Date.now() < end) {
          const s = xenring.connect({ port }, () => s.write(Buffer.alloc(1 << 20)));
          const closed = closeOf(s);
          await once(s, 'data');
          s.destroy();
          await closed;
          counts.destroyed++;
        }
      },
      async () => {
        while (Date.now() < end) {
          await withPeerOnOurServer('hold', { flood: true }, async (socket, child) => {
            socket.resume();
            await sleep(20 + Math.random() * 50);
            const closed = closeOf(socket);
            child.kill('SIGKILL');
            await closed;
          });
          counts.killed++;
          onProgress(counts);
        }
      },
    ];
    await Promise.all(lanes.map((l) => l()));
    srv.child.disconnect();
    await srv.exited;
    return `${counts.bulk} bulk (4 MiB), ${counts.small} small, ${counts.destroyed} destroyed mid-transfer, ${counts.killed} peers killed; ${(counts.bytes / (1 << 20)).toFixed(0)} MiB bulk verified`;
  });
}

const FAULTS = { killBeforeConnect, killMidHandshake, killMidTransfer, killDuringEnd, serverRestart, badRunDirectory, fdExhaustion, ringTooLarge };

module.exports = { FAULTS, concurrent, cycles, soak, measured };
