#!/usr/bin/env node
'use strict';
/*
 * Counts, per process, what one load of a Node client from bench/real.js
 * costs on the ring: native ring calls (write, read, waitData, service, ...),
 * wake-ups (the ring's fd watcher firing), Socket writes (_write, _writev and
 * their chunks), 'data' chunks pushed, pause()/resume(), and CPU time. Every
 * process on the path counts (the client here, the forked server or the
 * `xenring proxy` bridge), so "writes per http2 window" or "wake-ups per pg
 * query" can be read off. Counts do not depend on the host's load; the CPU
 * and rate lines do (compare same-run ratios only).
 *
 *   node bench/client-counts.js h2|undici|pg|ioredis [--per N] [--tcp [--rounds N]] [--warm]
 *
 * --tcp also times the same load over TCP (direct), --rounds N (3) rounds alternating;
 * for pg and ioredis also through a TCP relay (`xenring proxy` with TCP on
 * both sides: the bridge's hop without the ring).
 * Loads: h2 200 streams of 256 KiB; undici 2,000 GETs of 4 KiB; pg 1,000
 * queries; ioredis 4 SET+GETs of 1 MiB. Counts are divided by --per (default:
 * streams, requests, queries, 1; with --warm, ioredis per SET+GET).
 * --warm (ioredis): one connection per path, warmed by an uncounted round and
 * reused by every load after it, instead of a new connection per load.
 *
 * The child processes load this file with -r (NODE_OPTIONS): there it only
 * installs the counters; SIGUSR1 resets them, SIGUSR2 writes them to
 * $XENRING_COUNTS_DIR/<pid>.json.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { countedClass } = require('./counted_class');

const dist = path.join(__dirname, '..', 'dist');
const counts = {};
const inc = (k, n = 1) => (counts[k] = (counts[k] || 0) + n);

function install() {
  const { native } = require(path.join(dist, 'native'));
  const Counted = countedClass(native.RingEndpoint, (k, call) => {
    inc(`ring.${k}`);
    const r = call();
    if (k === 'write' || k === 'read') inc(`ring.${k} bytes`, r);
    return r;
  });
  // Spins (waitData with a time): how many found data, and the µs spent in them,
  // the CPU a spin takes from whatever else wants to run.
  // Every wrapper here passes every argument through: the library adds some
  // (waitData's watched mark, the watcher's wake-up read), and one dropped
  // changes what is measured or, for the wake-up read, loses the bytes it took.
  native.RingEndpoint = function SpinCounted(...a) {
    const ep = new Counted(...a);
    const waitData = ep.waitData;
    Object.defineProperty(ep, 'waitData', {
      value: (micros, ...rest) => {
        if (!(micros > 0)) return waitData(micros, ...rest);
        const t0 = process.hrtime.bigint();
        const r = waitData(micros, ...rest);
        inc('spin µs', Number(process.hrtime.bigint() - t0) / 1000);
        inc(r > 0 ? 'spin found data' : 'spin found nothing');
        return r;
      },
      configurable: true,
    });
    return ep;
  };
  const Watcher = native.FdWatcher;
  native.FdWatcher = function CountedWatcher(fd, cb) {
    // (events, read, error, round): read >= 0 is the bytes the wake-up already took out of the ring.
    return new Watcher(fd, (...args) => (inc('wake-ups'), cb(...args)));
  };
  const P = require(path.join(dist, 'socket')).Socket.prototype;
  const wrap = (name, count) => {
    const f = P[name];
    P[name] = function (...a) {
      inc(`socket.${name}`);
      if (count) count(...a);
      return f.apply(this, a);
    };
  };
  wrap('_write', (chunk) => inc('socket._write bytes', chunk.length));
  wrap('_writev', (chunks) => {
    inc('socket._writev chunks', chunks.length);
    for (const c of chunks) inc('socket._writev bytes', c.chunk.length);
  });
  wrap('push', (chunk) => chunk && inc('socket.push bytes', chunk.length));
  wrap('pause');
  wrap('resume');
  // CPU and context switches since the reset, as counts of their own (involuntary
  // switches: the process was preempted, e.g. by a spinner on a busy host).
  let usage0 = process.resourceUsage();
  let wait0 = runQueueWaitUs(process.pid);
  const reset = () => {
    for (const k of Object.keys(counts)) delete counts[k];
    usage0 = process.resourceUsage();
    wait0 = runQueueWaitUs(process.pid);
  };
  const usage = () => {
    const u = process.resourceUsage();
    counts['process CPU µs'] = u.userCPUTime + u.systemCPUTime - usage0.userCPUTime - usage0.systemCPUTime;
    counts['process switches, involuntary'] = u.involuntaryContextSwitches - usage0.involuntaryContextSwitches;
    counts['process switches, voluntary'] = u.voluntaryContextSwitches - usage0.voluntaryContextSwitches;
    counts['process page faults'] = u.minorPageFault - usage0.minorPageFault;
    // Runnable but not running (waiting for a CPU): where a request/reply
    // path on a busy host loses time that its CPU figures do not show.
    counts['process run-queue wait µs'] = runQueueWaitUs(process.pid) - wait0;
    return counts;
  };
  return { reset, usage };
}

if (require.main !== module) {
  // Preloaded into a child (the forked server or a proxy).
  const { reset, usage } = install();
  process.on('SIGUSR1', reset);
  process.on('SIGUSR2', () => {
    usage();
    const dir = process.env.XENRING_COUNTS_DIR || os.tmpdir();
    const role = process.argv.slice(2).join(' ');
    fs.writeFileSync(path.join(dir, `${process.pid}.json`), JSON.stringify({ role, counts }));
  });
} else {
  main().catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exitCode = 1;
  });
}

/** CPU ms process `pid` has used, to the ns (/proc/PID/schedstat; /proc/PID/stat's ticks are 10 ms, a whole 1 MiB round). */
function cpuMs(pid) {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return require('./real').cpuSeconds(pid) * 1000;
  }
}

