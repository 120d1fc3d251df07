'use strict';
// The transports under test, and how each one listens (child) and connects
// (parent). Every xenring variant names its transport explicitly, so a
// machine with Xen does not silently turn the 'xenring' row into Xen.

const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { LIB_PATH } = require('./common');

const SPIN_US = 50;

/**
 * name -> spec. `xr` is set for xenring variants: the transport and the
 * spinMicros given to connect() and createServer() (undefined = library
 * default, whatever that is today; the effective value is read back from the
 * sockets and recorded).
 */
const TRANSPORTS = {
  xenring: { xr: { transport: 'local', spinMicros: undefined }, about: 'xenring, local transport, default options' },
  'xenring-spin': { xr: { transport: 'local', spinMicros: SPIN_US }, about: `xenring, local transport, spinMicros ${SPIN_US} on both sides` },
  'xenring-nospin': { xr: { transport: 'local', spinMicros: 0 }, about: 'xenring, local transport, spinning disabled (spinMicros 0) on both sides' },
  'xenring-nopool': { xr: { transport: 'local', spinMicros: undefined, pool: false }, about: 'xenring, local transport, pool: false (every byte through the ring)' },
  // The same default options, on another build of the library (the path in
  // XENRING_BENCH_BEFORE): a before/after pair measured in one run.
  'xenring-before': { xr: { transport: 'local', spinMicros: undefined }, before: true, about: 'xenring, local transport, default options, the build in $XENRING_BENCH_BEFORE' },
  'xenring-nospin-before': { xr: { transport: 'local', spinMicros: 0 }, before: true, about: 'xenring, local transport, spinMicros 0 on both sides, the build in $XENRING_BENCH_BEFORE' },
  'xenring-xen': { xr: { transport: 'xen', spinMicros: undefined }, about: 'xenring, Xen transport, default options' },
  'xenring-xen-spin': { xr: { transport: 'xen', spinMicros: SPIN_US }, about: `xenring, Xen transport, spinMicros ${SPIN_US} on both sides` },
  uds: { net: 'uds', about: 'node:net over a UNIX socket path' },
  tcp: { net: 'tcp', about: 'node:net over TCP 127.0.0.1' },
  // The receiver reads with net's onread option (one reused buffer, no
  // allocation per read). The child connects (onread is a connect option in
  // net) and the parent accepts and sends.
  'xenring-onread': { xr: { transport: 'local', spinMicros: undefined }, onread: true, about: 'xenring, local transport, default options, receiver uses onread (one reused 256 KiB buffer)' },
  'uds-onread': { net: 'uds', onread: true, about: 'node:net over a UNIX socket path, receiver uses onread (one reused 256 KiB buffer)' },
};

/** Size of the receiver's reused buffer in the -onread rows. */
const ONREAD_BUFFER = 256 * 1024;
const usesOnread = (name) => Boolean(TRANSPORTS[name] && TRANSPORTS[name].onread);

let lib = null;
let before = null;
function xenring(name) {
  if (name && TRANSPORTS[name] && TRANSPORTS[name].before) {
    if (!process.env.XENRING_BENCH_BEFORE) throw new Error('xenring-before needs XENRING_BENCH_BEFORE (a built xenring checkout)');
    if (!before) before = require(path.resolve(process.env.XENRING_BENCH_BEFORE));
    return before;
  }
  if (!lib) lib = require(LIB_PATH);
  return lib;
}

const isXenring = (name) => Boolean(TRANSPORTS[name] && TRANSPORTS[name].xr);

/** Options actually in force on a xenring socket (spinMicros read back from the instance). */
function effectiveOptions(sock) {
  if (!sock || !(sock instanceof xenring().Socket)) return undefined;
  const o = {};
  if (typeof sock.spinMicros === 'number') o.spinMicros = sock.spinMicros;
  const info = sock.channel && sock.channel.link && sock.channel.link.endpoint && typeof sock.channel.link.endpoint.info === 'function'
    ? safe(() => sock.channel.link.endpoint.info()) : null;
  if (info) { o.rxSize = info.rxSize; o.txSize = info.txSize; }
  return o;
}
function safe(f) { try { return f(); } catch { return null; } }

/**
 * Child side: listen, call onConnection(sock) for every accepted connection.
 * Resolves with what the parent needs to connect ({port} or {path}).
 * `opts`: { ringSize, xenDomid, echo }.
 */
function listen(name, opts, onConnection) {
  const spec = TRANSPORTS[name];
  if (!spec) return Promise.reject(new Error(`unknown transport ${name}`));
  return new Promise((resolve, reject) => {
    if (spec.xr) {
      const serverOpts = {};
      if (spec.xr.pool !== undefined) serverOpts.pool = spec.xr.pool;
      if (spec.xr.spinMicros !== undefined) serverOpts.spinMicros = spec.xr.spinMicros;
      const server = xenring(name).createServer(serverOpts, (sock) => onConnection(sock, server));
      server.on('error', reject);
      const lo = { port: 0, transport: spec.xr.transport };
      if (opts.ringSize) lo.ringSize = opts.ringSize;
      server.listen(lo, () => resolve({ port: server.address().port, server, serverOptions: serverOpts }));
    } else {
      const server = net.createServer({ noDelay: Boolean(opts.echo) }, (sock) => {
        if (opts.echo) sock.setNoDelay(true);
        onConnection(sock, server);
      });
      server.on('error', reject);
      if (spec.net === 'tcp') {
        server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port, server }));
      } else {
        const p = path.join(os.tmpdir(), `xenring-bench-${process.pid}-${Date.now()}.sock`);
        server.listen(p, () => resolve({ path: p, server, cleanupPath: p }));
      }
    }
  });
}

/** Parent side: a socket connecting to what listen() reported (not yet connected). */
function dial(name, ready, opts) {
  const spec = TRANSPORTS[name];
  if (spec.xr) {
    const co = { port: ready.port, transport: spec.xr.transport };
    if (spec.xr.spinMicros !== undefined) co.spinMicros = spec.xr.spinMicros;
    if (spec.xr.pool !== undefined) co.pool = spec.xr.pool;
    if (opts.ringSize) co.ringSize = opts.ringSize;
    if (spec.xr.transport === 'xen' && opts.xenDomid !== undefined) co.domid = opts.xenDomid;
    if (opts.onread) co.onread = opts.onread;
    return xenring(name).connect(co);
  }
  if (spec.net === 'tcp') return net.connect({ host: '127.0.0.1', port: ready.port, onread: opts.onread });
  return net.connect({ path: ready.path, onread: opts.onread });
}

/** Parent side: connect to what listen() reported; resolves with the connected socket. */
function connect(name, ready, opts) {
  const spec = TRANSPORTS[name];
  return new Promise((resolve, reject) => {
    const sock = dial(name, ready, opts);
    const onErr = (e) => reject(e);
    sock.once('error', onErr);
    sock.once('connect', () => {
      sock.off('error', onErr);
      if (opts.echo && spec.net === 'tcp') sock.setNoDelay(true);
      resolve(sock);
    });
  });
}

function removeSocketFile(p) {
  if (p) try { fs.rmSync(p, { force: true }); } catch { /* gone */ }
}

module.exports = { TRANSPORTS, SPIN_US, ONREAD_BUFFER, usesOnread, isXenring, listen, connect, dial, effectiveOptions, removeSocketFile, xenring };
