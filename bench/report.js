'use strict';
// Markdown tables of a benchmark run: median (min–max) over the repetitions,
// and the ratio of every xenring row to node:net over a UNIX socket.

const { summary, sizeName } = require('./common');
const T = require('./transports');

const fmt = (x) => {
  if (x == null || Number.isNaN(x)) return '–';
  const a = Math.abs(x);
  if (a >= 100) return String(Math.round(x));
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
};
const cell = (s) => (!s ? '–' : s.n === 1 ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`);
const ratioFmt = (x) => (x == null || Number.isNaN(x) ? '–' : `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×`);

function table(header, rows) {
  const out = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ':---' : '---:')).join('|')}|`];
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
  return out.join('\n') + '\n';
}

/** Row label: the transport name and the options actually in force. */
function label(name, recs) {
  const spec = T.TRANSPORTS[name];
  if (!spec) return name;
  const rcv = spec.onread ? `, receiver onread ${sizeName(T.ONREAD_BUFFER)}` : '';
  if (!spec.xr) return `${name} (node:net, ${spec.net === 'uds' ? 'UNIX socket' : '127.0.0.1'}${rcv})`;
  const withOpts = recs.find((r) => r.options && (r.options.client || r.options.server));
  const c = withOpts && withOpts.options.client, s = withOpts && withOpts.options.server;
  const spin = (o) => (o && typeof o.spinMicros === 'number' ? o.spinMicros : '?');
  const asked = spec.xr.spinMicros === undefined ? 'default options' : `spinMicros: ${spec.xr.spinMicros}`;
  const eff = spin(c) === spin(s) ? `spinMicros=${spin(c)}` : `spinMicros client ${spin(c)} / server ${spin(s)}`;
  const ring = c && c.txSize ? `, ring ${sizeName(c.txSize)}` : '';
  return `${name} (${spec.xr.transport}; ${asked} → ${eff}${ring}${rcv})`;
}

/**
 * ratio of the xenring row to uds for one cell: ratio of medians, and the
 * range of the per-repetition ratios (same repetition = same conditions).
 */
function ratioCell(xs, us, metric) {
  const sx = summary(xs.map(metric)), su = summary(us.map(metric));
  if (!sx || !su) return '–';
  const per = [];
  for (const x of xs) {
    const u = us.find((y) => y._rep === x._rep);
    if (u) per.push(metric(x) / metric(u));
  }
  const ps = summary(per);
  const main = ratioFmt(sx.median / su.median);
  return ps && ps.n > 1 ? `${main} (${ratioFmt(ps.min).slice(0, -1)}–${ratioFmt(ps.max)})` : main;
}

