'use strict';
// Freezing the event loop through the wake-up fds (issue 11, attack 1). With
// eventfds shared between the processes, a server could clear O_NONBLOCK on
// the open file description and preload the counter: the client's next kick
// write() blocked forever, and with it every timer and connection of that
// process. Wake-ups now go over a pipe per direction: each side reads only a
// read end it alone holds, and kicks with vmsplice(SPLICE_F_NONBLOCK), which
// never sleeps whatever the peer does to the shared write end; the same
// server must not stop the client's loop.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const readline = require('node:readline');
const { children } = require('../helpers/fixtures');
const { hostilePeer } = require('./helpers');

describe('hostile peer: freezing the event loop', function () {
  this.timeout(30000);

  it("a server that sabotages the wake-up fds cannot block the client's event loop", async function () {
    const port = `freeze-${process.pid}`;
    const server = hostilePeer('server', { path: path.join(process.env.XENRING_DIR, `${port}.sock`), reply: 'honest', freeze: true });
    assert.equal(await server.line(), 'ready');
    const client = spawn(process.execPath, [path.join(__dirname, 'freeze-client.js'), port, '1500'], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: process.env,
    });
    children.add(client);
    const exited = once(client, 'exit');
    try {
      const lines = readline.createInterface({ input: client.stdout })[Symbol.asyncIterator]();
      const next = () => lines.next().then((r) => (r.done ? { event: 'exit' } : JSON.parse(r.value)));
      assert.deepEqual(await next(), { event: 'connected' });
      assert.equal(await server.line(), 'attacking');
      client.stdin.write('go\n');
      // 1.5 s of writes under attack; a frozen loop never reports back.
      const verdict = await Promise.race([next(), new Promise((r) => setTimeout(() => r({ event: 'frozen' }), 10000).unref())]);
      assert.equal(verdict.event, 'alive', `the client's event loop stopped (${JSON.stringify(verdict)})`);
      assert.ok(verdict.writes > 10, `only ${verdict.writes} timer turns in 1.5 s`);
    } finally {
      client.kill('SIGKILL');
      await exited;
      children.delete(client);
      await server.end();
    }
  });
});
