'use strict';
// Shared helpers of the benchmark parent (run.js) and its forked child
// (child.js): sizes, the stream pattern, statistics, memory readings.

const fs = require('node:fs');
const path = require('node:path');

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Byte i of every bulk stream is i % PERIOD (prime: never aligned with a chunk size). */
const PERIOD = 251;
/** Pattern comparisons are done in pieces of at most this many bytes. */
const REF_SPAN = MiB;
/** --verify sample: one whole read is compared per this many bytes. */
const CHECK_EVERY = 4 * MiB;

function makePattern(len, start = 0) {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (start + i) % PERIOD;
  return b;
}

let REF = null;
/** Does `d` equal pattern bytes [off, off + d.length)? (memcmp against a precomputed slice) */
function patternOk(d, off) {
  if (!REF) REF = makePattern(REF_SPAN + PERIOD);
  for (let i = 0; i < d.length; i += REF_SPAN) {
    const n = Math.min(REF_SPAN, d.length - i);
    const p = (off + i) % PERIOD;
    if (Buffer.compare(d.subarray(i, i + n), REF.subarray(p, p + n)) !== 0) return false;
  }
  return true;
}

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(String(s).trim());
  if (!m) throw new Error(`bad size: ${s}`);
  return Math.round(Number(m[1]) * { '': 1, k: KiB, m: MiB, g: GiB }[m[2].toLowerCase()]);
}

/** '64 B', '1 KiB', '64 KiB', '1 MiB' (aggregate.mjs spells them the same way). */
function sizeName(n) {
  if (n >= GiB && n % GiB === 0) return `${n / GiB} GiB`;
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} B`;
}

/** Latency statistics of an array of µs values. */
function latencyStats(arr) {
  const s = Float64Array.from(arr).sort();
  const n = s.length;
  const q = (p) => s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  let sum = 0;
  for (const v of s) sum += v;
  return { n, median: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), mean: sum / n, min: s[0], max: s[n - 1] };
}

/** median / min / max of a list of numbers (nulls ignored). */
function summary(vals) {
  const v = vals.filter((x) => x != null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const n = v.length;
  const mid = n >> 1;
  return { n, min: v[0], max: v[n - 1], median: n % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2 };
}

const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;

/** Memory of this process from /proc/self/status, in KiB (VmRSS = RssAnon + RssFile + RssShmem), and live ArrayBuffer bytes. */
function procMemory() {
  const out = {};
  try {
    const txt = fs.readFileSync('/proc/self/status', 'utf8');
    for (const key of ['VmRSS', 'RssAnon', 'RssFile', 'RssShmem']) {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(txt);
      out[key] = m ? Number(m[1]) : null;
    }
  } catch {
    out.VmRSS = Math.round(process.memoryUsage().rss / KiB);
  }
  // Buffers/ArrayBuffers alive in V8's view (receive slabs included).
  out.arrayBuffers = Math.round(process.memoryUsage().arrayBuffers / KiB);
  return out;
}

/** A gc() function even without --expose-gc (null if unavailable). */
function getGc() {
  if (typeof global.gc === 'function') return global.gc;
  try {
    require('node:v8').setFlagsFromString('--expose-gc');
    return require('node:vm').runInNewContext('gc');
  } catch {
    return null;
  }
}

/** Is the Xen event-channel device there (then the 'xen' transport is worth trying)? */
function xenPresent() {
  try {
    fs.accessSync('/dev/xen/evtchn', fs.constants.R_OK | fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Pins this process to CPU 0 and `child` to CPU 1 (a spinning pair kept apart, as run.js --pin 0,1). */
function pinPair(child) {
  const { execFileSync } = require('node:child_process');
  execFileSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });
  execFileSync('taskset', ['-pc', '1', String(child.pid)], { stdio: 'ignore' });
}

/**
 * The parent side of a script that forks itself as its server (`--child`
 * appended; the child sends { port } once listening): forks it (pinned with
 * --pin, see pinPair) and connects `lib` to that port. Resolves { child, sock }.
 */
async function connectForkedSelf(lib, filename, args) {
  const child = require('node:child_process').fork(filename, [...args, '--child']);
  if (args.includes('--pin')) pinPair(child);
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  const sock = lib.connect({ port, transport: 'local' });
  await new Promise((resolve) => sock.once('connect', resolve));
  return { child, sock };
}

/**
 * The value of option `--name` in `args` (`--name VALUE` or `--name=VALUE`),
 * else `dflt`. With `take`, the option is also removed from `args` (for a
 * script that hands the rest of its arguments on).
 */
function optionValue(args, name, dflt, { take = false } = {}) {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return dflt;
  const eq = args[i].indexOf('=');
  const value = eq >= 0 ? args[i].slice(eq + 1) : args[i + 1];
  if (take) args.splice(i, eq >= 0 ? 1 : 2);
  return value;
}

/** The library under test: this checkout (its package main, i.e. dist/). */
const LIB_PATH = path.resolve(__dirname, '..');

module.exports = {
  KiB, MiB, GiB, PERIOD, REF_SPAN, CHECK_EVERY,
  makePattern, patternOk, parseSize, sizeName, latencyStats, summary, r1, r2,
  procMemory, getGc, xenPresent, pinPair, connectForkedSelf, optionValue, LIB_PATH,
};
