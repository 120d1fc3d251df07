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
const { children } = require('../helpers/fixtures');

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

describe('pool: recycling and pid reuse', function () {
  it('a HELLO in the name of a pid that a later process took gets none of that process\'s ring', async function () {
    if (!canSetPid()) this.skip();
    const secret = Buffer.from('VICTIMSECRET'.repeat(4000)); // 48000 bytes: fits the 64 KiB ring
    let served = 0;
    const srv = xenring.createServer((s) => {
      s.on('error', () => {});
      if (served++ === 0) s.end(secret); // the victim's connection (the other one's HELLO comes last)
      s.resume();
    });
    srv.listen({ port: 0 });
    await once(srv, 'listening');
    const py = spawn('python3', [path.join(__dirname, 'pid_reuse_peer.py'), JSON.stringify({ path: srv.address().address, order: 16 })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.add(py);
    const exited = once(py, 'exit');
    const lines = readline.createInterface({ input: py.stdout });
    const next = async () => JSON.parse((await Promise.race([once(lines, 'line'), exited.then(() => { throw new Error('python peer exited'); })]))[0]);
    let victim = null;
    try {
      const { pid } = await next();
      // The server accepts its connection first (this loop's poll, before the
      // timer): the HELLO, not the accept, is what comes late.
      await tick(20);
      // The next process made gets `pid` (others on the machine may take it first: try again).
      for (let i = 0; i < 50 && victim === null; i++) {
        fs.writeFileSync(NS_LAST_PID, String(pid - 1));
        const v = fork(path.join(__dirname, 'pid_reuse_victim.js'), [JSON.stringify({ port: srv.address().port })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.add(v);
        if (v.pid === pid) victim = v;
        else {
          v.kill('SIGKILL');
          await once(v, 'exit');
        }
      }
      if (victim === null) this.skip(); // the pid never came round to us
      const [closed] = await once(victim, 'message');
      assert.equal(closed.bytes, secret.length);
      for (let i = 0; i < 100 && recycle.keptConnections() === 0; i++) await tick(10);
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
    }
  });
});
