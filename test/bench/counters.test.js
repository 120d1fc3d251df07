'use strict';
// bench/client-counts.js instruments the processes of a load by being
// preloaded (-r): it wraps the addon's FdWatcher and RingEndpoint to count.
// Its wrappers must hand the library everything: the watcher's callback
// carries the bytes a wake-up already read out of the ring natively, and a
// wrapper that passed on only the events lost them (client-counts pg hung at
// its first reply). Two processes with the counters preloaded ping-pong here
// with spinMicros 0, so every reply comes by a wake-up; every reply must
// arrive, checked, and the counters must have seen the wake-ups.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
require('../helpers/fixtures');

const COUNTS = path.join(__dirname, '..', '..', 'bench', 'client-counts.js');

/** Forks `file` with the counters preloaded; its IPC messages are kept in `messages`. */
function forkCounted(file, args, dir) {
  const child = fork(file, args, {
    execArgv: [...process.execArgv, '-r', COUNTS],
    env: { ...process.env, XENRING_COUNTS_DIR: dir },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages = [];
  child.on('message', (m) => messages.push(m));
  return { child, messages, exited: once(child, 'exit') };
}

/** Resolves with the first message of `event`, rejects on an 'error' message or after `ms` (a stall: bytes lost). */
function waitFor(peer, event, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`${what}: no '${event}' after ${ms} ms; messages ${JSON.stringify(peer.messages.slice(-3))}`));
    }, ms);
    const poll = setInterval(() => {
      const err = peer.messages.find((m) => m.event === 'error');
      const hit = peer.messages.find((m) => m.event === event);
      if (!err && !hit && peer.child.exitCode === null) return;
      clearTimeout(timer);
      clearInterval(poll);
      if (err) reject(new Error(`${what}: ${err.code} ${err.message}`));
      else if (hit) resolve(hit);
      else reject(new Error(`${what}: exited ${peer.child.exitCode} before '${event}'`));
    }, 20);
  });
}

describe('bench: client-counts preloaded into both ends of a ring', function () {
  this.timeout(120000);

  it('300 one-byte round trips by wake-ups arrive intact, and the counters count those wake-ups', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-counts-test-'));
    const server = forkCounted(path.join(__dirname, '..', 'ring', 'fixtures', 'wake_echo.js'), ['0'], dir);
    let client = null;
    try {
      const { port } = await waitFor(server, 'listening', 30000, 'echo server');
      const rounds = 300;
      client = forkCounted(path.join(__dirname, 'fixtures', 'pingpong_client.js'), [String(port), String(rounds)], dir);
      // A lost reply stalls the ping-pong for good: bounded, so that it fails rather than hangs.
      const done = await waitFor(client, 'done', 60000, 'ping-pong client').catch((err) => {
        throw new Error(`${err.message}; echo server's messages ${JSON.stringify(server.messages)}`);
      });
      assert.equal(done.rounds, rounds);
      // The counters write <pid>.json on SIGUSR2: the wrapped watchers were the ones called.
      for (const p of [server, client]) p.child.kill('SIGUSR2');
      const files = [server, client].map((p) => path.join(dir, `${p.child.pid}.json`));
      for (let i = 0; i < 500 && !files.every((f) => fs.existsSync(f)); i++) await new Promise((r) => setTimeout(r, 20));
      for (const f of files) {
        const { counts } = JSON.parse(fs.readFileSync(f, 'utf8'));
        assert.ok(counts['wake-ups'] >= rounds / 2, `${path.basename(f)}: ${counts['wake-ups']} wake-ups counted for ${rounds} round trips`);
        assert.ok(counts['socket.push bytes'] >= rounds, `${path.basename(f)}: ${counts['socket.push bytes']} bytes pushed`);
      }
      client.child.send('end');
      const [[clientCode], [serverCode]] = await Promise.all([client.exited, server.exited]);
      assert.deepEqual([clientCode, serverCode], [0, 0]);
      assert.deepEqual([...server.messages, ...client.messages].filter((m) => m.event === 'error'), []);
    } finally {
      for (const p of [server, client]) if (p && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
