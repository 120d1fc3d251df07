'use strict';
// Issue 12 item 5: each fault gets a clear error, and our process is back to
// its starting fds, memfds, mappings and RSS afterwards (printed, asserted).
// scripts/soak.js runs the same scenarios for the README table.
const assert = require('node:assert/strict');
require('../helpers/fixtures');
const { FAULTS } = require('./scenarios');

describe('faults: a clear error and a clean state after', function () {
  for (const [key, run] of Object.entries(FAULTS)) {
    it(key, async function () {
      const row = await run();
      console.log(`      ${row.name}: ${row.result}\n        ${row.resources}`);
      if (row.error) throw row.error;
      assert.deepEqual(row.problems, [], row.resources);
    });
  }
});
