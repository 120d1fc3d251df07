'use strict';
// Root hooks: after the whole run, report (and end) anything still alive, so
// a leaked child or handle is visible instead of silently holding CI open.
const { children } = require('./fixtures');

exports.mochaHooks = {
  afterAll() {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        console.error(`warning: a forked test peer is still running (${child.spawnargs.slice(-2).join(' ')}); killing it`);
        child.kill('SIGKILL');
      }
    }
  },
};
