'use strict';
// Runs the `xenring` command (bin/xenring.js) as a real process.
const path = require('node:path');
const { spawn } = require('node:child_process');

const BIN = path.join(__dirname, '..', '..', 'bin', 'xenring.js');
const running = new Set();

/**
 * Starts `xenring ...args`; returns { child, stdout(), stderr(), exited, waitStderr(re) }.
 * stdout is collected as a Buffer, stderr as text.
 */
function startCli(args, { env = process.env, bin = BIN } = {}) {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  const out = [];
  let err = '';
  const stderrWaiters = [];
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => {
    err += d;
    for (const w of [...stderrWaiters]) {
      if (w.re.test(err)) {
        stderrWaiters.splice(stderrWaiters.indexOf(w), 1);
        w.resolve(err.match(w.re));
      }
    }
  });
  child.stdin.on('error', () => {}); // the command may exit before reading all of it
  const exited = new Promise((resolve) => child.once('close', (code, signal) => {
    running.delete(child);
    resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
  }));
  return {
    child,
    exited,
    stderr: () => err,
    /** Resolves with the match once stderr matches `re`; rejects if the command exits first. */
    waitStderr(re, what = String(re)) {
      if (re.test(err)) return Promise.resolve(err.match(re));
      return new Promise((resolve, reject) => {
        stderrWaiters.push({ re, resolve });
        exited.then((r) => reject(new Error(`xenring ${args.join(' ')} exited (${r.code}) before printing ${what}; stderr: ${r.stderr}`)));
      });
    },
  };
}

/** Runs `xenring ...args` to completion with `input` on stdin. */
function runCli(args, { input, env } = {}) {
  const p = startCli(args, { env });
  p.child.stdin.end(input);
  return p.exited;
}

/** Kills whatever a failed test left running. */
function killAll() {
  for (const c of running) c.kill('SIGKILL');
}

module.exports = { startCli, runCli, killAll, BIN };
