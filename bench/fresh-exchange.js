'use strict';
// What a short exchange costs on a NEW connection: ioredis (in this
// process) connects, makes `--times` SET+GETs of a `--size` value, checks
// each reply and disconnects, once per round and path. Paths, in turn, each
// round starting one later: redis-server through `xenring proxy --listen
// ring:… --connect tcp:…` (this checkout, and with XENRING_BENCH_BEFORE
// a second proxy from that built checkout), and through the same proxy with
// TCP in place of the ring. A new connection's ring and pool pages have never
// been touched, where TCP's buffers are the kernel's warm ones: the proxy's
// page faults per connection (connect included) are printed beside the
// times, the exchange alone and with the connect before it.
//
//   node bench/fresh-exchange.js [--rounds 40] [--size 1M] [--times 4]
//   XENRING_BENCH_BEFORE=/work/wt/before node bench/fresh-exchange.js

const fs = require('node:fs');
const path = require('node:path');
const { parseSize, optionValue } = require('./common');
const real = require('./real');

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('usage: node bench/fresh-exchange.js [--rounds N] [--size BYTES] [--times N]\n  XENRING_BENCH_BEFORE=<built checkout> adds a proxy from that build\n');
  process.exit(0);
}
const rounds = Number(optionValue(args, 'rounds', 40));
const size = parseSize(optionValue(args, 'size', '1M'));
const times = Number(optionValue(args, 'times', 4));
if (!(rounds > 0) || !(size > 0) || !(times > 0)) {
  console.error('--rounds, --size and --times must be positive');
  process.exit(2);
}

/** Minor page faults process `pid` has taken so far (/proc/PID/stat field 10). */
function minorFaults(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[7]);
}

/** `xenring proxy --listen ring:NAME --connect tcp:127.0.0.1:PORT` run from checkout `dir`: { to (the ring port), pid, stop() }. */
async function ringProxy(dir, port, name) {
  const p = await real.startProxy(`ring:${name}`, `tcp:127.0.0.1:${port}`, path.join(dir, 'bin', 'xenring.js'));
  return { to: name, pid: p.pid, stop: p.stop };
}

async function main() {
  const why = real.unavailable('redis');
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const Redis = require('ioredis');
  const xenring = require('..');
  const redis = await real.startRedis();
  const paths = new Map();
  try {
    // Each proxy's clients use the library of its own build (a handshake
    // change may make a client and an older server disagree).
    paths.set('xenring', { ...(await ringProxy(path.join(__dirname, '..'), redis.port, `fresh-${process.pid}`)), lib: xenring });
    if (process.env.XENRING_BENCH_BEFORE) {
      const dir = path.resolve(process.env.XENRING_BENCH_BEFORE);
      paths.set('xenring-before', { ...(await ringProxy(dir, redis.port, `fresh-before-${process.pid}`)), lib: require(dir) });
    }
    const relay = await real.startTcpRelay(redis.port);
    paths.set('TCP via the proxy', { to: relay.port, pid: relay.pid, stop: relay.stop });

    const open = async ({ to, lib }) => {
      const options = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null };
      if (typeof to === 'number') Object.assign(options, { host: '127.0.0.1', port: to });
      else {
        options.Connector = class extends Redis.AbstractConnector {
          connect() {
            this.connecting = true;
            this.stream = lib.connect({ port: to });
            return Promise.resolve(this.stream);
          }
        };
      }
      const client = new Redis(options);
      await client.connect();
      return client;
    };
    const value = Buffer.alloc(size);
    for (let i = 0; i < size; i++) value[i] = (i * 7 + 3) & 0xff;
    const names = [...paths.keys()];
    const got = new Map(names.map((n) => [n, []]));
    // Two unrecorded rounds first: the first connections of a process compile its JavaScript.
    for (let r = 0; r < rounds + 2; r++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(r + j) % names.length];
        const p = paths.get(name);
        const f0 = minorFaults(p.pid);
        const c0 = performance.now();
        const client = await open(p);
        const t0 = performance.now();
        for (let k = 0; k < times; k++) {
          await client.set('xenring:fresh', value);
          const back = await client.getBuffer('xenring:fresh');
          if (!back.equals(value)) throw new Error(`${name}: the ${size}-byte value came back wrong`);
        }
        const t1 = performance.now();
        const ms = t1 - t0;
        const faults = minorFaults(p.pid) - f0;
        client.disconnect();
        if (r >= 2) got.get(name).push({ ms, withConnect: t1 - c0, faults });
      }
    }
    const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
    const relayMs = med(got.get('TCP via the proxy').map((g) => g.ms));
    const relayAll = med(got.get('TCP via the proxy').map((g) => g.withConnect));
    const cell = (a, base) => `${med(a).toFixed(2)} (${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)}) | ${(med(a) / base).toFixed(2)}×`;
    console.log(`### ${times} × ${size} B SET+GET on a new connection, median (range) of ${rounds} rounds, ${new Date().toISOString()}, load ${require('node:os').loadavg()[0].toFixed(2)}\n`);
    console.log('| path | exchange ms | ÷ TCP via the proxy | connect + exchange ms | ÷ TCP via the proxy | proxy page faults per connection |');
    console.log('|:---|---:|---:|---:|---:|---:|');
    for (const name of names) {
      const g = got.get(name);
      console.log(`| ${name} | ${cell(g.map((x) => x.ms), relayMs)} | ${cell(g.map((x) => x.withConnect), relayAll)} | ${med(g.map((x) => x.faults))} |`);
    }
  } finally {
    for (const p of paths.values()) await p.stop();
    await redis.stop();
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exitCode = 1;
});