/**
 * Times process `pid` went to sleep waiting (voluntary context switches, all
 * threads): each is a wake-up to pay for, a scheduling delay on a busy host.
 */
function sleeps(pid) {
  let n = 0;
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const m = /voluntary_ctxt_switches:\s+([0-9]+)/.exec(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'));
      if (m) n += Number(m[1]);
    }
  } catch {
    /* gone meanwhile */
  }
  return n;
}

/** µs process `pid` has spent runnable, waiting for a CPU (/proc/PID/schedstat; 0 where there is none). */
function runQueueWaitUs(pid) {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1000;
  } catch {
    return 0;
  }
}

/** Our child Node processes (the forked server, the proxies): not redis-server or postgres. */
function nodeChildren() {
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.split(') ')[1].split(' ')[1]);
      if (ppid === process.pid && fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'node') out.push(Number(p));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/**
 * A load on one warm connection per path: the first call for a path opens a
 * session and runs one uncounted round on it; every call after reuses it (what
 * bench/real.js's warm rows measure). The sessions close with `stops`.
 */
function warmLoad(open, options, stops) {
  const sessions = new Map();
  return async (to) => {
    let s = sessions.get(to);
    if (s === undefined) {
      s = await open(to);
      sessions.set(to, s);
      stops.unshift(() => s.close());
      await s.run(options);
    }
    return s.run(options);
  };
}

