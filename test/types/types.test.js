'use strict';
// Issue 10 item 6: the package's declarations work for a consumer. Packs the
// package (npm pack), installs the tarball into a temporary project and
// compiles test/types/consumer.ts against it with `strict` and
// `skipLibCheck: false` (the repo's own typescript and @types/node).
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');

describe('types: a strict TypeScript consumer of the packed package', function () {
  let project;
  after(() => project && fs.rmSync(project, { recursive: true, force: true }));

  it('npm pack + install + tsc (skipLibCheck: false, strict) compiles with no error', function () {
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-types-'));
    const npm = (args) => execFileSync('npm', args, { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    // dist/ is fresh (npm test runs tsc first): no scripts, so nothing is rebuilt.
    const packed = JSON.parse(npm(['pack', ROOT, '--json', '--ignore-scripts', '--pack-destination', project]));
    const tarball = path.join(project, packed[0].filename);
    const files = packed[0].files.map((f) => f.path);
    assert.ok(files.includes('dist/index.d.ts'), 'the tarball has the declarations');
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    npm(['install', tarball, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock']);
    const installed = path.join(project, 'node_modules', 'xenring');
    assert.ok(fs.existsSync(path.join(installed, 'dist', 'index.d.ts')));
    // The consumer's own type roots: the repo's @types (node, with its deps).
    const tsconfig = JSON.parse(fs.readFileSync(path.join(__dirname, 'tsconfig.consumer.json'), 'utf8'));
    tsconfig.compilerOptions.typeRoots = [path.join(ROOT, 'node_modules', '@types')];
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
    fs.copyFileSync(path.join(__dirname, 'consumer.ts'), path.join(project, 'consumer.ts'));
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    let out = '';
    try {
      out = execFileSync(process.execPath, [tsc, '-p', project, '--pretty', 'false'], { encoding: 'utf8' });
    } catch (err) {
      out = `${err.stdout}${err.stderr}`;
    }
    assert.equal(out.trim(), '', `tsc reported:\n${out}`);
  });
});
