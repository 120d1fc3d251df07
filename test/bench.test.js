'use strict';
// npm run bench keeps working: a tiny run of every kind of row (xenring and
// node:net, 'data' and onread receivers, bulk, ping-pong, memory) moves and
// checks real bytes between processes, prints its tables and the targets,
// and writes JSON records in the schema ../shared/baselines/aggregate.mjs reads.
// Speed itself is the benchmark's business, never asserted here.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
require('./helpers/fixtures');

describe('bench', function () {
  it('a tiny run of every row kind verifies its bytes, prints the tables and the targets, writes records', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-bench-'));
    const json = path.join(dir, 'run.jsonl');
    const args = ['--reps', '1', '--cases', 'bulk,pingpong,mem', '--transports', 'xenring,xenring-onread,uds,uds-onread',
      '--chunks', '64,64K', '--bytes', '4M', '--max-writes', '16K', '--pp-iters', '200', '--pp-warmup', '20',
      '--mem-conns', '2', '--json', json];
    const { stdout } = await new Promise((resolve, reject) => {
      execFile(process.execPath, [path.join(__dirname, '..', 'bench', 'run.js'), ...args], { timeout: 120000 }, (err, stdout, stderr) =>
        err ? reject(Object.assign(err, { stdout, stderr })) : resolve({ stdout, stderr }),
      );
    });
    // 4 transports × 2 chunks bulk, 4 transports × 2 sizes ping-pong minus
    // the bulk-only onread rows: 8 + 4 measurements, all checked.
    assert.match(stdout, /Verification: 12 measurements, 0 not ok, 0 failed to run\./);
    assert.match(stdout, /\| \*\*xenring-onread ÷ uds-onread\*\* \|/);
    assert.match(stdout, /\| bulk 64 KiB \| ≥ 4× \| [0-9.]+× \| (yes|\*\*no\*\*) \| (receiver-bound|sender-bound|neither side)/);
    assert.match(stdout, /\| round trip 1 B, default options \| ≤ 0\.5× \|/);
    assert.match(stdout, /\| round trip 1 B, default options \(issue 10\) \| ≤ 2 µs \| [0-9.]+ µs \| (yes|\*\*no\*\*) \|/);
    const recs = fs.readFileSync(json, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const run = recs.find((r) => r.tool === 'node-baseline');
    assert.ok(run, 'a node-baseline record');
    assert.deepEqual(new Set(run.bulk.map((b) => b.transport)), new Set(['xenring', 'xenring-onread', 'uds', 'uds-onread']));
    for (const b of run.bulk) {
      assert.equal(b.ok, true, `${b.transport} ${b.chunk}`);
      assert.equal(b.rcv.bytes, b.bytes, `${b.transport} ${b.chunk}: every byte received`);
      assert.ok(b.mbps > 0 && b.snd.cpuPct >= 0 && b.rcv.faultsPerMiB >= 0);
    }
    assert.equal(run.pingpong.length, 4);
    for (const p of run.pingpong) assert.ok(p.ok && p.us.median > 0 && p.us.p99 >= p.us.median, p.transport);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
