'use strict';
// Issue 12 item 5, short versions of the loads (npm run soak runs the full
// sizes): after each, fds, memfds, mappings and RSS are back to the start.
const assert = require('node:assert/strict');
require('../helpers/fixtures');
const { concurrent, cycles, soak } = require('./scenarios');

function check(row) {
  console.log(`      ${row.held}: ${row.result}\n        ${row.resources}`);
  if (row.error) throw row.error;
  assert.deepEqual(row.problems, [], row.resources);
}

describe('load: held, verified, and nothing left behind', function () {
  it('200 concurrent connections through one server, each echoing 256 KiB', async function () {
    check(await concurrent(200, 256 << 10));
  });
  it('2,000 connect/close cycles', async function () {
    check(await cycles(2000));
  });
  it('a 10 s soak of mixed traffic', async function () {
    check(await soak(10_000));
  });
});
