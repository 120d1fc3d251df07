#!/usr/bin/env node
'use strict';
/*
 * The floor under bulk write() to a default 'data' receiver (issue 13's
 * "≥ 4× UDS" target): what a fresh connection's 1 GiB stream must pay on
 * this host however little JavaScript runs, measured with the library's own
 * primitives, beside UDS and xenring in the same run.
 *
 *   node bench/pool-floor.js [--reps 3] [--bytes 1G]
 *
 * 1. Working set. A 'data' receiver gives a view back only when V8 collects
 *    it. V8 starts a minor GC for young external buffers once they reach
 *    twice its default semi-space (32 MiB on 64-bit Node 20, a constant):
 *    views of 1 MiB made and dropped at once, as a reader that keeps none,
 *    are counted alive (the mapping's holders) just before each minor GC
 *    (V8 checks when a backing store is allocated: one of 4 KiB per view).
 *    A sender can reuse no page a view still covers, so a stream touches at
 *    least this much of its pool.
 * 2. First touch. Copying into pool pages never touched before against the
 *    same pages again (PoolMapping.write, streaming stores, 1 MiB at a time,
 *    a fresh 64 MiB memfd region each rep): the difference is the page
 *    faults, per MiB.
 * 3. The copy. An ordinary Buffer must be copied once into shared pages:
 *    PoolMapping.write of 64 KiB and 1 MiB chunks over a warm 32 MiB window,
 *    alone, and with a second process reading a quarter of 64 MiB over and
 *    over (what bench/child.js's checks do to the data; memory bandwidth is
 *    shared).
 * 4. UDS and xenring bulk (bench/run.js --cases bulk, same run): UDS's MB/s
 *    gives the budget of 4× (µs per MiB for the busier side).
 *
 * The sender's floor per MiB of a fresh 1 GiB stream = the copy (with the
 * reader) + the page faults per MiB xenring's sender took in the same run
 * (its pool's first touches: the pages that views held until a GC kept it
 * from reusing) × the first-touch cost of a page; no JavaScript, no
 * wake-up, no run bookkeeping counted. (The same with step 1's working set
 * in place of the measured faults is printed beside it.) If the floor is at
 * or above the 4× budget, no 'data'-receiver design that copies each
 * ordinary Buffer once and gets views back at GCs can meet the target on
 * this host.
 */
const path = require('node:path');
const { fork, execFileSync } = require('node:child_process');
const { PerformanceObserver } = require('node:perf_hooks');
const fs = require('node:fs');
const os = require('node:os');
const { parseSize, summary, optionValue } = require('./common');

const args = process.argv.slice(2);
const opt = (name, def) => optionValue(args, name, def);
const reps = Number(opt('reps', 3));
const bytes = parseSize(opt('bytes', '1G'));
const MiB = 1 << 20;

if (process.argv[2] === '--reader') {
  // The second process of step 3: reads a quarter of 64 MiB, again and again, until killed.
  const a = Buffer.alloc(64 * MiB, 1);
  const b = Buffer.alloc(64 * MiB, 1);
  process.send('ready');
  let sink = 0;
  for (;;) for (let o = 0; o < a.length; o += 4 * MiB) sink += Buffer.compare(a.subarray(o, o + MiB), b.subarray(o, o + MiB));
}

const { native } = require('../dist/native');
const { poolNative } = require('../dist/pool/native_pool');

function region(size) {
  const fd = native.memfdCreate('xenring-floor', size);
  const mapping = new poolNative.PoolMapping(fd, size, true);
  native.closeFd(fd);
  return mapping;
}

const usPerMiB = (ns, n) => ns / 1e3 / (n / MiB);
const now = () => process.hrtime.bigint();

/** Step 1: views alive at each minor GC, MiB (views of 1 MiB made and dropped). */
async function workingSet() {
  const m = region(64 * MiB);
  const peaks = [];
  let last = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e.detail ? e.detail.kind : e.kind) === 1) peaks.push(last);
  });
  obs.observe({ entryTypes: ['gc'] });
  let sink = 0;
  for (let i = 0; i < 2048; i++) {
    const v = m.view((i % 64) * MiB, MiB);
    // V8 checks its young external bytes when a backing store is allocated (a reader allocates something per chunk).
    sink += v[0] + Buffer.allocUnsafeSlow(4096).length;
    last = m.holders;
    if (i % 16 === 15) await new Promise((r) => setImmediate(r)); // GC observers and finalizers run between turns
  }
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  m.close();
  return { peaks: peaks.slice(2), sink };
}

