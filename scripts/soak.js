'use strict';
// npm run soak [-- --minutes N] [--cycles N] [--no-readme]
// Runs every fault of test/load/scenarios.js, 200 concurrent connections,
// 20,000 connect/close cycles and an N-minute (default 10) soak of mixed
// traffic; prints each row, writes docs/load-results.json and renders the
// README's "Faults and load" table from it. Exits 1 if any row failed.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const minutes = opt('minutes', 10);
const cycleCount = opt('cycles', 20000);
const ROOT = path.join(__dirname, '..');
const RESULTS = path.join(ROOT, 'docs', 'load-results.json');
const README = path.join(ROOT, 'README.md');
const START = '<!-- load-results:start -->';
const END = '<!-- load-results:end -->';

if (!process.env.XENRING_DIR) process.env.XENRING_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-soak-'));
const { FAULTS, concurrent, cycles, soak } = require('../test/load/scenarios');

function render(results) {
  const lines = [
    START,
    `Produced by \`npm run soak\` on ${results.date} (${results.host}); ${results.rows.filter((r) => r.ok).length}/${results.rows.length} rows passed. Resources are this process's fds, xenring memfds, mappings and RSS before -> after.`,
    '',
    '| | Injected / held | Result | Resources before -> after | OK |',
    '|---|---|---|---|---|',
    ...results.rows.map((r) => `| ${r.kind} | ${r.name}: ${r.held} | ${r.result.replace(/\|/g, '/')} | ${r.resources} | ${r.ok ? 'yes' : '**no**'} |`),
    END,
  ];
  return lines.join('\n');
}

function updateReadme(results) {
  const text = fs.readFileSync(README, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < 0) throw new Error(`README.md has no ${START} ... ${END} markers`);
  fs.writeFileSync(README, text.slice(0, a) + render(results) + text.slice(b + END.length));
}

async function main() {
  if (args.includes('--render')) return updateReadme(JSON.parse(fs.readFileSync(RESULTS, 'utf8')));
  const rows = [];
  const record = (row) => {
    rows.push(row);
    console.log(`${row.ok ? 'ok  ' : 'FAIL'} ${row.kind}: ${row.name} — ${row.held}\n     ${row.result}\n     ${row.resources}`);
  };
  for (const run of Object.values(FAULTS)) record(await run());
  record(await concurrent(200, 256 << 10));
  record(await cycles(cycleCount));
  let last = 0;
  record(
    await soak(minutes * 60_000, (c) => {
      if (Date.now() - last > 30_000) {
        last = Date.now();
        console.log(`     soak: ${JSON.stringify(c)}`);
      }
    }),
  );
  const results = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    host: `${os.cpus().length} vCPUs, Node ${process.version}`,
    command: `npm run soak -- --minutes ${minutes} --cycles ${cycleCount}`,
    rows: rows.map(({ error, problems, ...r }) => ({ ...r, problems })),
  };
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n');
  if (!args.includes('--no-readme')) updateReadme(results);
  console.log(`wrote ${path.relative(ROOT, RESULTS)}${args.includes('--no-readme') ? '' : ' and the README table'}`);
  process.exitCode = rows.every((r) => r.ok) ? 0 : 1;
}

main().then(
  () => process.exit(),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
