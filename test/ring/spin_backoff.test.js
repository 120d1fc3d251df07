'use strict';
// When to spin (lib/ring/spin_backoff.ts): misses make spins exponentially
// rarer; a connection whose spins mostly miss earns its spins back one hit
// at a time; nothing spins while the host has no spare CPU, and such a
// chance costs the connection nothing.
const assert = require('node:assert/strict');
const { SpinBackoff, runnableFits, hostHasSpareCpu } = require('../../dist/ring/spin_backoff');

/** Chances taken until the next spin (0: the next chance spins). */
function skipsBeforeSpin(b) {
  let n = 0;
  while (!b.take()) if (++n > 5000) return Infinity;
  return n;
}

describe('ring: when to spin (SpinBackoff)', function () {
  it('a miss skips 2, 4, 8 ... chances (at most 1024); a hit on a connection that mostly hits resets that', function () {
    const b = new SpinBackoff(() => true);
    assert.equal(skipsBeforeSpin(b), 0);
    b.failed();
    assert.equal(skipsBeforeSpin(b), 2);
    b.failed();
    assert.equal(skipsBeforeSpin(b), 4);
    b.succeeded(); // 2 misses of 4: the hit rate is still high
    assert.equal(skipsBeforeSpin(b), 0);
    for (let i = 0; i < 20; i++) b.failed();
    assert.equal(skipsBeforeSpin(b), 1024);
  });

  it('a connection whose spins often miss keeps skipping until enough of its rare spins hit', function () {
    const b = new SpinBackoff(() => true);
    for (let i = 0; i < 12; i++) b.failed(); // hit rate (7/8)^12, about 0.2
    const skips = [];
    for (let i = 0; i < 10; i++) {
      b.succeeded();
      skips.push(skipsBeforeSpin(b));
    }
    // 1 - 0.8 * (7/8)^n reaches 0.75 at the 9th hit.
    assert.deepEqual(skips, [1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0]);
    // Half the spins missing: the old rule (any hit resets) spun at every other chance.
    const alternating = new SpinBackoff(() => true);
    let spins = 0;
    for (let i = 0; i < 4000; i++) {
      if (!alternating.take()) continue;
      spins++;
      if (spins % 2) alternating.failed();
      else alternating.succeeded();
    }
    assert.ok(spins < 100, `a connection whose spins half miss spun at ${spins} of 4000 chances`);
  });

  it('does not spin without a spare CPU, and such chances count as neither hit nor miss', function () {
    let spare = false;
    const b = new SpinBackoff(() => spare);
    for (let i = 0; i < 50; i++) assert.equal(b.take(), false);
    spare = true;
    assert.equal(skipsBeforeSpin(b), 0, 'the busy host left a back-off behind');
  });

  it("reads the host's runnable tasks from /proc/loadavg", function () {
    assert.equal(runnableFits('0.52 0.58 0.59 2/467 12345\n', 2), true);
    assert.equal(runnableFits('0.52 0.58 0.59 3/467 12345\n', 2), false);
    assert.equal(runnableFits('9.10 7.00 4.00 12/300 999\n', 16), true);
    assert.equal(runnableFits('', 2), true, 'unreadable: spin as before');
    assert.equal(runnableFits('garbage', 2), true);
    assert.equal(typeof hostHasSpareCpu(), 'boolean');
  });
});
