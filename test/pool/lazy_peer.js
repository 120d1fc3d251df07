'use strict';
// A xenring server in its own process for lazy_open.test.js: default pool,
// one connection. Reports by IPC ({ event, ... }); commands from the test:
//   'rss'         the Rss (kB) of this process's pool region mappings
//   'ring N'      N pattern bytes as an ordinary small write (through the ring)
//   'send N'      one payload of N pattern bytes through allocBuffer (by reference)
//   'sendAndDie N' the same, then SIGKILL at once (a peer that dies as its pool opens)
//   'die'         SIGKILL now
// Every byte received is checked against the position pattern.
const xenring = require('../..');
const { slice, PatternChecker } = require('../helpers/pattern');
const { poolRss } = require('./pool_rss');

const send = (m) => process.send(m);
let sock = null;
let sent = 0;
const checker = new PatternChecker();

function ring(n) {
  sock.write(Buffer.from(slice(sent, n)));
  sent += n;
}

function payload(n) {
  const buf = sock.allocBuffer(n);
  buf.set(slice(sent, n));
  sent += n;
  sock.write(buf);
}

const srv = xenring.createServer((s) => {
  sock = s;
  s.on('data', (d) => {
    checker.update(d);
    send({ event: 'got', bytes: checker.received, ok: checker.badOffset < 0, byRef: s.poolStats().receivedByRef });
  });
  s.on('error', (err) => send({ event: 'error', code: err.code }));
  s.on('close', () => send({ event: 'closed' }));
  send({ event: 'connection' });
});
srv.listen({ port: 0 }, () => send({ event: 'listening', port: srv.address().port }));

process.on('message', (m) => {
  const [cmd, arg] = String(m).split(' ');
  if (cmd === 'rss') send({ event: 'rss', kb: poolRss() });
  else if (cmd === 'ring') ring(Number(arg));
  else if (cmd === 'send') {
    payload(Number(arg));
    send({ event: 'sent', stats: sock.poolStats() });
  } else if (cmd === 'sendAndDie') {
    payload(Number(arg));
    process.kill(process.pid, 'SIGKILL');
  } else if (cmd === 'die') process.kill(process.pid, 'SIGKILL');
});
