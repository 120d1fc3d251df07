'use strict';
// Drives a RingLink at the endpoint level (no Socket), moving the stream
// pattern byte i = i % 251 that xenlab-vchan sends and checks.
const path = require('node:path');
const root = path.join(__dirname, '..', '..');
const { native, UV_READABLE } = require(path.join(root, 'dist', 'native.js'));

const PATTERN = Buffer.alloc(251 * 4200);
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = i % 251;
const CHUNK = 256 * 1024;

/**
 * Sends `send` pattern bytes and receives/verifies `recv` bytes over `link`.
 * Resolves once both are done and the peer consumed everything we sent
 * (unless noDrain). Rejects on a mismatch, peer close, or timeout.
 */
function pump(link, { send = 0, recv = 0, timeout = 120000, noDrain = false } = {}) {
  const ep = link.endpoint;
  const ringSize = ep.info().txSize;
  let sent = 0;
  let got = 0;
  const buf = Buffer.alloc(CHUNK);
  return new Promise((resolve, reject) => {
    let finished = false;
    const watcher = new native.FdWatcher(link.waitFd, () => step());
    const timer = setTimeout(() => done(new Error(`timeout: sent ${sent}/${send} recv ${got}/${recv}`)), timeout);
    function done(err) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve({ sent, recv: got });
    }
    function step() {
      if (finished) return;
      try {
        ep.ack();
        for (;;) {
          let progress = false;
          while (sent < send) {
            const start = sent % 251;
            const n = Math.min(send - sent, PATTERN.length - start);
            const w = ep.write(PATTERN.subarray(start, start + n));
            if (w === 0) break;
            sent += w;
            progress = true;
          }
          while (got < recv) {
            const r = ep.read(buf, 0, Math.min(CHUNK, recv - got));
            if (r === 0) break;
            const start = got % 251;
            if (buf.compare(PATTERN, start, start + r, 0, r) !== 0) {
              for (let i = 0; i < r; i++) {
                if (buf[i] !== (got + i) % 251) return done(new Error(`data mismatch at byte ${got + i}`));
              }
            }
            got += r;
            progress = true;
          }
          const drained = noDrain || sent < send || ep.writable() === ringSize;
          if (sent === send && got === recv && drained) return done(null);
          if (progress) continue;
          // Nothing moved: ask to be woken, then re-check (no lost wake-up).
          let again = false;
          if (got < recv && ep.requestData() > 0) again = true;
          if ((sent < send || !drained) && ep.requestSpace() > 0) again = true;
          if (!drained && ep.writable() === ringSize) again = true;
          if (again) continue;
          const live = ep.peerState() & 0xff;
          if (live === 0 && ep.readable() === 0) {
            return done(new Error(`peer closed: sent ${sent}/${send} recv ${got}/${recv}`));
          }
          return;
        }
      } catch (err) {
        done(err);
      }
    }
    watcher.start(UV_READABLE);
    step();
  });
}

/** Resolves when the peer's live byte becomes `want` (polled via the wait fd). */
function waitPeerState(link, want, timeout = 30000) {
  return new Promise((resolve, reject) => {
    const watcher = new native.FdWatcher(link.waitFd, check);
    const timer = setTimeout(() => finish(new Error(`peer state stayed ${link.endpoint.peerState() & 0xff}, wanted ${want}`)), timeout);
    let over = false;
    function finish(err) {
      if (over) return;
      over = true;
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve();
    }
    function check() {
      try {
        link.endpoint.ack();
        if ((link.endpoint.peerState() & 0xff) === want) finish(null);
      } catch (err) {
        finish(err);
      }
    }
    watcher.start(UV_READABLE);
    check();
  });
}

function run(cmd, args, opts = {}) {
  const { spawn } = require('node:child_process');
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code, signal) => resolve({ code, signal, out }));
    child.on('error', (err) => resolve({ code: -1, out: String(err) }));
  });
}

/**
 * For a suite's before() hook: skips it, saying why, where the Xen devices are
 * not usable (any host that is not a Xen domain); else resolves with our domid.
 */
async function ownDomidOrSkip(ctx) {
  const xenDist = path.join(root, 'dist', 'transports', 'xen');
  if (!require(path.join(xenDist, 'handshake.js')).xenAvailable()) {
    console.log('      (skipped: /dev/xen/{gntalloc,gntdev,evtchn,xenbus} not usable here; run `npm run test:xen`)');
    ctx.skip();
  }
  return require(path.join(xenDist, 'xenstore.js')).xenStore().ownDomid();
}

/** xenTransport.connect(req), retried every 200 ms while refused, until `deadline` (ms since epoch). */
function connectRetry(req, deadline) {
  const { xenTransport } = require(path.join(root, 'dist', 'transports', 'xen', 'transport.js'));
  return new Promise((resolve, reject) => {
    const attempt = () =>
      xenTransport.connect(req, new AbortController().signal).then(resolve, (err) => {
        if (err.code === 'ECONNREFUSED' && Date.now() < deadline) return setTimeout(attempt, 200);
        reject(err);
      });
    attempt();
  });
}

/**
 * For tests that talk to libxenvchan: skips, saying why, where the lab's C
 * vchan peer (xenlab-vchan) is not on PATH (it is inside the lab).
 */
async function vchanToolOrSkip(ctx) {
  const r = await run('sh', ['-c', 'command -v xenlab-vchan']);
  if (r.code !== 0) {
    console.log("      (skipped: xenlab-vchan, the lab's libxenvchan peer, is not on PATH; run `npm run test:xen`)");
    ctx.skip();
  }
}

// Fails fast when the domU half died: xenlab-wait-domu answers 124 while it
// runs. It calls a domU gone after 3 looks 0.5 s apart, so a shorter
// --timeout (it was 1 s) answered 124 before it could ever say 125.
let domuDead = null;
function domuMonitor() {
  if (!domuDead) {
    domuDead = new Promise((resolve, reject) => {
      const poll = async () => {
        const r = await run('xenlab-wait-domu', ['-q', '--timeout', '5']);
        if (r.code === 124) return setTimeout(poll, 3000).unref();
        if (r.code !== 0) reject(new Error(`domU peer exited with status ${r.code}`));
      };
      poll();
    });
    domuDead.catch(() => {});
  }
  return domuDead;
}
const withDomu = (fn) => () => Promise.race([fn(), domuMonitor()]);
/** Why a domU test skips: the lab's own reason when it could not build its domU (scripts/test-xen.sh), else `usual`. */
const domuSkipReason = (usual) => process.env.XENRING_NO_DOMU || usual;

module.exports = { root, pump, waitPeerState, run, PATTERN, ownDomidOrSkip, connectRetry, vchanToolOrSkip, withDomu, domuSkipReason };
