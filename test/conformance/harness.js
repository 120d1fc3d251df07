'use strict';
/**
 * Conformance harness: every scenario is written once against a small
 * "implementation" object and runs twice, against node:net (TCP on 127.0.0.1)
 * and against xenring (local transport). The net run proves the expected
 * values; a failure only on xenring is a xenring bug.
 *
 *   const { describeBoth } = require('./harness');
 *   describeBoth('thing', (impl) => { it('...', async () => { ... }) });
 */
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { fork } = require('node:child_process');

// Private rendezvous directory for the xenring runs (inherited by forked children).
if (!process.env.XENRING_DIR) {
  process.env.XENRING_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-conf-'));
}

const ROOT = path.resolve(__dirname, '..', '..');
const xenring = require(ROOT);

const impls = {
  net: {
    name: 'net',
    lib: net,
    Socket: net.Socket,
    Server: net.Server,
    createServer: (...a) => net.createServer(...a),
    /** connect(port[, options][, cb]) */
    connect(port, options, cb) {
      if (typeof options === 'function') [cb, options] = [options, {}];
      return net.connect({ port, host: '127.0.0.1', ...options }, cb);
    },
    /** Arguments for socket.connect() on a `new Socket()`. */
    connectOptions: (port, extra) => ({ port, host: '127.0.0.1', ...extra }),
    listen(server, port, cb) {
      return server.listen(port, '127.0.0.1', cb);
    },
    expectedFamily: ['IPv4'],
  },
  xenring: {
    name: 'xenring',
    lib: xenring,
    Socket: xenring.Socket,
    Server: xenring.Server,
    createServer: (...a) => xenring.createServer(...a),
    connect(port, options, cb) {
      if (typeof options === 'function') [cb, options] = [options, {}];
      return xenring.connect({ port, ...options }, cb);
    },
    connectOptions: (port, extra) => ({ port, ...extra }),
    listen(server, port, cb) {
      return server.listen(port, cb);
    },
    expectedFamily: ['local'],
  },
};

// Everything a test opens is registered here and torn down after each test,
// so that a failing test cannot leave a handle that keeps mocha alive.
const opened = { sockets: new Set(), servers: new Set() };
for (const impl of Object.values(impls)) {
  const { connect, createServer } = impl;
  impl.connect = (...a) => {
    const s = connect(...a);
    opened.sockets.add(s);
    return s;
  };
  impl.createServer = (...a) => {
    const server = createServer(...a);
    opened.servers.add(server);
    server.on('connection', (s) => opened.sockets.add(s));
    return server;
  };
}
if (typeof afterEach === 'function') {
  afterEach(function () {
    for (const s of opened.sockets) if (!s.destroyed) s.destroy();
    for (const server of opened.servers) if (server.listening) server.close();
    opened.sockets.clear();
    opened.servers.clear();
  });
}

const IMPL_NAMES = (process.env.CONFORMANCE_IMPLS || 'net,xenring').split(',');

/** Runs `fn(impl)` inside a describe block once per implementation. */
function describeBoth(title, fn) {
  for (const name of IMPL_NAMES) {
    const impl = impls[name];
    describe(`${title} [${name}]`, function () {
      fn.call(this, impl);
    });
  }
}

/** Resolves with the args of the first `event` (array if several). */
function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args.length > 1 ? args : args[0])));
}

/** Listens on a free port; resolves { server, port }. */
async function startServer(impl, options, onConnection) {
  if (typeof options === 'function') [onConnection, options] = [options, undefined];
  const server = options ? impl.createServer(options, onConnection) : impl.createServer(onConnection);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    impl.listen(server, 0, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: server.address().port };
}

/** A port that nothing listens on (it was just released). */
async function deadPort(impl) {
  const { server, port } = await startServer(impl);
  await new Promise((r) => server.close(r));
  return port;
}

