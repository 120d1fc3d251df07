'use strict';
// Plumbing for the hostile-peer tests: test/hostile/peer.py in its own
// process (Python's standard library passes fds and makes eventfds), its
// stdout lines as a queue, and a xenring server to attack.
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const readline = require('node:readline');
const { HANDSHAKE_VERSION } = require('../../dist/transports/local_handshake');
const { children } = require('../helpers/fixtures');

const PEER = path.join(__dirname, 'peer.py');

/**
 * Starts `python3 peer.py <mode> <opts>`. `line()` resolves with the next
 * stdout line (parsed when JSON); `end()` closes its stdin (modes that hold
 * fds open until then exit) and resolves on exit.
 */
function hostilePeer(mode, opts = {}, spawnOptions = {}) {
  const child = spawn('python3', [PEER, mode, JSON.stringify({ version: HANDSHAKE_VERSION, ...opts })], {
    stdio: ['pipe', 'pipe', 'inherit'],
    ...spawnOptions,
  });
  children.add(child);
  const exited = once(child, 'exit');
  exited.then(() => children.delete(child));
  child.on('error', (err) => {
    throw new Error(`cannot run python3 for the hostile peer: ${err.message}`);
  });
  const lines = [];
  const waiters = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let v = text;
      try {
        v = JSON.parse(text);
      } catch {
        /* a plain line such as "ready" */
      }
      if (waiters.length) waiters.shift().resolve(v);
      else lines.push(v);
    }
  });
  exited.then(([code, sig]) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`hostile peer exited (${code}, ${sig}) without output`));
  });
  return {
    child,
    exited,
    line() {
      if (lines.length) return Promise.resolve(lines.shift());
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    async end() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end();
        await exited;
      }
    },
  };
}

/** A xenring server on a free port: resolves with { server, port, path, sockets }. */
async function listeningServer(options = {}) {
  const xenring = require('../..');
  const sockets = [];
  const server = xenring.createServer(options, (s) => {
    sockets.push(s);
    s.on('error', () => {});
  });
  server.listen({ port: 0, ...options });
  await once(server, 'listening');
  const addr = server.address();
  return { server, port: addr.port, path: addr.address, sockets };
}

/** Connects with `options`: resolves with 'connect', or the error's code (and closes the socket). */
function connectOutcome(options) {
  const xenring = require('../..');
  return new Promise((resolve) => {
    const s = xenring.connect(options);
    s.on('connect', () => {
      s.destroy();
      resolve('connect');
    });
    s.on('error', (err) => resolve(err.code));
  });
}

/**
 * A xenring server listening on ring port `port` in its own process
 * (flood-server.js; its accepted sockets swallow their errors), with at most
 * `nofile` fds if given: `next()` reads its next JSON line ({ event:
 * 'listening', path } first), `cmd()` sends it a command, `stop()` ends it
 * and resolves with its exit code (0 unless it died).
 */
function serverProcess(port, { nofile } = {}) {
  const script = path.join(__dirname, 'flood-server.js');
  const argv = [script, JSON.stringify({ port })];
  const child = nofile
    ? spawn('sh', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, process.execPath, ...argv], { stdio: ['pipe', 'pipe', 'inherit'], env: process.env })
    : spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
  children.add(child);
  const exited = once(child, 'exit');
  exited.then(() => children.delete(child));
  const replies = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    cmd: (c) => child.stdin.write(JSON.stringify(c) + '\n'),
    next: async () => JSON.parse((await replies.next()).value),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.stdin.end();
      const [code] = await exited;
      return code;
    },
  };
}

/** Waits `ms` milliseconds. */
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { hostilePeer, listeningServer, connectOutcome, serverProcess, delay };