function markdown({ cfg, meta, runs, mem, memFailures, secs }) {
  const out = [];
  const w = (s = '') => out.push(s);
  const bulk = runs.flatMap((r) => r.bulk.map((b) => ({ ...b, _rep: r.run })));
  const pp = runs.flatMap((r) => r.pingpong.map((p) => ({ ...p, _rep: r.run })));
  const failures = runs.flatMap((r) => r.failures.map((f) => ({ rep: r.run, ...f }))).concat(memFailures.map((f) => ({ rep: '-', ...f })));
  const date = runs[0] ? runs[0].time : new Date().toISOString();

  w(`# xenring benchmark`);
  w();
  w(`${date.slice(0, 16).replace('T', ' ')} UTC · ${meta.host.cpus} vCPU ${meta.host.model || ''} · kernel ${meta.host.kernel} · Node ${meta.node}` +
    ` · xenring ${meta.xenring.version}${meta.xenring.commit ? ` (${meta.xenring.commit}${meta.xenring.dirty ? ' + uncommitted lib/native changes' : ''}; build ${meta.xenring.build})` : ''}` +
    ` · load ${meta.loadavg.join(' ')} · ${meta.xenPresent ? 'Xen present' : 'no Xen: local transport only'}`);
  w();
  w(`${cfg.reps} repetition(s)${cfg.quick ? ' (--quick)' : ''}, every case a fresh child process; ${secs} s in all. ` +
    `Cells: median (min–max) over the repetitions. Ratios: xenring ÷ uds, the ratio of the medians ` +
    `(range: per-repetition ratios).`);
  w();

  if (bulk.length) {
    const ts = [...new Set(bulk.map((b) => b.transport))];
    const chunks = [...new Set(bulk.map((b) => b.chunk))];
    const get = (t, ch) => bulk.filter((b) => b.transport === t && b.chunk === ch);
    w(`## Bulk throughput, MB/s (1 MB = 10^6 B; receiver-measured, first to last read)`);
    w();
    const sizes = chunks.map((ch) => `${sizeName(ch)} → ${sizeName(get(ts[0], ch)[0] ? get(ts[0], ch)[0].bytes : 0)}`).join(', ');
    const rows = ts.map((t) => [label(t, bulk.filter((b) => b.transport === t)), ...chunks.map((ch) => cell(summary(get(t, ch).map((b) => b.mbps))))]);
    // Every xenring row against node:net as most code uses it ('data' events),
    // and the onread rows also against node:net reading the same way.
    for (const t of ts.filter(T.isXenring)) {
      const refs = ['uds', ...(T.usesOnread(t) ? ['uds-onread'] : [])].filter((u) => ts.includes(u));
      for (const u of refs) rows.push([`**${t} ÷ ${u}**`, ...chunks.map((ch) => ratioCell(get(t, ch), get(u, ch), (b) => b.mbps))]);
    }
    w(table(['transport \\ chunk', ...chunks.map(sizeName)], rows));
    w(`Bytes per case: ${sizes}. Verification: ${cfg.verify === 'full' ? 'every byte compared' : 'every byte counted, first/last byte of every read and one whole read per 4 MiB compared'}.`);
    w();
    w('CPU, sender % / receiver % (median; 100 % = one core busy):');
    w();
    w(table(['transport \\ chunk', ...chunks.map(sizeName)], ts.map((t) => [t, ...chunks.map((ch) => {
      const g = get(t, ch);
      return g.length ? `${fmt(summary(g.map((b) => b.snd.cpuPct)).median)} / ${fmt(summary(g.map((b) => b.rcv.cpuPct)).median)}` : '–';
    })])));
    w('Receiver: minor page faults per MiB · average bytes per read (median):');
    w();
    w(table(['transport \\ chunk', ...chunks.map(sizeName)], ts.map((t) => [t, ...chunks.map((ch) => {
      const g = get(t, ch);
      return g.length ? `${fmt(summary(g.map((b) => b.rcv.faultsPerMiB)).median)} · ${fmt(summary(g.map((b) => b.rcv.avgRead)).median)}` : '–';
    })])));
  }

  if (pp.length) {
    const ts = [...new Set(pp.map((p) => p.transport))];
    const sizes = [...new Set(pp.map((p) => p.size))];
    const get = (t, sz) => pp.filter((p) => p.transport === t && p.size === sz);
    const it = pp[0];
    w(`## Ping-pong round trip, µs (${it.iters} round trips after ${it.warmup} warm-up, one message in flight)`);
    w();
    const header = ['transport', ...sizes.flatMap((sz) => [`${sizeName(sz)} median`, `${sizeName(sz)} p99`]), 'pinger CPU %'];
    const rows = ts.map((t) => [label(t, pp.filter((p) => p.transport === t)),
      ...sizes.flatMap((sz) => [cell(summary(get(t, sz).map((p) => p.us.median))), cell(summary(get(t, sz).map((p) => p.us.p99)))]),
      fmt(summary(pp.filter((p) => p.transport === t).map((p) => p.cli && p.cli.cpuPct)) ? summary(pp.filter((p) => p.transport === t).map((p) => p.cli && p.cli.cpuPct)).median : null)]);
    if (ts.includes('uds')) {
      for (const t of ts.filter(T.isXenring)) {
        rows.push([`**${t} ÷ uds** (lower is better)`, ...sizes.flatMap((sz) => [
          ratioCell(get(t, sz), get('uds', sz), (p) => p.us.median), ratioCell(get(t, sz), get('uds', sz), (p) => p.us.p99)]), '']);
      }
    }
    w(table(header, rows));
  }

  const targets = targetRows(bulk, pp);
  if (targets.length) {
    w('## Targets (issue 5: ratios to node:net over a UNIX socket, medians of this run)');
    w();
    w(table(['case', 'target', 'measured', 'met?', 'where the time goes (xenring row)'], targets));
  }

  if (mem.length) {
    w(`## Memory: RSS growth per connection, KiB (${mem[0].conns} connections; both processes; after gc)`);
    w();
    w(`"idle": connected, nothing sent. "used": after ${sizeName(mem[0].xferPerConnEachWay)} each way on every connection (every ring page touched, receive buffers filled). ` +
      'Each cell: VmRSS (of which shared-memory pages · anonymous pages · live ArrayBuffer bytes as V8 counts them). ' +
      'The ring pages are shared: the same pages are counted in both processes.');
    w();
    const per = (m, label, who) => {
      const base = m.points.find((p) => p.label === 'listening')[who];
      const p = m.points.find((x) => x.label === label)[who];
      const d = (k) => (p[k] != null && base[k] != null ? (p[k] - base[k]) / m.conns : null);
      return { rss: d('VmRSS'), shm: d('RssShmem'), anon: d('RssAnon'), ab: d('arrayBuffers') };
    };
    const c3 = (x) => `${fmt(x.rss)} (${fmt(x.shm)} · ${fmt(x.anon)} · ${fmt(x.ab)})`;
    const rows = mem.map((m) => [`${m.transport}${m.ringSize ? `, ring ${sizeName(m.ringSize)}` : ''}`,
      c3(per(m, 'idle', 'parent')), c3(per(m, 'idle', 'child')), c3(per(m, 'after-transfer', 'parent')), c3(per(m, 'after-transfer', 'child')),
      `${fmt(per(m, 'closed', 'parent').rss)} / ${fmt(per(m, 'closed', 'child').rss)}`]);
    w(table(['transport', 'idle, client', 'idle, server', 'used, client', 'used, server', 'after close, client / server'], rows));
    // Fit shared pages and anonymous pages separately against the ring size
    // (shared = the ring pages; anonymous = receive buffers, JS objects, malloc).
    for (const t of [...new Set(mem.filter((m) => m.ringSize).map((m) => m.transport))]) {
      const ms = mem.filter((m) => m.transport === t && m.ringSize).sort((a, b) => b.ringSize - a.ringSize);
      if (ms.length < 2) continue;
      const [big, small] = ms;
      const dMiB = (big.ringSize - small.ringSize) / (1024 * 1024);
      const slope = (state, who, k) => (per(big, state, who)[k] - per(small, state, who)[k]) / dMiB;
      const avg = (state, who, k) => (per(big, state, who)[k] + per(small, state, who)[k]) / 2;
      w(`${t}, per connection, from the ring sizes ${sizeName(small.ringSize)} and ${sizeName(big.ringSize)} (ringSize = bytes per direction):`);
      w();
      w(`- idle: ${fmt(avg('idle', 'parent', 'rss'))} KiB client, ${fmt(avg('idle', 'child', 'rss'))} KiB server; ring pages are not resident until used ` +
        `(shared ${fmt(slope('idle', 'parent', 'shm'))} KiB per MiB of ring); live ArrayBuffers ${fmt(avg('idle', 'parent', 'ab'))} KiB (allocated, not yet touched).`);
      w(`- used: shared (ring) pages ${fmt(slope('after-transfer', 'parent', 'shm'))} KiB per MiB of ringSize in each process that maps them ` +
        `(two directions), plus anonymous ${fmt(avg('after-transfer', 'parent', 'anon'))} KiB client / ${fmt(avg('after-transfer', 'child', 'anon'))} KiB server ` +
        `independent of ring size (slope ${fmt(slope('after-transfer', 'parent', 'anon'))} / ${fmt(slope('after-transfer', 'child', 'anon'))} KiB per MiB), ` +
        `of which ${fmt(avg('after-transfer', 'parent', 'ab'))} KiB are live ArrayBuffers.`);
      w();
    }
    if (mem.some((m) => m.transport === 'uds')) {
      w('uds: kernel socket buffers are not part of RSS, so its row shows only the JS/libuv objects.');
      w();
    }
  }

  const probed = [...bulk, ...pp].filter((r) => r.probe && r.probe.pre != null && r.probe.post != null);
  if (probed.length) {
    const place = (r) => (r.probe.pre < 0.2 && r.probe.post < 0.2 ? 'near' : r.probe.pre >= 0.2 && r.probe.post >= 0.2 ? 'far' : 'mixed');
    const cnt = {};
    for (const r of probed) cnt[place(r)] = (cnt[place(r)] || 0) + 1;
    const far = probed.filter((r) => place(r) !== 'near').map((r) => `${r.transport} ${sizeName(r.chunk || r.size)} rep ${r._rep}`);
    w(`vCPU placement (cache-line round trip before/after each case; near < 0.2 µs): ${Object.entries(cnt).map(([k, v]) => `${k} ${v}`).join(', ')}` +
      `${far.length ? ` (not near: ${far.join(', ')})` : ''}.`);
    w();
  }
  const notOk = [...bulk.filter((b) => !b.ok).map((b) => ({ rep: b._rep, kind: 'bulk', transport: b.transport, chunk: b.chunk, bytes: b.rcv.bytes, expected: b.bytes, edgeErrors: b.rcv.edgeErrors, fullErrors: b.rcv.fullErrors })),
    ...pp.filter((p) => !p.ok).map((p) => ({ rep: p._rep, kind: 'pingpong', transport: p.transport, size: p.size, errors: p.errors, echoed: p.echoed }))];
  const total = bulk.length + pp.length;
  w(`Verification: ${total} measurements, ${notOk.length} not ok, ${failures.length} failed to run.`);
  for (const f of notOk) w(`- NOT OK: ${JSON.stringify(f)}`);
  for (const f of failures) w(`- FAILED: ${JSON.stringify({ ...f, error: String(f.error).split('\n')[0] })}`);
  w();
  return out.join('\n');
}

