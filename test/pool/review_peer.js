'use strict';
// The other process of test/pool/review.test.js: a xenring server that
// accepts one connection and, by opts.mode:
//   'release'  releases every 'data' Buffer at once (the pool never fills)
//   'unread'   reads nothing; destroys the socket when the parent sends 'destroy'
//   'client-no-external'  connects to opts.port as a runtime that refuses
//              external buffers (Electron's V8 sandbox: napi_no_external_buffers_allowed,
//              emulated by making PoolMapping.view throw), writes opts.count
//              allocBuffer(opts.size) Buffers of the pattern, ends, reports at close
//              { event: 'wrote', stats, error }
//   'server-no-external'  the same runtime as a server: takes what its client
//              sends (payloads by reference it can only copy out), and once
//              the client ended writes opts.count allocBuffer(opts.size)
//              Buffers of the pattern back (the pool cannot loan them),
//              reports at close { event: 'served', stats, received, ok, error }
// Messages: { event: 'ready', port }, { event: 'accepted' },
// { event: 'destroyed', stats }, { event: 'error', code }.
const xenring = require('../..');

const opts = JSON.parse(process.argv[2] || '{}');
const send = (m) => process.send(m);

/** Makes PoolMapping.view throw, as a runtime that refuses external buffers does. */
function refuseExternalBuffers() {
  const { poolNative } = require('../../dist/pool/native_pool');
  // (the native prototype's methods are read-only: each new mapping gets its own view())
  const NativeMapping = poolNative.PoolMapping;
  poolNative.PoolMapping = function PoolMapping(...args) {
    const m = new NativeMapping(...args);
    Object.defineProperty(m, 'view', {
      value() {
        const err = new Error('External buffers are not allowed');
        err.code = 'ERR_GENERIC_FAILURE'; // what napi_no_external_buffers_allowed surfaces as
        throw err;
      },
    });
    return m;
  };
}

/** Writes opts.count allocBuffer(opts.size) Buffers of the pattern, then ends. */
function writeLoans(s) {
  const { slice } = require('../helpers/pattern');
  let pos = 0;
  for (let i = 0; i < opts.count; i++) {
    const buf = s.allocBuffer(opts.size);
    buf.set(slice(pos, opts.size));
    pos += opts.size;
    s.write(buf);
  }
  s.end();
}

if (opts.mode === 'server-no-external') {
  refuseExternalBuffers();
  const { PatternChecker } = require('../helpers/pattern');
  const server = xenring.createServer((s) => {
    let error = null;
    const checker = new PatternChecker();
    s.on('data', (d) => checker.update(d));
    s.on('error', (err) => (error = err.code || err.message));
    s.on('end', () => writeLoans(s));
    s.on('close', () => {
      send({ event: 'served', stats: s.poolStats(), received: checker.received, ok: checker.ok, error });
      server.close();
      setTimeout(() => process.exit(0), 20);
    });
  });
  server.listen({ port: 0 }, () => send({ event: 'ready', port: server.address().port }));
  return;
}

if (opts.mode === 'client-no-external') {
  refuseExternalBuffers();
  let error = null;
  const s = xenring.connect({ port: opts.port }, () => writeLoans(s));
  s.on('error', (err) => (error = err.code || err.message));
  // Reported at close: writes of the pattern may travel as runs (pool
  // extents the reader holds until it drops them), and every loan comes back
  // by the time the socket has closed.
  s.on('close', () => {
    send({ event: 'wrote', stats: s.poolStats(), error });
    setTimeout(() => process.exit(0), 20);
  });
  s.resume();
  return;
}

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
