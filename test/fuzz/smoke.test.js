'use strict';
// The fuzz smoke: every fuzz target (fuzz/run.js --list) replays its corpus
// and every saved crash reproducer (fuzz/regressions/<target>/), then runs a
// few seconds of seeded random mutations. Native targets are built with g++
// under AddressSanitizer + UBSan (no clang needed; the first build takes
// ~15-60 s and is cached in build/fuzz/smoke/). `npm run fuzz` is the long,
// coverage-guided run.
const assert = require('node:assert/strict');
const { parseArgs, build, runTarget, NATIVE_TARGETS, JS_TARGETS } = require('../../fuzz/run');

/** Seconds of mutations per target, and a fixed seed so a failure replays. */
const SECONDS = 3;
const SEED = 20261201;

describe('fuzz smoke: corpus, regressions and seeded mutations of every target', function () {
  this.timeout(300_000);
  const o = parseArgs(['--smoke', '--time', String(SECONDS), '--seed', String(SEED), '--runs', '20000']);
  let bins;

  before(async function () {
    bins = await build(o, () => {});
  });

  for (const t of [...NATIVE_TARGETS, ...JS_TARGETS]) {
    const kind = NATIVE_TARGETS.includes(t) ? 'native, ASan+UBSan' : 'TypeScript';
    it(`${t} (${kind})`, async function () {
      const r = await runTarget(o, bins, t);
      const tail = r.out.trim().split('\n').slice(-40).join('\n');
      assert.ok(r.ok, `${t} failed${r.crash ? `; input saved to ${r.crash}` : ''}:\n${tail}`);
      assert.match(r.out, /no failure/);
    });
  }
});