/** Step 2: µs per MiB copying into fresh pages, and into the same pages again. */
function firstTouch() {
  const m = region(64 * MiB);
  const src = Buffer.alloc(MiB, 7);
  const lap = () => {
    const t = now();
    for (let o = 0; o < 64 * MiB; o += MiB) m.write(o, src);
    return Number(now() - t);
  };
  const fresh = lap();
  const warm = lap();
  m.close();
  return { fresh: usPerMiB(fresh, 64 * MiB), warm: usPerMiB(warm, 64 * MiB) };
}

/** Step 3: µs per MiB of PoolMapping.write, `chunk`-byte sources (at odd offsets, as bench/run.js's), warm 32 MiB window. */
function copy(chunk) {
  const W = 32 * MiB;
  const m = region(W);
  const zero = Buffer.alloc(MiB);
  for (let o = 0; o < W; o += MiB) m.write(o, zero);
  const src = Buffer.alloc(chunk + 251, 3);
  const views = [];
  for (let p = 0; p < 251; p++) views.push(src.subarray(p, p + chunk));
  let off = 0;
  const pass = (n) => {
    for (let i = 0; i < n / chunk; i++) {
      m.write(off, views[i % 251]);
      off = off + chunk >= W ? 0 : off + chunk;
    }
  };
  pass(64 * MiB); // untimed: the code warm
  const total = 2 * 1024 * MiB;
  const t = now();
  pass(total);
  const ns = Number(now() - t);
  m.close();
  return usPerMiB(ns, total);
}

async function withReader(f) {
  const child = fork(__filename, ['--reader'], { stdio: 'ignore' });
  // The reader on the other vCPU, as bench/run.js's receiver (--pin 0,1).
  try {
    await new Promise((resolve, reject) => { child.once('message', resolve); child.once('error', reject); });
    if (os.cpus().length > 1) try { execFileSync('taskset', ['-pc', '1', String(child.pid)], { stdio: 'ignore' }); } catch { /* no taskset: unpinned */ }
    return f();
  } finally {
    child.kill('SIGKILL');
  }
}