/** The speed targets this benchmark checks: [bulk chunk or ping-pong row, bound]. */
const TARGETS = [
  { kind: 'bulk', chunk: 64, min: 5 },
  { kind: 'bulk', chunk: 1024, min: 4 },
  { kind: 'bulk', chunk: 64 * 1024, min: 4 },
  { kind: 'bulk', chunk: 1024 * 1024, min: 4 },
  { kind: 'pp', transport: 'xenring', size: 1, max: 0.5, what: 'round trip 1 B, default options' },
  { kind: 'pp', transport: 'xenring-nospin', size: 1, max: 0.9, what: 'round trip 1 B, spinning disabled' },
  // Issue 10's goals for the same two rows (one absolute, one stricter ratio).
  { kind: 'pp', transport: 'xenring', size: 1, maxMicros: 2, what: 'round trip 1 B, default options (issue 10)' },
  { kind: 'pp', transport: 'xenring-nospin', size: 1, max: 0.8, what: 'round trip 1 B, spinning disabled (issue 10)' },
];

/**
 * One row per target that this run measured: the ratio of medians, whether
 * it is met and, from the same run, which side's CPU (and page faults) it
 * went to, so that a miss carries its measured reason.
 */
function targetRows(bulk, pp) {
  const med = (xs, f) => { const s = summary(xs.map(f)); return s ? s.median : null; };
  const rows = [];
  for (const t of TARGETS) {
    if (t.kind === 'bulk') {
      const xs = bulk.filter((b) => b.transport === 'xenring' && b.chunk === t.chunk);
      const us = bulk.filter((b) => b.transport === 'uds' && b.chunk === t.chunk);
      if (!xs.length || !us.length) continue;
      const r = med(xs, (b) => b.mbps) / med(us, (b) => b.mbps);
      const snd = med(xs, (b) => b.snd.cpuPct), rcv = med(xs, (b) => b.rcv.cpuPct), flt = med(xs, (b) => b.rcv.faultsPerMiB);
      const bound = rcv >= 90 ? 'receiver-bound' : snd >= 90 ? 'sender-bound' : 'neither side at 90 % CPU or more (waiting on wake-ups, or a busy machine)';
      rows.push([`bulk ${sizeName(t.chunk)}`, `≥ ${t.min}×`, ratioFmt(r), r >= t.min ? 'yes' : '**no**',
        `${bound} (CPU sender ${fmt(snd)} % / receiver ${fmt(rcv)} %; receiver ${fmt(flt)} page faults per MiB)`]);
    } else {
      const xs = pp.filter((p) => p.transport === t.transport && p.size === t.size);
      const us = pp.filter((p) => p.transport === 'uds' && p.size === t.size);
      if (!xs.length || !us.length) continue;
      const mine = med(xs, (p) => p.us.median);
      const r = mine / med(us, (p) => p.us.median);
      const cpu = med(xs, (p) => p.cli && p.cli.cpuPct);
      const met = t.maxMicros !== undefined ? mine <= t.maxMicros : r <= t.max;
      rows.push([t.what, t.maxMicros !== undefined ? `≤ ${t.maxMicros} µs` : `≤ ${t.max}×`,
        t.maxMicros !== undefined ? `${fmt(mine)} µs` : ratioFmt(r), met ? 'yes' : '**no**',
        `${fmt(med(xs, (p) => p.us.median))} µs vs ${fmt(med(us, (p) => p.us.median))} µs; pinger CPU ${fmt(cpu)} %` +
        (t.transport === 'xenring-nospin' ? ' (each way: an eventfd wake-up and a libuv poll, as a socket needs)' : '')]);
    }
  }
  return rows;
}

module.exports = { markdown, label };
