'use strict';
// The other process of test/pool/review.test.js: a xenring server that
// accepts one connection and, by opts.mode:
//   'release'  releases every 'data' Buffer at once (the pool never fills)
//   'unread'   reads nothing; destroys the socket when the parent sends 'destroy'
// Messages: { event: 'ready', port }, { event: 'accepted' },
// { event: 'destroyed', stats }, { event: 'error', code }.
const xenring = require('../..');

const opts = JSON.parse(process.argv[2] || '{}');
const send = (m) => process.send(m);

const server = xenring.createServer({ pool: opts.pool, pauseOnConnect: opts.mode === 'unread' }, (s) => {
  s.on('error', (err) => send({ event: 'error', code: err.code }));
  s.on('close', () => {
    server.close();
    setTimeout(() => process.exit(0), 20);
  });
  if (opts.mode === 'release') {
    s.on('data', (d) => s.release(d));
    s.on('end', () => s.end());
  } else {
    process.on('message', (m) => {
      if (m !== 'destroy') return;
      send({ event: 'destroyed', stats: s.poolStats() });
      s.destroy();
    });
  }
  send({ event: 'accepted' });
});
server.listen({ port: 0 }, () => send({ event: 'ready', port: server.address().port }));
