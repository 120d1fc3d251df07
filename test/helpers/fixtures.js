'use strict';
// Shared test plumbing: a private rendezvous directory per run, a forked
// peer with its IPC messages as a queue, and /proc resource counters.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');

if (!process.env.XENRING_DIR) {
  process.env.XENRING_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-test-'));
}

/** Every peer forked by forkPeer, for the root hook's leak check. */
const children = new Set();

/** Forks test/helpers/peer.js; `next(event)` resolves with the next message of that kind. */
function forkPeer(role, opts) {
  const child = fork(path.join(__dirname, 'peer.js'), [role, JSON.stringify(opts)], {
    env: process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const inbox = [];
  const waiters = [];
  child.on('message', (m) => {
    const i = waiters.findIndex((w) => w.event === m.event);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else inbox.push(m);
  });
  const exited = once(child, 'exit');
  return {
    child,
    exited,
    next(event) {
      const i = inbox.findIndex((m) => m.event === event);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        waiters.push({ event, resolve });
        exited.then(([code, sig]) => reject(new Error(`peer exited (${code}, ${sig}) before '${event}'`)));
      });
    },
  };
}

/**
 * Open fds of this process, less the /dev/null that libuv opens at the first
 * spawn with an ignored stdio and keeps (a test whose fork is the process's
 * first would otherwise read it as a leak).
 */
function countFds() {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === '/dev/null') continue;
    } catch {
      /* the directory's own fd, closed by now */
    }
    n++;
  }
  return n;
}

function countMaps() {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean).length;
}

/** The pool memfds mapped in this process, as "inode" strings (one per distinct region). */
function poolInodes() {
  return new Set(
    fs
      .readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((l) => l.includes('memfd:xenring-pool'))
      .map((l) => l.split(/\s+/)[4]),
  );
}

/**
 * A xenring server on a free port that accepts one socket:
 * resolves with { server, port, accepted: Promise<socket> }.
 */
async function listenOnce(options = {}) {
  const xenring = require('../..');
  let resolveSocket;
  const accepted = new Promise((r) => (resolveSocket = r));
  const server = xenring.createServer(options, (s) => resolveSocket(s));
  server.listen({ port: 0, ringSize: options.ringSize });
  await once(server, 'listening');
  return { server, port: server.address().port, accepted };
}

/**
 * Forks `file`, a server that reports { port } over IPC first and exits when
 * the test process disconnects: resolves with { child, port, stop() }.
 */
async function forkServer(file) {
  const child = fork(file, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const [{ port }] = await once(child, 'message');
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.disconnect();
    await exited;
  };
  return { child, port, stop };
}

/** Resolves with hadError on 'close' (events.once would reject on 'error'). */
function closed(socket) {
  return new Promise((resolve) => socket.once('close', resolve));
}

/** Ends both sockets of a pair, waits until both closed, then closes their server. */
async function endPair(server, a, b) {
  a.end();
  b.end();
  await Promise.all([closed(a), closed(b)]);
  server.close();
}

/**
 * For a describe() whose tests are about connections made afresh: turns kept
 * links (lib/transports/local_reuse.ts) off here and in the processes it
 * starts (XENRING_REUSE=0), for its tests only.
 */
function withoutKeptLinks() {
  let saved;
  before(() => {
    saved = process.env.XENRING_REUSE;
    process.env.XENRING_REUSE = '0';
  });
  after(() => {
    if (saved === undefined) delete process.env.XENRING_REUSE;
    else process.env.XENRING_REUSE = saved;
  });
}

module.exports = { forkPeer, forkServer, listenOnce, countFds, countMaps, poolInodes, closed, endPair, children, withoutKeptLinks };
