'use strict';
// Issue 12 item 5 in the lab: load through the Xen transport, scaled to the
// emulated CPU: 32 concurrent connection set-ups (xenstored limits
// transactions per domain) each echoing verified data, then connect/close
// cycles. Afterwards fds, Xen device mappings (grants mapped or allocated)
// and RSS are back to the start and no xenstore node is left. Skips where the
// Xen devices are not usable; run with `npm run test:xen`.
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { root, ownDomidOrSkip } = require('./helpers');
const xenring = require(path.join(root, 'dist', 'index.js'));
const { xenStore } = require(path.join(root, 'dist', 'transports', 'xen', 'xenstore.js'));
const { PatternChecker, writePattern } = require('../helpers/pattern');
const { settled, compare } = require('../load/resources');

let self;
const xenMaps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('/dev/xen/')).length;
const { settleMappings } = require('./pool_helpers');

/** The Xen device mappings once collectable pool loans and views are gone (or after 5 s). */
async function settledXenMaps(want) {
  await settleMappings({ gntalloc: -1, gntdev: -1 }, 0); // one collection
  for (const end = Date.now() + 5000; xenMaps() !== want && Date.now() < end; ) await settleMappings({ gntalloc: -1, gntdev: -1 }, 0);
  return xenMaps();
}

/** Connects, echoes `bytes` verified; resolves with the ms the connection took to set up. */
function echoOnce(port, bytes) {
  return new Promise((resolve, reject) => {
    const check = new PatternChecker();
    const t0 = Date.now();
    let setup = -1;
    const s = xenring.connect({ port, transport: 'xen', domid: self }, () => {
      setup = Date.now() - t0;
      writePattern(s, bytes, 16384, () => {});
    });
    s.on('data', (d) => {
      check.update(d);
      if (check.received >= bytes) s.end();
    });
    s.on('error', reject);
    s.on('close', () => (check.ok && check.received === bytes ? resolve(setup) : reject(new Error(`echo: ${check.received}/${bytes}, ok=${check.ok}`))));
  });
}

async function withEchoServer(fn) {
  const server = xenring.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, transport: 'xen' }, resolve);
  });
  const port = server.address().port;
  try {
    return await fn(port);
  } finally {
    await new Promise((r) => server.close(r));
    assert.strictEqual(await xenStore().readOptional(`/local/domain/${self}/data/xenring/${port}`), null);
  }
}

async function measured(label, fn) {
  const before = { ...(await settled()), xen: xenMaps() };
  const xenbus = xenStore().connections;
  const result = await fn();
  await new Promise((r) => setTimeout(r, 200));
  // The xenstore client closes an idle extra xenbus fd 100 ms after its last
  // request; on an emulated CPU under host load that timer runs late (fds
  // 28 -> 30 once, at 1.3 s per set-up): wait up to 5 s for them to go, so
  // the fd count below still sees any fd that stays.
  for (const end = Date.now() + 5000; xenStore().connections > xenbus && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
  // Pool regions stay mapped while a loan or view of them lives (until collected): settle those too.
  const after = { ...(await settled()), xen: await settledXenMaps(before.xen) };
  const cmp = compare(before, after);
  console.log(`      ${label}: ${result}\n        ${cmp.text}, Xen device mappings ${before.xen}->${after.xen}`);
  assert.deepStrictEqual(cmp.problems, []);
  assert.strictEqual(after.xen, before.xen, 'Xen device mappings (grants) left behind');
}

describe("xen lab: load through transport 'xen'", function () {
  this.timeout(300000);
  before(async function () {
    self = await ownDomidOrSkip(this);
    await withEchoServer((port) => echoOnce(port, 1024)); // warm-up: first-use fds and caches
  });

  it('32 concurrent connection set-ups, 256 KiB echoed and verified each, nothing left behind', async () => {
    // The xenstore client spreads the set-ups' requests over several xenbus
    // fds (one request on the wire each); they must all work on the real
    // device, stay within the pool's bound and be closed again after.
    // Idle fds beyond the first close 100 ms after their last request: let the earlier tests' go first.
    await new Promise((r) => setTimeout(r, 250));
    const base = xenStore().connections; // 1, or more if an earlier test left a watch open
    let most = 0;
    const sample = setInterval(() => (most = Math.max(most, xenStore().connections)), 2);
    await measured('32 concurrent', () =>
      withEchoServer(async (port) => {
        const t0 = Date.now();
        const setups = (await Promise.all(Array.from({ length: 32 }, () => echoOnce(port, 256 << 10)))).sort((a, b) => a - b);
        // The listener sets up 4 offers per client domain at a time, each
        // client bounded by its 10 s connect timeout: the slowest set-up here
        // is the margin a burst of 32 from one domain has (docs/xen.md).
        const q = (f) => setups[Math.min(31, Math.floor(f * 32))];
        return `32 x 256 KiB in ${Date.now() - t0} ms; set-up ms min ${setups[0]}, median ${q(0.5)}, max ${setups[31]} (${(setups[31] / 32).toFixed(0)} ms per queued set-up)`;
      }),
    ).finally(() => clearInterval(sample));
    console.log(`        xenbus fds: ${base} before, ${most} at most, ${xenStore().connections} after`);
    assert.ok(most > base && most <= 8, `xenbus fds at most ${most}`);
    assert.strictEqual(xenStore().connections, base);
  });

  it('200 connect/echo/close cycles (fewer if the emulated CPU is slow: at least 40 in 150 s), nothing left behind', async () => {
    // Scaled to what the emulated CPU allows, as the issue asks: on a busy
    // host QEMU gets a fraction of a vCPU and a cycle takes seconds, and a
    // test cut off by mocha's timeout would leave its connections to the next.
    const BUDGET_MS = 150000;
    const MIN = 40;
    let done = 0;
    await measured('cycles', () =>
      withEchoServer(async (port) => {
        const t0 = Date.now();
        while (done < 200 && (done < MIN || Date.now() - t0 < BUDGET_MS)) {
          await echoOnce(port, 1024);
          done++;
        }
        return `${done} cycles in ${Date.now() - t0} ms${done < 200 ? ` (stopped at the ${BUDGET_MS / 1000} s budget)` : ''}`;
      }),
    );
    assert.ok(done >= MIN, `${done} cycles`);
  });
});
