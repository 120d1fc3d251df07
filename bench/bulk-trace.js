#!/usr/bin/env node
'use strict';
/*
 * Where a bulk stream's time goes, per side: a parent writes N bytes in
 * ordinary write()s of one chunk size to a forked child that receives them
 * with a plain 'data' listener (the bench's bulk case, issue 13's target).
 * Each side reports per MiB moved: CPU µs (user + sys), minor page faults,
 * native calls on RingEndpoint and PoolQueue by name, wake-ups (service()),
 * voluntary context switches, and its GCs (minor/major, from
 * PerformanceObserver); the receiver also its 'data' events per MiB.
 * Counts are deterministic enough to compare on a loaded machine, which the
 * throughput is not.
 *
 *   node bench/bulk-trace.js [--chunk 64K] [--bytes 1G] [--dist DIR] [--pool 0|1] [--ring-size N] [--pin P,C] [--read-all]
 *
 * --pin P,C pins the sender to CPU P and the receiver to CPU C (as
 * bench/run.js does). The receiver also reports its receive slabs per MiB:
 * fresh ones (page faults, cold cache) and reused ones.
 *
 * --read-all: the receiver also reads every byte it gets (a memchr for a
 * byte the pattern never holds), as a receiver that parses or stores the
 * data would: what the bytes cost to reach from the receiver's CPU.
 */
const path = require('node:path');
const { fork, execFileSync } = require('node:child_process');
const { once } = require('node:events');
const { PerformanceObserver, constants: perfConstants } = require('node:perf_hooks');
const { countedClass } = require('./counted_class');
const { parseSize, makePattern, PERIOD, optionValue } = require('./common');

const args = process.argv.slice(2);
const opt = (name, def) => optionValue(args, name, def);
const dist = path.resolve(opt('dist', path.join(__dirname, '..', 'dist')));
const chunk = parseSize(opt('chunk', '64K'));
const bytes = parseSize(opt('bytes', '1G'));
const poolOpt = opt('pool', '1') === '0' ? false : undefined;
const ringSize = opt('ring-size') ? parseSize(opt('ring-size')) : undefined;
const isChild = args.includes('--child');
const readAll = args.includes('--read-all');
const pin = opt('pin') ? opt('pin').split(',').map(Number) : null;
if (pin && (pin.length !== 2 || !pin.every((n) => Number.isInteger(n) && n >= 0))) throw new Error('--pin must be P,C (two CPU numbers)');

const { native } = require(path.join(dist, 'native'));
const counts = {};
let counting = false;
function counted(Class, prefix) {
  return countedClass(Class, (k, call) => {
    if (counting) counts[prefix + k] = (counts[prefix + k] || 0) + 1;
    return call();
  });
}
native.RingEndpoint = counted(native.RingEndpoint, '');
if (native.PoolQueue) native.PoolQueue = counted(native.PoolQueue, 'PoolQueue.');
const xenring = require(dist);

const gcs = { minor: 0, major: 0, ms: 0 };
new PerformanceObserver((list) => {
  if (!counting) return;
  for (const e of list.getEntries()) {
    const kind = e.detail ? e.detail.kind : e.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gcs.minor++;
    else gcs.major++;
    gcs.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

/** Starts counting; returns a function that reports per MiB of `total`. */
function measure() {
  for (const k of Object.keys(counts)) delete counts[k];
  Object.assign(gcs, { minor: 0, major: 0, ms: 0 });
  counting = true;
  const cpu0 = process.cpuUsage();
  const ru0 = process.resourceUsage();
  const t0 = process.hrtime.bigint();
  return (total, extra = {}) => {
    counting = false;
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    const ru = process.resourceUsage();
    const mib = total / (1 << 20);
    const per = (v) => +(v / mib).toFixed(2);
    const calls = {};
    for (const [k, v] of Object.entries(counts)) calls[k] = per(v);
    return {
      mbps: Math.round(total / (ns / 1e9) / 1e6),
      cpuUsPerMiB: per(cpu.user + cpu.system),
      cpuPct: +((100 * (cpu.user + cpu.system)) / (ns / 1e3)).toFixed(1),
      faultsPerMiB: per(ru.minorPageFault - ru0.minorPageFault),
      ctxSwitchesPerMiB: per(ru.voluntaryContextSwitches - ru0.voluntaryContextSwitches),
      callsPerMiB: calls,
      gc: { minor: gcs.minor, major: gcs.major, ms: Math.round(gcs.ms) },
      ...extra,
    };
  };
}

// The receive slabs of a 'data' reader (lib/ring/read_pool.ts), when this build counts them.
const readPool = (() => {
  try {
    return require(path.join(dist, 'ring', 'read_pool'));
  } catch {
    return {};
  }
})();
const slabsNow = () => {
  if (typeof readPool.slabCounts !== 'function') return { fresh: NaN, reused: NaN };
  const t = { fresh: 0, reused: 0 };
  for (const size of readPool.slabSizes()) {
    const c = readPool.slabCounts(size);
    t.fresh += c.fresh;
    t.reused += c.reused;
  }
  return t;
};

if (isChild) {
  const server = xenring.createServer({ pool: poolOpt }, (s) => {
    let got = 0, events = 0, stop = null, bad = 0, slabs0 = null;
    s.on('data', (d) => {
      if (stop === null) {
        slabs0 = slabsNow();
        stop = measure();
      }
      if (d[0] !== got % PERIOD || d[d.length - 1] !== (got + d.length - 1) % PERIOD) bad++;
      if (readAll && d.indexOf(0xff) !== -1) bad++; // the pattern's bytes are 0..PERIOD-1 < 255
      got += d.length;
      events++;
    });
    s.on('end', () => {
      const mib = got / (1 << 20);
      const slabs = slabsNow();
      const slabsPerMiB = { fresh: +((slabs.fresh - slabs0.fresh) / mib).toFixed(3), reused: +((slabs.reused - slabs0.reused) / mib).toFixed(3) };
      process.send({ side: 'receiver', bytes: got, bad, ...stop(got, { dataEventsPerMiB: +(events / mib).toFixed(2), slabsPerMiB }) });
      s.end();
    });
  });
  server.listen({ port: 0, transport: 'local', ringSize }, () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
} else {
  (async () => {
    if (pin) execFileSync('taskset', ['-pc', String(pin[0]), String(process.pid)], { stdio: 'ignore' });
    const child = fork(__filename, [...args, '--child'], { execArgv: [...process.execArgv, '--expose-gc'] });
    if (pin) execFileSync('taskset', ['-pc', String(pin[1]), String(child.pid)], { stdio: 'ignore' });
    const [{ port }] = await once(child, 'message');
    const resultP = once(child, 'message');
    const c = xenring.connect({ port, transport: 'local', pool: poolOpt });
    await once(c, 'connect');
    const src = makePattern(chunk + PERIOD);
    const views = [];
    for (let p = 0; p < PERIOD; p++) views.push(src.subarray(p, p + chunk));
    const n = Math.max(1, Math.floor(bytes / chunk));
    const stop = measure();
    let i = 0, off = 0;
    await new Promise((resolve) => {
      const write = () => {
        while (i < n) {
          const v = views[off % PERIOD];
          i++;
          off += chunk;
          if (!c.write(v)) return void c.once('drain', write);
        }
        c.end(resolve);
      };
      write();
    });
    const sender = { side: 'sender', ...stop(n * chunk, { ringSize: c.channel.link.endpoint.info().txSize }) };
    const [receiver] = await resultP;
    for (const r of [sender, receiver]) console.log(JSON.stringify(r));
    c.destroy();
    child.disconnect();
  })();
}
