#!/usr/bin/env node
'use strict';
/*
 * Counts the native calls (N-API crossings) on RingEndpoint per side of a
 * 1-byte round trip: a client and an echoing server in this process, each
 * endpoint's methods counted. Deterministic, so unlike timings it does not
 * depend on the machine's load.
 *
 *   node bench/crossings.js [--spin-micros N] [--round-trips N] [--dist DIR]
 */
const path = require('node:path');
const { once } = require('node:events');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const dist = path.resolve(opt('dist', path.join(__dirname, '..', 'dist')));
const spinMicros = Number(opt('spin-micros', 50));
const roundTrips = Number(opt('round-trips', 2000));

const { native } = require(path.join(dist, 'native'));
const counts = {};
const Endpoint = native.RingEndpoint;
const methods = Object.getOwnPropertyNames(Endpoint.prototype).filter((k) => k !== 'constructor');
// The addon's methods are read-only on the prototype: count through own
// properties of each endpoint (defineProperty passes the inherited read-only).
native.RingEndpoint = function CountedRingEndpoint(...a) {
  const ep = new Endpoint(...a);
  for (const k of methods) {
    const f = Endpoint.prototype[k];
    Object.defineProperty(ep, k, {
      value(...x) {
        counts[k] = (counts[k] || 0) + 1;
        return f.apply(ep, x);
      },
    });
  }
  return ep;
};
const xenring = require(dist);

(async () => {
  const server = xenring.createServer({ spinMicros }, (s) => s.on('data', (d) => s.write(d)));
  server.listen(0);
  await once(server, 'listening');
  const c = xenring.connect({ port: server.address().port, spinMicros });
  await once(c, 'connect');
  let seq = 0;
  const roundTrip = () =>
    new Promise((resolve) => {
      c.once('data', resolve);
      c.write(Buffer.from([seq++ & 0xff]));
    });
  for (let i = 0; i < 200; i++) await roundTrip(); // warm up
  for (const k of Object.keys(counts)) delete counts[k];
  for (let i = 0; i < roundTrips; i++) await roundTrip();
  const perSide = (v) => +(v / roundTrips / 2).toFixed(2);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const detail = Object.entries(counts).map(([k, v]) => `${k} ${perSide(v)}`).join(', ');
  console.log(`spinMicros ${spinMicros}: ${perSide(total)} native calls per side per round trip (${detail})`);
  c.destroy();
  server.close();
})();
