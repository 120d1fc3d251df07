'use strict';
// The native objects a ring endpoint is handed (its mappings, its notifier)
// and the endpoint a watcher is bound to must be what they claim to be, and
// stay alive while used. On the old code each case below crashed the process
// (SIGSEGV) or had the ring write over a heap object: an options getter could
// hand the constructor one mapping to check and another to keep alive, so the
// GC unmapped the pages under the ring; and an instanceof test let an object
// of another native class (given the prototype) through, whose C++ object was
// then used as a mapping, a notifier or an endpoint. Each case runs in its own
// process (test/ring/fixtures/lookalikes.js) so a crash fails it.
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');

function runCase(name) {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--expose-gc', path.join(__dirname, 'fixtures', 'lookalikes.js'), name], (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, signal: err ? err.signal : null, out: stdout.trim(), stderr });
    });
  });
}

async function result(name) {
  const r = await runCase(name);
  assert.deepEqual([r.code, r.signal], [0, null], `the ${name} process died:\n${r.stderr}`);
  return JSON.parse(r.out);
}

const notAMapping = (where) => ({ code: 'ERR_INVALID_ARG_TYPE', message: `options.${where} must be a live${where === 'control' ? ', writable' : ''} SharedMapping` });

describe('ring: look-alike objects and options read twice', function () {
  this.timeout(30000);

  for (const which of ['control', 'ring']) {
    it(`a ${which} mapping is read once: the one checked is the one kept alive (the GC cannot unmap it under the ring)`, async function () {
      const r = await result(`swap-${which}`);
      assert.equal(r.reads, 1, 'the getter was read once');
      assert.equal(r.held, true, 'the mapping the endpoint uses was not collected');
      assert.equal(r.wrote, 1000);
      assert.equal(r.space, 4096 - 1000);
    });

    it(`an object of another native class with SharedMapping's prototype is refused as the ${which} mapping`, async function () {
      assert.deepEqual(await result(`fake-${which}`), notAMapping(which === 'control' ? 'control' : 'left.mapping'));
    });
  }

  it("a SharedMapping with Notifier's prototype is refused by setNotifier(); the endpoint stays without one", async function () {
    const r = await result('fake-notifier');
    assert.deepEqual(r.set, { code: 'ERR_INVALID_ARG_TYPE', message: 'The "notifier" argument must be a Notifier' });
    assert.deepEqual(r.kick, { ok: null }, 'kick() with no notifier wakes nobody and throws nothing');
  });

  it("a SharedMapping with RingEndpoint's prototype is neither bound (bindRingMethods) nor read by a watcher's wake-up", async function () {
    const r = await result('fake-endpoint');
    assert.equal(r.bound, false);
    assert.deepEqual(r.bind, { code: 'ERR_INVALID_ARG_TYPE', message: 'The "endpoint" argument must be a RingEndpoint or null' });
    assert.deepEqual(r.call, { events: 1 }, 'the wake-up reached JS with no ring read');
  });
});
