'use strict';
// One hook pair for the real-program suites: a server program started for
// the enclosing describe, with something in front of it (a proxy chain, a
// ring bridge), both stopped after.
const real = require('../../bench/real');

/**
 * For the enclosing describe: starts `program` with `start()` (skipping, with
 * the reason printed, if it is not installed), then `front(port)` in front of
 * it. Returns { server, front }, filled in once started.
 */
function frontedServer(program, start, front) {
  const ctx = { server: null, front: null };
  before(async function () {
    const why = real.unavailable(program);
    if (why) {
      console.log(`      (skipped: ${why})`);
      return this.skip();
    }
    ctx.server = await start();
    ctx.front = await front(ctx.server.port);
  });
  after(async function () {
    if (ctx.front) await ctx.front.stop();
    if (ctx.server) await ctx.server.stop();
  });
  return ctx;
}

module.exports = { frontedServer };
