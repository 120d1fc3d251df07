'use strict';
// The wait watcher bound to a ring reads natively what a sleeping reader
// armed, and hands the count to its callback. A callback wrapped so that it
// loses that count (as bench/client-counts.js's counting wrapper once did)
// used to leave the reader reading an empty ring and sleeping for good, the
// reply gone. The channel now fails loudly instead: ERR_INTERNAL_ASSERTION.
// The peer is an echo server in its own process; spinMicros 0, so replies come by wake-ups.
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { native } = require('../../dist/native');
const xenring = require('../..');

describe('ring: a wake-up read whose count the callback lost', function () {
  this.timeout(60000);

  it('fails the socket with ERR_INTERNAL_ASSERTION instead of waiting forever for the reply it read', async function () {
    const child = fork(path.join(__dirname, 'fixtures', 'wake_echo.js'), ['0'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = once(child, 'exit');
    try {
      const [first] = await once(child, 'message');
      const Real = native.FdWatcher;
      // Passes only the events on, as the old counting wrapper did.
      native.FdWatcher = function EventsOnly(fd, callback) {
        return new Real(fd, (events) => callback(events));
      };
      let socket;
      try {
        socket = xenring.connect({ port: first.port, spinMicros: 0 });
        await once(socket, 'connect');
      } finally {
        native.FdWatcher = Real;
      }
      const failed = once(socket, 'error');
      let replies = 0;
      socket.on('data', () => replies++);
      // Round trips until one reply comes by a wake-up (the first, nearly always);
      // bounded, so that a lost reply fails here rather than hangs.
      const outcome = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ stalled: true }), 20000);
        failed.then(([err]) => (clearTimeout(timer), resolve({ err })));
        const ask = () => socket.write(Buffer.of(replies & 0xff));
        socket.on('data', () => replies < 200 && ask());
        ask();
      });
      assert.ok(!outcome.stalled, `no error after 20 s: ${replies} replies, then one lost silently`);
      assert.equal(outcome.err.code, 'ERR_INTERNAL_ASSERTION');
      assert.match(outcome.err.message, /wake-up read/);
      await once(socket, 'close');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
