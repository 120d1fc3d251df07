'use strict';
// Helpers for the fake-Xen tests: promise wrappers around the transport and a
// pump that moves and checks the pattern i % 251 through a link, driven by the
// link's wait fd (both ends live in this process, so it never spins waiting
// for the peer: it asks to be woken and returns).
const path = require('node:path');
const root = path.join(__dirname, '..', '..', 'dist');
const { native, UV_READABLE } = require(path.join(root, 'native.js'));
const { FakeXenHost } = require('./fake_xen');
const { createXenTransport } = require(path.join(root, 'transports', 'xen', 'transport.js'));

function listen(t, req, { onError } = {}) {
  const links = [];
  const waiters = [];
  return new Promise((resolve, reject) => {
    t.listen(
      req,
      (link) => {
        links.push(link);
        waiters.splice(0).forEach((w) => w());
      },
      (err, listener) => {
        if (err) return reject(err);
        listener.links = links;
        listener.nextLink = () => (links.length ? Promise.resolve(links.shift()) : new Promise((r) => waiters.push(() => r(links.shift()))));
        resolve(listener);
      },
      onError,
    );
  });
}

function connect(t, req) {
  return new Promise((resolve, reject) => t.connect(req, (err, link) => (err ? reject(err) : resolve(link))));
}

function pump(link, { send = 0, recv = 0, timeout = 20000 } = {}) {
  const ep = link.endpoint;
  const chunk = Buffer.alloc(64 * 1024);
  const out = Buffer.alloc(251 * 300);
  for (let i = 0; i < out.length; i++) out[i] = i % 251;
  let sent = 0;
  let got = 0;
  return new Promise((resolve, reject) => {
    let over = false;
    const watcher = new native.FdWatcher(link.waitFd, () => step());
    const timer = setTimeout(() => finish(new Error(`pump timeout: sent ${sent}/${send} recv ${got}/${recv}`)), timeout);
    function finish(err) {
      if (over) return;
      over = true;
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve({ sent, recv: got });
    }
    function step() {
      if (over) return;
      try {
        ep.ack();
        for (;;) {
          let progress = false;
          while (sent < send) {
            const start = sent % 251;
            const w = ep.write(out.subarray(start, start + Math.min(send - sent, out.length - start)));
            if (w === 0) break;
            sent += w;
            progress = true;
          }
          while (got < recv) {
            const r = ep.read(chunk, 0, Math.min(chunk.length, recv - got));
            if (r === 0) break;
            for (let i = 0; i < r; i++) if (chunk[i] !== (got + i) % 251) return finish(new Error(`data mismatch at byte ${got + i}`));
            got += r;
            progress = true;
          }
          if (sent === send && got === recv) return finish(null);
          if (progress) continue;
          if (got < recv && ep.requestData() > 0) continue;
          if (sent < send && ep.requestSpace() > 0) continue;
          if ((ep.peerState() & 0xff) === 0 && ep.readable() === 0) return finish(new Error('peer closed'));
          return;
        }
      } catch (err) {
        finish(err);
      }
    }
    watcher.start(UV_READABLE);
    step();
  });
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns truthy (or fails after `ms`). */
async function until(fn, ms = 3000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** A host with domains 0 (server side) and 5 (client side), and their transports. */
function setup(opts = {}) {
  const host = new FakeXenHost(opts);
  const storeOptions = opts.storeOptions;
  const d0 = host.domain(0, { storeOptions });
  const d5 = host.domain(5, { storeOptions });
  return { host, d0, d5, t0: createXenTransport(d0), t5: createXenTransport(d5) };
}

const NOTHING_HELD = { grants: 0, mappings: 0, ports: 0, evtchnFds: 0 };

module.exports = { listen, connect, pump, delay, until, setup, createXenTransport, NOTHING_HELD, root };
