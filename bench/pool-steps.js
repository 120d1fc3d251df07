#!/usr/bin/env node
'use strict';
/*
 * What one pool hand-off costs in JS and native calls, without wake-ups or a
 * second process: a sender and a receiver of one 64 MiB pool in this
 * process, each message allocBuffer() -> send() -> poll() -> take() ->
 * release(), with a setImmediate turn every `--turn-every` messages (Node
 * runs finalizers and collected-view callbacks there). Prints, per tree,
 * the median ns of each call (hrtime around each) and the CPU µs per
 * message of untimed rounds (process.cpuUsage). Trees alternate:
 *
 *   node bench/pool-steps.js [--size 16m] [--count 10000] [--rounds 5] [--turn-every 1] [TREE ...]
 *
 * TREE: a built checkout (default: this one), e.g. /work/wt/before for a
 * same-run A/B. CPU per message includes the loop turns (a bare
 * setImmediate turn is ~2 µs on the 2-vCPU host). The host is shared:
 * compare trees of the same run, not absolute numbers.
 */
const path = require('node:path');
const { parseSize, optionValue } = require('./common');

const args = process.argv.slice(2);
const opt = (name, def) => optionValue(args, name, def, { take: true }); // the rest are positional
const size = parseSize(opt('size', '16m'));
const count = Number(opt('count', 10000));
const rounds = Number(opt('rounds', 5));
const turnEvery = Number(opt('turn-every', 1));
const trees = (args.length > 0 ? args : [path.join(__dirname, '..')]).map((t) => path.resolve(t));

const now = () => process.hrtime.bigint();
const turn = () => new Promise((r) => setImmediate(r));
const STEPS = ['allocBuffer', 'send', 'poll', 'take', 'release'];

function setUp(tree) {
  const { createShared, attachPool } = require(path.join(tree, 'test/pool/pair'));
  const shared = createShared({ poolBytes: 64 << 20 });
  return {
    tree,
    sender: attachPool(shared.poolFd, shared, 'sender'),
    receiver: attachPool(shared.poolFd, shared, 'receiver'),
    ns: Object.fromEntries(STEPS.map((s) => [s, []])),
    cpu: [],
  };
}

/** One message; `t` (an array of 6 bigints) gets the stamps when given. */
function message(s, t) {
  if (t) t[0] = now();
  const buf = s.sender.allocBuffer(size);
  if (t) t[1] = now();
  if (buf === null || !s.sender.send(buf, 0)) throw new Error('pool-steps: the message did not go by reference');
  if (t) t[2] = now();
  s.receiver.poll(0);
  if (t) t[3] = now();
  const view = s.receiver.take(0);
  if (t) t[4] = now();
  if (view === null || view.length !== size || !s.receiver.release(view)) throw new Error('pool-steps: the payload did not arrive as a view');
  if (t) t[5] = now();
}

async function timed(s) {
  const t = new Array(6);
  for (let i = 0; i < count; i++) {
    message(s, t);
    STEPS.forEach((k, j) => s.ns[k].push(Number(t[j + 1] - t[j])));
    if ((i + 1) % turnEvery === 0) await turn();
  }
}

async function cpu(s) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    message(s, null);
    if ((i + 1) % turnEvery === 0) await turn();
  }
  const c = process.cpuUsage(c0);
  s.cpu.push((c.user + c.system) / count);
}

const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

(async () => {
  const setups = trees.map(setUp);
  for (const s of setups) for (let i = 0; i < 2000; i++) message(s, null); // warm-up: JIT, first faults
  for (let r = 0; r < rounds; r++) {
    for (const s of setups) {
      await timed(s);
      await cpu(s);
    }
  }
  const os = require('node:os');
  console.log(`pool-steps: ${size} B, ${rounds} × ${count} messages per tree, a loop turn every ${turnEvery}; load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`| tree | ${STEPS.join(' | ')} | sum (ns) | CPU µs/message, median (min–max) |`);
  console.log(`|:---|${STEPS.map(() => '---:').join('|')}|---:|---:|`);
  for (const s of setups) {
    const m = STEPS.map((k) => median(s.ns[k]));
    const c = s.cpu;
    console.log(`| ${s.tree} | ${m.join(' | ')} | ${m.reduce((x, y) => x + y, 0)} | ${median(c).toFixed(2)} (${Math.min(...c).toFixed(2)}–${Math.max(...c).toFixed(2)}) |`);
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
