'use strict';
// A loan sent by reference is detached (its bytes are the receiver's). Writing
// the same allocBuffer() Buffer again used to send nothing in its place and
// report success: the receiver got less than written, silently. It must fail
// the write with ERR_INVALID_ARG_VALUE instead, whether the first write went
// at once or both waited behind a full ring. The receiver is another process.
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { once } = require('node:events');
const xenring = require('../..');

const RECEIVER = `
const xenring = require(${JSON.stringify(require.resolve('../..'))});
const srv = xenring.createServer((s) => {
  let n = 0;
  s.pause();
  setTimeout(() => s.resume(), 200); // let the writer's ring fill first
  s.on('data', (d) => { n += d.length; });
  s.on('error', () => {});
  s.on('close', () => { console.log(JSON.stringify({ got: n })); srv.close(); });
});
srv.listen({ port: 0, ringSize: 1 << 20 }, () => console.log(JSON.stringify({ port: srv.address().port })));
`;

async function scenario(fillFirst) {
  const child = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit'); // listened for now: it may exit before its last line is read
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const { port } = JSON.parse((await lines.next()).value);
  const c = xenring.connect({ port, pool: { size: 8 << 20 } });
  await once(c, 'connect');
  if (fillFirst) c.write(Buffer.alloc(4 << 20, 1)); // more than the ring: the loans below wait
  const loan = c.allocBuffer(1 << 20);
  loan.fill(7);
  c.write(loan);
  c.write(loan);
  const [err] = await once(c, 'error');
  const { got } = JSON.parse((await lines.next()).value);
  await exited;
  return { err, got };
}

describe('pool: an allocBuffer() written again after it went by reference', function () {
  this.timeout(30000);
  for (const fillFirst of [false, true]) {
    it(`fails with ERR_INVALID_ARG_VALUE, never sends nothing in its place (${fillFirst ? 'both writes queued behind a full ring' : 'the first write went at once'})`, async () => {
      const { err, got } = await scenario(fillFirst);
      assert.equal(err.code, 'ERR_INVALID_ARG_VALUE');
      assert.match(err.message, /already sent by reference/);
      // The receiver got exactly what went before the second write (and no more).
      assert.equal(got, (fillFirst ? 4 << 20 : 0) + (1 << 20));
    });
  }
});
