'use strict';
// The ring size a connection gets: the listener's is the ceiling, given to
// listen() or, as its default, to createServer(); a client may ask for less,
// never more. Server in another process; bytes echoed and checked.
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const xenring = require('../..');
const { slice } = require('./../helpers/pattern');

async function startServer(options) {
  const child = fork(path.join(__dirname, 'fixtures', 'sized_server.js'), [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const accepted = [];
  child.on('message', (m) => m.accepted && accepted.push(m.accepted));
  const [{ port }] = await once(child, 'message');
  return { port, accepted, stop: async () => (child.connected && child.disconnect(), child.exitCode === null && (await once(child, 'exit'))) };
}

/** Connects asking for `ringSize` (undefined: the listener's), echoes 3 MiB, returns the client's ring sizes. */
async function echo(port, ringSize) {
  const s = xenring.connect({ port, ringSize, transport: 'local' });
  await once(s, 'connect');
  const { rxSize, txSize } = s.channel.link.endpoint.info();
  const sent = slice(0, 3 << 20);
  const chunks = [];
  s.on('data', (d) => chunks.push(d));
  s.end(sent);
  await once(s, 'close');
  assert.ok(Buffer.concat(chunks).equals(sent), 'echo intact');
  return { rxSize, txSize };
}

describe('transports: ring size, the listener caps it', function () {
  const cases = [
    ['default (2 MiB), client asks nothing', {}, {}, undefined, 2 << 20],
    ['createServer({ ringSize }) is the default for listen()', { ringSize: 64 << 10 }, {}, undefined, 64 << 10],
    ["listen()'s ringSize overrides createServer()'s", { ringSize: 64 << 10 }, { ringSize: 8 << 20 }, undefined, 8 << 20],
    ['a client asking for more gets the listener ceiling', { ringSize: 1 << 20 }, {}, 16 << 20, 1 << 20],
    ['a client may ask for less', {}, { ringSize: 8 << 20 }, 256 << 10, 256 << 10],
  ];
  for (const [name, create, listen, asked, expected] of cases) {
    it(name, async function () {
      const srv = await startServer({ create, listen });
      try {
        assert.deepEqual(await echo(srv.port, asked), { rxSize: expected, txSize: expected });
        assert.deepEqual(srv.accepted, [{ rxSize: expected, txSize: expected }]);
      } finally {
        await srv.stop();
      }
    });
  }

  it("createServer()'s bad ringSize is listen()'s error, the server left as it was", function () {
    const server = xenring.createServer({ ringSize: 3000 });
    assert.throws(() => server.listen(`sized-bad-${process.pid}`), { code: 'ERR_OUT_OF_RANGE', message: /options\.ringSize/ });
    assert.equal(server.listening, false);
    assert.throws(() => xenring.createServer({ ringSize: '1M' }).listen(`sized-bad2-${process.pid}`), { code: 'ERR_INVALID_ARG_TYPE' });
  });
});
