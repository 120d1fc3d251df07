'use strict';
// Issue 10's "the tree reads in layers, with no import running back up"
// (docs/architecture.md): every relative import in lib/ is resolved and both
// ends ranked; an import of a higher layer, or of a file no layer claims,
// fails here with its file and line.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const LIB = path.resolve(__dirname, '..', '..', 'lib');

/** The layer of a file under lib/ (path without .ts), bottom = 0; null when unranked. */
function rank(rel) {
  if (['constants', 'errors', 'validators'].includes(rel)) return 0; // shared by every layer
  if (['native', 'array_buffer_sweeping', 'returned_buffers', 'user_buffer', 'pool/native_pool'].includes(rel)) return 1;
  if (rel.startsWith('pool/')) return 2;
  if (rel.startsWith('ring/')) return 3;
  if (rel.startsWith('transports/')) return 4;
  if (['socket', 'server', 'vchan_sockets', 'fallback'].includes(rel)) return 5;
  if (rel === 'index') return 6;
  if (rel.startsWith('cli/')) return 7;
  if (rel === '../package.json') return 0; // the version, read by the command
  return null;
}

function sources(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** `lib/`-relative name of an import target, as rank() takes it. */
function target(from, spec) {
  const abs = path.resolve(path.dirname(from), spec);
  if (fs.existsSync(`${abs}.ts`)) return path.relative(LIB, abs);
  if (fs.existsSync(path.join(abs, 'index.ts'))) return path.relative(LIB, path.join(abs, 'index'));
  return path.relative(LIB, abs);
}

/** Relative imports of one file (static, dynamic, require, re-exports, type-only): [spec, line]. */
function imports(file) {
  const found = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const re = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  lines.forEach((text, i) => {
    for (const m of text.matchAll(re)) found.push([m[1], i + 1]);
  });
  return found;
}

describe('layers: no import in lib/ runs back up', function () {
  it('every relative import goes to the same or a lower layer', function () {
    const files = sources(LIB);
    const problems = [];
    let count = 0;
    for (const file of files) {
      const rel = path.relative(LIB, file).replace(/\.ts$/, '');
      const own = rank(rel);
      if (own === null) problems.push(`${rel}.ts: in no layer`);
      for (const [spec, line] of imports(file)) {
        count++;
        const to = target(file, spec);
        const theirs = rank(to);
        if (theirs === null) problems.push(`${rel}.ts:${line} imports ${spec}: in no layer`);
        else if (own !== null && theirs > own) problems.push(`${rel}.ts:${line} imports ${spec} (layer ${theirs} above ${own})`);
      }
    }
    // A scan that found nothing would pass vacuously.
    assert.ok(files.length > 40 && count > 150, `scanned ${files.length} files, ${count} imports`);
    assert.deepEqual(problems, []);
  });
});
