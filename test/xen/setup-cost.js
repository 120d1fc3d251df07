'use strict';
// Measures what one connection set-up costs on real Xen (dom0 loopback):
// `node test/xen/setup-cost.js [cycles]` in the lab. For each variant (the
// default; pool: false; one xenbus fd; both) it runs `cycles`
// connect / 1 KiB echo / close cycles through a Server and a Socket and
// prints the median and range of a cycle, the xenstore requests per
// connection (both ends, counted at the device) and the time spent in the
// pool's grant calls. Not a test (timings are the emulated CPU's): it is the
// instrument behind the numbers in docs and issue notes.
const path = require('node:path');
const { root } = require('./helpers');
const dist = path.join(root, 'dist');
const xenring = require(dist);
const { registerTransport } = require(path.join(dist, 'transports', 'registry.js'));
const { createXenTransport } = require(path.join(dist, 'transports', 'xen', 'transport.js'));
const { addonBindings } = require(path.join(dist, 'transports', 'xen', 'bindings.js'));
const { xen } = require(path.join(dist, 'transports', 'xen', 'native_xen.js'));

const cycles = Number(process.argv[2] || 40);

/** Bindings over the real devices that count xenbus writes (one per request) and time the pool's grant calls. */
function countingBindings(storeOptions) {
  const counts = { requests: 0, poolMs: 0, poolCalls: 0, otherMs: 0 };
  const timed = (fn, pool) => (...args) => {
    const t0 = process.hrtime.bigint();
    try {
      return fn(...args);
    } finally {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (pool) counts.poolMs += ms, counts.poolCalls++;
      else counts.otherMs += ms;
    }
  };
  const x = Object.create(xen);
  x.fdWrite = (fd, data) => {
    const n = xen.fdWrite(fd, data);
    if (n > 0) counts.requests++;
    return n;
  };
  x.gntSharePool = timed(xen.gntSharePool, true);
  x.gntMapPool = timed(xen.gntMapPool, true);
  x.gntShare = timed(xen.gntShare, false);
  x.gntMap = timed(xen.gntMap, false);
  const b = {
    xen: x,
    RingEndpoint: addonBindings.RingEndpoint,
    FdWatcher: addonBindings.FdWatcher,
    closeFd: addonBindings.closeFd,
    knownDomid: addonBindings.knownDomid,
    storeOptions,
  };
  return { b, counts };
}

/** One connect / 1 KiB echo / close cycle; resolves with the ms to 'connect', to the echo, and to 'close'. */
function echoOnce(port, pool) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const phases = {};
    const s = xenring.connect({ port, transport: 'xen', domid: 0, pool });
    let n = 0;
    s.on('connect', () => {
      phases.connect = ms();
      s.write(Buffer.alloc(1024, 7));
    });
    s.on('data', (d) => {
      n += d.length;
      if (n < 1024) return;
      phases.echo = ms();
      s.end();
    });
    s.on('error', reject);
    s.on('close', () => {
      phases.close = ms();
      if (n === 1024) resolve(phases);
      else reject(new Error(`echoed ${n}`));
    });
  });
}

async function variant(name, { pool, storeOptions }) {
  const { b, counts } = countingBindings(storeOptions);
  registerTransport(createXenTransport(b));
  const server = xenring.createServer({ pool }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise((r, j) => server.once('error', j).listen({ port: 0, transport: 'xen' }, r));
  const port = server.address().port;
  await echoOnce(port, pool); // warm-up
  await new Promise((r) => setTimeout(r, 300));
  counts.requests = counts.poolMs = counts.poolCalls = counts.otherMs = 0;
  const times = [];
  const phases = { connect: [], echo: [], close: [] };
  for (let i = 0; i < cycles; i++) {
    const p = await echoOnce(port, pool);
    times.push(p.close);
    for (const k of Object.keys(phases)) phases[k].push(p[k]);
  }
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1].toFixed(1);
  await new Promise((r) => setTimeout(r, 300)); // the last close's requests
  const requests = counts.requests / cycles;
  await new Promise((r) => server.close(r));
  times.sort((a, b) => a - b);
  const med = times[times.length >> 1];
  console.log(
    `setup-cost ${name.padEnd(13)} cycle median ${med.toFixed(1)} ms (${times[0].toFixed(1)}-${times[times.length - 1].toFixed(1)}), ` +
      `${requests.toFixed(1)} xenstore requests/connection, pool grant calls ${(counts.poolMs / cycles).toFixed(1)} ms/connection (${(counts.poolCalls / cycles).toFixed(1)} calls), ring and grant-list calls ${(counts.otherMs / cycles).toFixed(1)} ms; ` +
      `medians: connect ${median(phases.connect)}, echoed ${median(phases.echo)}, closed ${median(phases.close)} ms from the start`,
  );
}

async function main() {
  const which = (process.env.SETUP_COST_VARIANTS || 'default,nopool,onefd,onefd-nopool').split(',');
  const all = {
    default: {},
    nopool: { pool: false },
    onefd: { storeOptions: { maxConnections: 1 } },
    'onefd-nopool': { pool: false, storeOptions: { maxConnections: 1 } },
  };
  for (const w of which) await variant(w, all[w]);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
