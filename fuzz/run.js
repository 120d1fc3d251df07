#!/usr/bin/env node
'use strict';
/**
 * npm run fuzz [-- --time 60] [--target ring_ops,xs_wire] [--smoke] [--runs N] [--seed N] [--no-merge] [--list]
 *
 * Runs every fuzz target for a bounded time each:
 *   native targets (ring_ops, ring_setup, fast_copy): clang's libFuzzer under
 *   ASan + UBSan; new coverage is merged into fuzz/corpus/<target>/ and a
 *   crash is written to fuzz/regressions/<target>/ (commit both). Without
 *   clang, says how to get it and falls back to the g++ build (no coverage).
 *   JavaScript targets (xs_wire, local_handshake, local_messages, xen_values): the mutational
 *   runner in fuzz/js/runner.js, one child process per target.
 * --smoke: the g++ build only, crashes go to build/fuzz/crashes/ (what npm test runs).
 * Exit status 1 when any target failed.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { buildNative, NATIVE_TARGETS, ROOT } = require('./build');

const JS_TARGETS = ['xs_wire', 'local_handshake', 'local_messages', 'xen_values'];
const ALL = [...NATIVE_TARGETS, ...JS_TARGETS];

function parseArgs(argv) {
  const o = { time: 60, targets: ALL, smoke: false, runs: undefined, seed: undefined, merge: true, list: false, child: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--time') o.time = Number(val());
    else if (a === '--target') o.targets = val().split(',');
    else if (a === '--smoke') o.smoke = true;
    else if (a === '--runs') o.runs = Number(val());
    else if (a === '--seed') o.seed = Number(val());
    else if (a === '--no-merge') o.merge = false;
    else if (a === '--list') o.list = true;
    else if (a === '--child') o.child = val();
    else throw new Error(`unknown option ${a}`);
  }
  if (!(o.time > 0)) throw new Error('--time must be a positive number of seconds');
  for (const t of o.targets) if (!ALL.includes(t)) throw new Error(`unknown target ${t} (targets: ${ALL.join(', ')})`);
  return o;
}

const corpusDir = (t) => path.join(ROOT, 'fuzz', 'corpus', t);
const regressionDir = (t) => path.join(ROOT, 'fuzz', 'regressions', t);
const crashDir = (o, t) => (o.smoke ? path.join(ROOT, 'build', 'fuzz', 'crashes', t) : regressionDir(t));

/** Runs a target process; one that outlives `limitS` seconds is killed (a hang is a failure). */
function spawnLogged(cmd, args, limitS = Infinity) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = Number.isFinite(limitS)
      ? setTimeout(() => {
          out += `\nkilled: still running ${limitS} s after start (a hang)\n`;
          child.kill('SIGKILL');
        }, limitS * 1000)
      : null;
    let out = '';
    const keep = (d) => {
      out += d;
      if (out.length > 200000) out = out.slice(-100000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}

async function runNative(o, bins, t) {
  const bin = bins[t];
  for (const d of [corpusDir(t), regressionDir(t)]) fs.mkdirSync(d, { recursive: true });
  if (o.smoke || bins.standalone) {
    fs.mkdirSync(crashDir(o, t), { recursive: true });
    const crash = path.join(crashDir(o, t), `crash-${Date.now()}`);
    const args = [`-max_total_time=${o.time}`, `-runs=${o.runs ?? 1e9}`, `-crash_file=${crash}`, corpusDir(t), regressionDir(t)];
    if (o.seed !== undefined) args.push(`-seed=${o.seed}`);
    const r = await spawnLogged(bin, args, o.time + 120);
    return { ok: r.code === 0, out: r.out, crash: fs.existsSync(crash) ? crash : null };
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `xenring-fuzz-${t}-`));
  const args = [`-max_total_time=${o.time}`, '-max_len=4096', '-print_final_stats=1', `-artifact_prefix=${regressionDir(t)}/`,
    work, corpusDir(t), regressionDir(t)];
  if (o.runs !== undefined) args.push(`-runs=${o.runs}`);
  if (o.seed !== undefined) args.push(`-seed=${o.seed}`);
  const r = await spawnLogged(bin, args);
  let merged = '';
  if (r.code === 0 && o.merge) {
    const m = await spawnLogged(bin, ['-merge=1', corpusDir(t), work]);
    merged = (m.out.match(/MERGE-OUTER: \d+ new files.*/) || [''])[0];
  }
  fs.rmSync(work, { recursive: true, force: true });
  const stats = (r.out.match(/stat::number_of_executed_units: \d+|cov: \d+ ft: \d+/g) || []).slice(-2).join(', ');
  return { ok: r.code === 0, out: r.out, summary: [stats, merged].filter(Boolean).join('; ') };
}

async function runJs(o, t) {
  const args = [__filename, '--child', t, '--time', String(o.time)];
  if (o.smoke) args.push('--smoke');
  if (o.runs !== undefined) args.push('--runs', String(o.runs));
  if (o.seed !== undefined) args.push('--seed', String(o.seed));
  const r = await spawnLogged(process.execPath, args, o.time + 120);
  return { ok: r.code === 0, out: r.out };
}

/** Inside the child: one JavaScript target. */
async function child(o) {
  const target = require(`./js/targets/${o.child}`);
  const res = await require('./js/runner').fuzz(target, {
    dirs: [corpusDir(o.child), regressionDir(o.child)],
    timeMs: o.time * 1000,
    runs: o.runs,
    seed: o.seed,
    crashDir: crashDir(o, o.child),
  });
  console.log(`${o.child}: replayed ${res.replayed} inputs, ran ${res.mutations} mutations (seed ${res.seed}) in ${(res.ms / 1000).toFixed(1)} s, no failure`);
}

/** Native binaries for the targets in `o` (libFuzzer, or the g++ build with --smoke or without clang). */
async function build(o, log = (m) => console.log(`  ${m}`)) {
  const native = o.targets.filter((t) => NATIVE_TARGETS.includes(t));
  if (!native.length) return {};
  try {
    return await buildNative(o.smoke ? 'smoke' : 'libfuzzer', native, log);
  } catch (err) {
    if (err.code !== 'ENOCLANG') throw err;
    console.log(`${err.message}\nfalling back to the g++ build: random mutations without coverage feedback`);
    return { ...(await buildNative('smoke', native, log)), standalone: true };
  }
}

/** Runs one target: { ok, out, summary?, crash? }. */
function runTarget(o, bins, t) {
  return NATIVE_TARGETS.includes(t) ? runNative(o, bins, t) : runJs(o, t);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) return child(o);
  if (o.list) {
    console.log(ALL.join('\n'));
    return;
  }
  const bins = await build(o);
  let failed = 0;
  for (const t of o.targets) {
    console.log(`== ${t} (${o.time} s)`);
    const r = await runTarget(o, bins, t);
    const last = r.out.trim().split('\n').slice(-(r.ok ? 1 : 40)).join('\n');
    console.log(r.summary ? `${last}\n${r.summary}` : last);
    if (!r.ok) {
      failed++;
      console.log(`FAILED: ${t}${r.crash ? ` (input in ${r.crash})` : ''}`);
    }
  }
  if (failed) {
    console.log(`${failed} target(s) failed; reproducers are in fuzz/regressions/<target>/ (or build/fuzz/crashes with --smoke)`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err.stack || err);
    process.exitCode = 1;
  });
}

module.exports = { parseArgs, build, runTarget, NATIVE_TARGETS, JS_TARGETS };