function bulk() {
  const tmp = path.join(os.tmpdir(), `xenring-floor-${process.pid}.json`);
  try {
    execFileSync(process.execPath, [path.join(__dirname, 'run.js'), '--cases', 'bulk', '--chunks', '64K,1M', '--bytes', String(bytes),
      '--transports', 'xenring,uds', '--pin', '0,1', '--reps', String(reps), '--json', tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
    const rows = fs.readFileSync(tmp, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).flatMap((r) => r.bulk || []);
    const pick = (t, c) => rows.filter((r) => r.transport === t && r.chunk === c && r.ok);
    const mbps = (t, c) => summary(pick(t, c).map((r) => r.mbps));
    // CPU µs per MiB of one side of a repetition, and of its busier side.
    const cpuPerMiB = (side, n) => (side.cpuUserUs + side.cpuSysUs) / (n / MiB);
    const busier = (t, c) => summary(pick(t, c).map((r) => Math.max(cpuPerMiB(r.snd, r.bytes), cpuPerMiB(r.rcv, r.rcv.bytes))));
    // Page faults per MiB of the sender (process-wide; a UDS sender takes well under 1 per MiB).
    const faults = (t, c) => summary(pick(t, c).map((r) => r.snd.faultsPerMiB));
    const at = (t) => Object.fromEntries([65536, MiB].map((c) => [c, { mbps: mbps(t, c), cpu: busier(t, c), faults: faults(t, c) }]));
    return { uds: at('uds'), xenring: at('xenring') };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

(async () => {
  if (os.platform() !== 'linux') throw new Error('pool-floor: Linux only (memfd)');
  // Pinned as bench/run.js --pin 0,1 pins its sender.
  if (os.cpus().length > 1) try { execFileSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' }); } catch { /* unpinned */ }
  const ws = [], fresh = [], warm = [], c64 = [], c1m = [], r64 = [], r1m = [];
  for (let r = 1; r <= reps; r++) {
    process.stderr.write(`pool-floor: rep ${r}/${reps}\n`);
    const w = await workingSet();
    ws.push(...w.peaks);
    const f = firstTouch();
    fresh.push(f.fresh);
    warm.push(f.warm);
    c64.push(copy(65536));
    c1m.push(copy(MiB));
    const [a, b] = await withReader(() => [copy(65536), copy(MiB)]);
    r64.push(a);
    r1m.push(b);
  }
  process.stderr.write('pool-floor: bulk (bench/run.js)\n');
  const b = bulk();
  const fmt = (s, d = 0) => (s ? `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})` : '—');
  const wsMiB = summary(ws).median;
  const faultPerMiB = summary(fresh).median - summary(warm).median;
  const out = [];
  const w = (x = '') => out.push(x);
  w('# Floor under bulk write() to a \'data\' receiver (issue 13)');
  w();
  w(`${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} · ${os.cpus().length} vCPU ${os.cpus()[0].model.trim()} · Node ${process.version} · load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} · ${reps} rep(s); cells: median (min–max)`);
  w();
  w('| quantity | measured |');
  w('|:---|---:|');
  w(`| views of 1 MiB alive at each minor GC (the pool a 'data' reader's sender cycles through), MiB | ${fmt(summary(ws))} |`);
  w(`| copy into fresh pool pages (first touch), µs per MiB | ${fmt(summary(fresh))} |`);
  w(`| the same pages again, µs per MiB | ${fmt(summary(warm))} |`);
  w(`| copy of 64 KiB writes into a warm 32 MiB window, µs per MiB: alone / with a reader process | ${fmt(summary(c64))} / ${fmt(summary(r64))} |`);
  w(`| copy of 1 MiB writes, the same | ${fmt(summary(c1m))} / ${fmt(summary(r1m))} |`);
  w();
  const perPage = faultPerMiB / 256; // µs per first-touch fault
  w(`| chunk | UDS MB/s | 4× UDS: µs per MiB for the busier side | xenring sender's page faults per MiB (same run) | sender floor, µs per MiB: the copy with a reader + those faults at ${perPage.toFixed(1)} µs | best ratio to UDS that floor allows | with the views-at-GC working set instead of the faults | xenring MB/s (÷ UDS), same run | CPU µs per MiB of the busier side: xenring / UDS |`);
  w('|:---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [chunk, name, cw] of [[65536, '64 KiB', r64], [MiB, '1 MiB', r1m]]) {
    const uds = b.uds[chunk].mbps;
    const xr = b.xenring[chunk].mbps;
    const flt = b.xenring[chunk].faults;
    if (!uds) continue;
    const budget = MiB / (4 * uds.median); // µs per MiB at 4× UDS (MB/s = bytes/µs)
    const copyUs = summary(cw).median;
    const floor = copyUs + (flt ? flt.median * perPage : 0);
    const best = MiB / floor / uds.median;
    const floorWs = copyUs + (wsMiB * faultPerMiB) / (bytes / MiB);
    w(`| ${name} | ${fmt(uds)} | ${budget.toFixed(0)} | ${fmt(flt, 1)} | ${floor.toFixed(0)} | ${best.toFixed(2)}× | ${floorWs.toFixed(0)} µs, ${(MiB / floorWs / uds.median).toFixed(2)}× | ${xr ? `${fmt(xr)} (${(xr.median / uds.median).toFixed(2)}×)` : '—'} | ${fmt(b.xenring[chunk].cpu)} / ${fmt(b.uds[chunk].cpu)} |`);
  }
  w();
  w('The floor leaves out everything that is not a copy or a fault: write() calls, runs, descriptors, wake-ups, the receiver\'s');
  w('\'data\' events and checks. A floor above the 4× budget means no design that copies each ordinary Buffer once and gets');
  w('views back at minor GCs can reach 4× on this host; a releasing reader (socket.release) or allocBuffer() can.');
  process.stdout.write(out.join('\n') + '\n');
})().catch((e) => {
  process.stderr.write(`pool-floor: ${e.stack || e}\n`);
  process.exit(1);
});