async function main() {
  const args = process.argv.slice(2);
  const kind = args[0];
  const perIdx = args.indexOf('--per');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-counts-'));
  process.env.XENRING_COUNTS_DIR = dir;
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS || ''} -r ${__filename}`.trim();
  const { reset, usage } = install();
  const real = require('./real');
  const stops = [];
  let load;
  let to;
  let tcp;
  let per;
  let relay = null;
  if (kind === 'h2' || kind === 'undici') {
    const server = await real.startNodeServer(kind === 'h2' ? 'h2' : 'http');
    stops.push(server.stop);
    [to, tcp] = [server.ring, server.tcp];
    if (kind === 'h2') [load, per] = [(t) => real.h2Streams(t, { streams: 200, size: 256 << 10 }), 200];
    else [load, per] = [(t) => real.undiciRequests(t, { requests: 2000, size: 4096 }), 2000];
  } else if (kind === 'pg' || kind === 'ioredis') {
    const why = real.unavailable(kind === 'pg' ? 'postgres' : 'redis');
    if (why) throw new Error(why);
    const server = kind === 'pg' ? await real.startPostgres() : await real.startRedis();
    const bridge = await real.startRingBridge(server.port);
    // The relay is started after the bridge: nodeChildren() then lists the bridge first.
    relay = await real.startTcpRelay(server.port);
    stops.push(bridge.stop, relay.stop, server.stop);
    [to, tcp] = [bridge.ring, server.port];
    if (kind === 'pg') [load, per] = [(t) => real.pgQueries(t, { queries: 1000, bytea: 0 }), 1000];
    else if (args.includes('--warm')) [load, per] = [warmLoad(real.ioredisSession, { ops: 0, big: 1 << 20, bigTimes: 4 }, stops), 4];
    else [load, per] = [(t) => real.ioredisOps(t, { ops: 0, big: 1 << 20, bigTimes: 4 }), 1];
  } else {
    throw new Error('usage: node bench/client-counts.js h2|undici|pg|ioredis [--per N] [--tcp]');
  }
  if (perIdx >= 0) per = Number(args[perIdx + 1]);
  try {
    await load(to); // warm-up, uncounted
    await new Promise((r) => setTimeout(r, 200)); // the children have loaded this file by now
    const kids = nodeChildren();
    for (const p of kids) process.kill(p, 'SIGUSR1');
    reset();
    await new Promise((r) => setTimeout(r, 100));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const result = await load(to);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const sides = [{ role: 'client (this process)', counts: { ...usage() }, cpuMs: (cpu.user + cpu.system) / 1000 }];
    for (const p of kids) process.kill(p, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 300));
    for (const f of fs.readdirSync(dir)) sides.push(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
    console.log(`${kind} over the ring: ${JSON.stringify(result)} in ${ms.toFixed(0)} ms; counts per ${per}`);
    for (const s of sides) {
      console.log(`  ${s.role}${s.cpuMs !== undefined ? `, ${s.cpuMs.toFixed(0)} ms CPU` : ''}`);
      for (const [k, v] of Object.entries(s.counts).sort()) console.log(`    ${k.padEnd(24)} ${String(Math.round(v)).padStart(10)}  ${(v / per).toFixed(2)}`);
    }
    if (args.includes('--tcp')) {
      const paths = [['ring', to], ['tcp', tcp]];
      if (relay !== null) paths.splice(1, 0, ['relay', relay.port]);
      const all = [...kids, ...nodeChildren().filter((p) => !kids.includes(p))];
      const roundsIdx = args.indexOf('--rounds');
      const rounds = roundsIdx >= 0 ? Number(args[roundsIdx + 1]) : 3;
      const seen = new Map(paths.map(([name]) => [name, []]));
      for (let i = 0; i < rounds; i++) {
        // Alternate which path goes first (the first after a pause finds caches and CPUs cold).
        for (const [name, t] of i % 2 ? paths.slice().reverse() : paths) {
          const u0 = process.resourceUsage();
          const k0 = all.map(cpuMs);
          const w0 = [process.pid, ...all].map(runQueueWaitUs);
          const s0 = [process.pid, ...all].map(sleeps);
          const r = await load(t);
          const s = [process.pid, ...all].map((p, j) => sleeps(p) - s0[j]);
          const u = process.resourceUsage();
          const k = all.map((p, j) => (cpuMs(p) - k0[j]).toFixed(2));
          const w = [process.pid, ...all].map((p, j) => ((runQueueWaitUs(p) - w0[j]) / 1000).toFixed(2));
          const c = (u.userCPUTime + u.systemCPUTime - u0.userCPUTime - u0.systemCPUTime) / 1000;
          const faults = u.minorPageFault - u0.minorPageFault;
          seen.get(name).push([r, c, faults, ...k.map(Number), ...s, ...w.map(Number)]);
          console.log(`  ${name.padEnd(5)} ${JSON.stringify(r)}; client: CPU ${c.toFixed(1)} ms, ${faults} page faults; children CPU ms ${k.join(', ')}; run-queue wait ms, client then children: ${w.join(', ')}; sleeps ${s.join(', ')}`);
        }
      }
      // Medians per path and per --per unit: the figures to compare (same run, alternating).
      const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
      console.log(`  medians of ${rounds} rounds, per ${per}: children in the order ${all.join(', ')}`);
      for (const [name, rows] of seen) {
        const col = (j) => median(rows.map((row) => row[j])) / per;
        const rate = Object.entries(rows[0][0]).map(([key]) => `${key} ${median(rows.map((row) => row[0][key])).toFixed(0)}`);
        const kids = all.map((p, j) => `${(col(3 + j) * 1000).toFixed(0)}`);
        const slept = [process.pid, ...all].map((p, j) => col(3 + all.length + j).toFixed(1));
        const waited = [process.pid, ...all].map((p, j) => (col(4 + 2 * all.length + j) * 1000).toFixed(0));
        console.log(`  ${name.padEnd(5)} ${rate.join(', ')}; client CPU µs ${(col(1) * 1000).toFixed(0)}, page faults ${col(2).toFixed(1)}; children CPU µs ${kids.join(', ')}; sleeps, client then children ${slept.join(', ')}; run-queue wait µs ${waited.join(', ')}`);
      }
    }
  } finally {
    for (const s of stops) await s();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
