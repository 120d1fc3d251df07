'use strict';
// Helpers for the fake-Xen tests: promise wrappers around the transport and
// the lab's pump (pattern i % 251, every byte checked).
const path = require('node:path');
const root = path.join(__dirname, '..', '..', 'dist');
const { pump: xenPump } = require('../xen/helpers');
const { FakeXenHost } = require('./fake_xen');
const { createXenTransport } = require(path.join(root, 'transports', 'xen', 'transport.js'));

function listen(t, req, { onError } = {}) {
  const links = [];
  const waiters = [];
  const onLink = (link) => {
    links.push(link);
    waiters.splice(0).forEach((w) => w());
  };
  return Promise.resolve(t.listen(req, onLink, new AbortController().signal, onError)).then((listener) => {
    listener.links = links;
    listener.nextLink = () => (links.length ? Promise.resolve(links.shift()) : new Promise((r) => waiters.push(() => r(links.shift()))));
    return listener;
  });
}

function connect(t, req) {
  return t.connect(req, new AbortController().signal);
}

/** test/xen/helpers.js's pump; both ends live in this process, so it must not wait for the peer to drain. */
function pump(link, opts = {}) {
  return xenPump(link, { noDrain: true, timeout: 20000, ...opts });
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
