#!/usr/bin/env node
'use strict';
// Summarises a V8 .cpuprofile (node --cpu-prof): the top frames by self time
// and by total (inclusive) time.
//   node bench/profile-summary.js FILE.cpuprofile [--top N]
// Typical use, the receiver of one xenring 64 B bulk case:
//   node bench/run.js --quick --cases bulk --transports xenring --chunks 64 --reps 1 --child-prof /tmp/prof
//   node bench/profile-summary.js /tmp/prof/*.cpuprofile

const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
const topIdx = args.indexOf('--top');
const TOP = topIdx >= 0 ? Number(args.splice(topIdx, 2)[1]) : 25;
if (!args.length) {
  console.error('usage: node bench/profile-summary.js FILE.cpuprofile [...] [--top N]');
  process.exit(2);
}

for (const file of args) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children || []) parent.set(c, n.id);
  // time per sample = the delta that follows it
  const selfUs = new Map();
  const deltas = prof.timeDeltas || [];
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = i + 1 < deltas.length ? deltas[i + 1] : 0;
    selfUs.set(prof.samples[i], (selfUs.get(prof.samples[i]) || 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const key = (n) => {
    const cf = n.callFrame;
    const where = cf.url ? `${path.basename(cf.url)}:${cf.lineNumber + 1}` : '';
    return `${cf.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
  };
  const self = new Map();
  const incl = new Map();
  for (const [id, us] of selfUs) {
    const n = nodes.get(id);
    self.set(key(n), (self.get(key(n)) || 0) + us);
    // inclusive: count once per distinct frame key on the stack
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(nodes.get(cur));
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) || 0) + us);
    }
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  console.log(`# ${path.basename(file)}: ${(total / 1000).toFixed(0)} ms sampled`);
  console.log('## self time');
  for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${pct(us)}  ${k}`);
  console.log('## total time (inclusive)');
  for (const [k, us] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${pct(us)}  ${k}`);
  console.log();
}
