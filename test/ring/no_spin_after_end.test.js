'use strict';
// Once our side has ended, the reader waits for the peer's last bytes and its
// end asleep: no spin (a short connection's spins for the peer's end were
// most of what it cost beyond TCP, bench/connect.js). Before end() it still
// spins. The server is another process that answers 30 ms late, so every
// wait meets an empty ring; every byte it sends is checked.
const assert = require('node:assert/strict');
const path = require('node:path');
const { forkServer } = require('../helpers/fixtures');
const { slice } = require('../helpers/pattern');
const xenring = require('../..');
const { resetFreshSpins } = require('../../dist/ring/reader');

/**
 * Connects (spinMicros 50), writes `bytes` bytes, ends at once or after the
 * first answer; resolves with what came back and the spins (waitData calls
 * with a spin time) before and after the socket's 'finish'.
 */
function round(port, bytes, endAtOnce) {
  return new Promise((resolve, reject) => {
    const spins = { beforeFinish: 0, afterFinish: 0 };
    let finished = false;
    const chunks = [];
    const s = xenring.connect({ port, spinMicros: 50 }, () => {
      const ep = s.channel.link.endpoint;
      const waitData = ep.waitData;
      // An own property (binding later keeps it): the reader calls it through the endpoint.
      Object.defineProperty(ep, 'waitData', {
        value: (micros, ...rest) => {
          if (micros > 0) spins[finished ? 'afterFinish' : 'beforeFinish']++;
          return waitData.call(ep, micros, ...rest);
        },
        configurable: true,
      });
      s.write(Buffer.alloc(bytes, 1));
      if (endAtOnce) s.end();
    });
    let got = 0;
    s.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      if (!endAtOnce && got === bytes * 1024) s.end();
    });
    s.on('finish', () => (finished = true));
    s.on('error', reject);
    s.on('close', () => resolve({ data: Buffer.concat(chunks), spins }));
  });
}

describe('ring: no spin once our side has ended', function () {
  this.timeout(60000);
  let server;
  let port;

  before(async function () {
    server = await forkServer(path.join(__dirname, 'fixtures', 'late_replier.js'));
    port = server.port;
  });

  after(() => server.stop());
  // Each connection's reader starts with no history of earlier tests' short connections (reader.ts: fresh spins).
  beforeEach(resetFreshSpins);

  it('before end() the reader spins for the late answer', async function () {
    const r = await round(port, 4, false);
    assert.equal(r.data.length, 4096);
    assert.ok(r.data.equals(slice(0, 4096)), 'answer bytes differ');
    assert.ok(r.spins.beforeFinish > 0, 'the reader never spun while waiting with spinMicros 50');
  });

  it('after end() the late answer and the end are waited for asleep; every byte arrives', async function () {
    for (let i = 0; i < 3; i++) {
      const r = await round(port, 8, true);
      assert.equal(r.data.length, 8192, `round ${i}`);
      assert.ok(r.data.equals(slice(0, 8192)), `round ${i}: answer bytes differ`);
      assert.equal(r.spins.afterFinish, 0, `round ${i}: spun ${r.spins.afterFinish} times after end()`);
    }
  });
});
