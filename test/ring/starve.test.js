'use strict';
// Issue 11, attack 2: a peer that keeps advancing its producer index (with
// no real data behind it) must not keep our read pump in one macrotask. The
// hostile peer is a real process (Python, mapping the shared memfd); the
// victim runs in a child so that a starved loop shows up as a missing report
// instead of hanging this test runner.
const assert = require('node:assert/strict');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const path = require('node:path');

describe('ring: a flooding peer cannot starve the event loop', function () {
  it('timers and setImmediate callbacks still run while the ring is kept full', async function () {
    const child = fork(path.join(__dirname, 'fixtures', 'starve_victim.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // Awaited after the kill: its IPC socket must not close during a later test.
    const closed = once(child, 'close');
    // The clock starts when the victim starts reading (a loaded machine may
    // take seconds to start a child); the flood lasts 60 s.
    const report = await new Promise((resolve) => {
      let timer = null;
      child.on('message', (m) => {
        if (m.started) {
          timer = setTimeout(() => {
            child.kill('SIGKILL');
            resolve(null);
          }, 20000);
          return;
        }
        if (timer) clearTimeout(timer);
        resolve(m);
      });
      child.once('exit', () => resolve(null));
    });
    child.kill('SIGKILL');
    await closed;
    assert.ok(report !== null, 'the victim\'s 20 ms timer never fired within 20 s of the flood: its loop was starved');
    assert.equal(report.error, undefined, report.error);
    // The pump really was busy with the flood when the timer fired...
    assert.ok(report.bytesBefore > 0, `the flood was read: ${JSON.stringify(report)}`);
    // ...and other work ran meanwhile (no tight timing bound: the machine is shared).
    assert.ok(report.immediates > 0, 'setImmediate callbacks ran');
  });
});
