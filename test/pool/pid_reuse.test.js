'use strict';
// Recycling (lib/transports/local_recycle.ts) must hand a kept ring only to
// the process that had it. A client whose connecting process exited before
// its HELLO (the socket handed on to another process) names a pid that a
// later process may hold by the time the HELLO comes (up to the handshake
// timeout). That later process (the victim) connects and closes in order;
// then the HELLO in its pid's name must not get the victim's ring. The pid is
// made to come round at once through /proc/sys/kernel/ns_last_pid (root).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { fork, spawn } = require('node:child_process');
const { once } = require('node:events');
const xenring = require('../..');

const recycle = require('../../dist/transports/local_recycle');
const { children, withoutKeptLinks } = require('../helpers/fixtures');

const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

function canSetPid() {
  try {
    fs.writeFileSync(NS_LAST_PID, fs.readFileSync(NS_LAST_PID, 'utf8').trim());
    return true;
  } catch {
    return false;
  }
}

/** Blocks this thread (its event loop too: the server in it cannot accept) for `ms`. */
function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Forks the victim until it gets `pid` (ns_last_pid; others on the machine may take the pid first), or null. */
function forkWithPid(pid, port) {
  for (let i = 0; i < 50; i++) {
    fs.writeFileSync(NS_LAST_PID, String(pid - 1));
    const v = fork(path.join(__dirname, 'pid_reuse_victim.js'), [JSON.stringify({ port })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(v);
    if (v.pid === pid) return v;
    v.kill('SIGKILL');
  }
  return null;
}

/**
 * The attack: the connecting process exits, a victim takes its pid, connects
 * and closes in order (the server keeps its ring), then the HELLO comes in
 * the pid's name. `beforeAccept`: all of it before the server accepts the
 * attacker's connection (this thread blocked meanwhile), so at the accept
 * the pid already names the victim; otherwise the server accepts first and
 * only the HELLO comes late.
 */
async function attack(test, { beforeAccept }) {
  // Making a pid come round needs root (ns_last_pid); CI runs as root, elsewhere this skips.
  if (!canSetPid()) test.skip();
  const secret = Buffer.from('VICTIMSECRET'.repeat(4000)); // 48000 bytes: fits the 64 KiB ring
  let served = 0;
  const srv = xenring.createServer((s) => {
    s.on('error', () => {});
    if (served++ === 0) s.end(secret); // the victim's connection (the attacker's HELLO comes last)
    s.resume();
  });
  srv.listen({ port: 0 });
  await once(srv, 'listening');
  const pidFile = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'xenring-pid-')), 'pid');
  const py = spawn('python3', [path.join(__dirname, 'pid_reuse_peer.py'), JSON.stringify({ path: srv.address().address, order: 16, pidFile })], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(py);
  const exited = once(py, 'exit');
  const lines = readline.createInterface({ input: py.stdout });
  const next = async () => JSON.parse((await Promise.race([once(lines, 'line'), exited.then(() => { throw new Error('python peer exited'); })]))[0]);
  let victim = null;
  try {
    let pid;
    if (beforeAccept) {
      // No turn of this loop until the victim exists: the attacker's connection waits in the backlog.
      for (let i = 0; i < 1000 && !fs.existsSync(pidFile); i++) sleepSync(10);
      pid = Number(fs.readFileSync(pidFile, 'utf8'));
      victim = forkWithPid(pid, srv.address().port);
      await next(); // its {"pid"} line
    } else {
      ({ pid } = await next());
      await tick(20); // the server accepts the attacker's connection now: only the HELLO comes late
      victim = forkWithPid(pid, srv.address().port);
    }
    if (victim === null) test.skip(); // the pid never came round to us
    const [closed] = await once(victim, 'message');
    assert.equal(closed.bytes, secret.length);
    for (let i = 0; i < 100 && recycle.keptConnections() === 0; i++) await tick(10);
    assert.equal(recycle.keptConnections(), 1, "the victim's connection was not kept: the test tests nothing");
    py.stdin.write('go\n');
    const r = await next();
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.marker, 0, `pid ${pid}: another process read the victim's bytes in its ring (${r.marker} x VICTIMSECRET)`);
    assert.notEqual(r.ringIno, closed.ringIno, `pid ${pid}: the victim's ring went to another process`);
  } finally {
    victim?.kill('SIGKILL');
    py.kill('SIGKILL');
    await exited;
    srv.close();
    recycle.dropKept();
    fs.rmSync(path.dirname(pidFile), { recursive: true, force: true });
  }
}

describe('pool: recycling and pid reuse', function () {
  // About connections made afresh: a reconnect would take its kept link.
  withoutKeptLinks();

  this.timeout(30000);

  it("a HELLO in the name of a pid that a later process took gets none of that process's ring", async function () {
    await attack(this, { beforeAccept: false });
  });

  it("a connection accepted after its connecting process left and its pid went to another process gets none of that process's ring", async function () {
    await attack(this, { beforeAccept: true });
  });
});