/** Closes a server, resolving when its 'close' fires (connections must be gone). */
function closeServer(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

/**
 * Records events of `emitter` in order: entries are the event name, or
 * `name:detail` where `detail(args)` returns a string.
 */
function recorder(emitter, names, detail = {}) {
  const log = [];
  for (const n of names) {
    emitter.on(n, (...args) => log.push(detail[n] ? `${n}:${detail[n](...args)}` : n));
  }
  return log;
}

/** Resolves with hadError once 'close' has fired. */
function closed(socket) {
  return new Promise((resolve) => socket.once('close', resolve));
}

/**
 * Records a socket's lifecycle in order, collapsing consecutive 'data' events
 * into one `data:<total bytes>` entry (chunking differs between transports).
 * `end` also records destroyed/writable as seen inside the handler.
 */
function trackSocket(socket, events = ['connect', 'ready', 'data', 'end', 'finish', 'error', 'close', 'timeout']) {
  const log = [];
  let dataBytes = 0;
  const flushData = () => {
    if (dataBytes) log.push(`data:${dataBytes}`);
    dataBytes = 0;
  };
  for (const ev of events) {
    socket.on(ev, (arg) => {
      if (ev === 'data') {
        dataBytes += arg.length;
        return;
      }
      flushData();
      if (ev === 'end') log.push(`end:destroyed=${socket.destroyed}:writable=${socket.writable}`);
      else if (ev === 'error') log.push(`error:${arg.code}`);
      else if (ev === 'close') log.push(`close:${arg}`);
      else log.push(ev);
    });
  }
  // Non-enumerable, so that deepStrictEqual(log, [...]) compares entries only.
  Object.defineProperties(log, {
    /** The log with any pending data run included. */
    now: { value: () => (dataBytes ? [...log, `data:${dataBytes}`] : [...log]) },
    /** Resolves with hadError on 'close' (attached now, so it cannot be missed). */
    closed: { value: new Promise((resolve) => socket.once('close', resolve)) },
  });
  return log;
}

const nextTick = () => new Promise((r) => process.nextTick(r));
const immediate = () => new Promise((r) => setImmediate(r));
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

const CHILD = path.join(__dirname, 'child.js');

/**
 * Forks child.js with a role for `impl`. Resolves { child, msg } on the first
 * IPC message (roles that listen send { port }). `exited` resolves
 * { code, signal, stdout, stderr }.
 */
const liveChildren = new Set();
function forkRole(impl, role, args = [], { waitMessage = true, env, script = CHILD } = {}) {
  const child = fork(script, [impl.name, role, ...args.map(String)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.role = `${impl.name}:${role}`;
  liveChildren.add(child);
  child.exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      liveChildren.delete(child);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  if (!waitMessage) return Promise.resolve({ child });
  return new Promise((resolve, reject) => {
    child.once('message', (msg) => resolve({ child, msg }));
    child.exited.then((r) => reject(new Error(`child ${role} exited early: ${JSON.stringify(r)}`)));
  });
}

/** Waits for a child to exit; asserts a clean exit and returns its result. */
async function expectCleanExit(child, ms = 60000) {
  let timer;
  const r = await Promise.race([child.exited, new Promise((res) => (timer = setTimeout(res, ms, { timedOut: true })))]);
  clearTimeout(timer);
  if (r.timedOut) {
    child.kill('SIGKILL');
    assert.fail(`child did not exit within ${ms} ms`);
  }
  assert.strictEqual(r.code, 0, `child failed: code ${r.code} signal ${r.signal}\n${r.stderr}`);
  return r;
}

// Children must all be gone when the suite ends: a leftover one means a role
// that did not exit (e.g. a server that could not close); kill it and say so.
if (typeof after === 'function') {
  after(async function () {
    await delay(200);
    for (const c of liveChildren) {
      console.warn(`conformance: child ${c.role} (pid ${c.pid}) still running at the end; killed`);
      c.kill('SIGKILL');
    }
  });
}

module.exports = {
  impls,
  xenring,
  ROOT,
  describeBoth,
  once,
  startServer,
  deadPort,
  closeServer,
  recorder,
  closed,
  trackSocket,
  nextTick,
  immediate,
  delay,
  forkRole,
  expectCleanExit,
};
