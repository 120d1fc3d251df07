'use strict';
// The package as a user gets it: `npm pack` (whose prepack builds dist/ and a
// linux-x64 N-API prebuild), installed into an empty project on a PATH with
// only node, npm and sh (no python3, make or C++ compiler), then an echo through
// the installed library and its `xenring` command, in two processes.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile, execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..');

function run(cmd, args, options) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 << 20, timeout: 300000, ...options }, (err, stdout, stderr) =>
      err ? reject(Object.assign(err, { message: `${cmd} ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}` })) : resolve({ stdout, stderr }),
    );
  });
}

/** Which of `names` can be found on `PATH`. */
function found(names, PATH) {
  return names.filter((n) => PATH.split(':').some((d) => d && fs.existsSync(path.join(d, n))));
}

describe('packaging: npm pack, then install without a compiler', function () {
  this.timeout(300000);
  let work;
  let tarball;
  let files;

  before(async function () {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-pack-'));
    // Pack a copy of the tree as git sees it (tracked and new files, nothing
    // ignored: no dist/, build/ or prebuilds/), so prepack must make them.
    const src = path.join(work, 'src');
    const list = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT }).toString().split('\0').filter(Boolean);
    for (const f of list) {
      if (!fs.existsSync(path.join(ROOT, f))) continue; // deleted, not yet committed
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(src, f));
    }
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
    // JOBS: node-gyp compiles the prebuild's files in parallel.
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: src, env: { ...process.env, JOBS: 'max' } });
    const info = JSON.parse(stdout.slice(stdout.indexOf('[')))[0];
    tarball = path.join(work, info.filename);
    files = info.files.map((f) => f.path);
  });

  it('the tarball holds the prebuild, the LICENSE, the command, and every source a source map names', function () {
    assert.ok(files.some((f) => /^prebuilds\/linux-x64\/[^/]+\.node$/.test(f)), `no linux-x64 prebuild in ${files.join(' ')}`);
    for (const f of ['LICENSE', 'README.md', 'CHANGELOG.md', 'bin/xenring.js', 'dist/index.js', 'dist/index.d.ts', 'binding.gyp', 'bench/run.js']) {
      assert.ok(files.includes(f), `${f} missing from the tarball`);
    }
    const pkgFiles = new Set(files);
    const maps = files.filter((f) => f.endsWith('.js.map'));
    assert.ok(maps.length > 0);
    const dir = fs.mkdtempSync(path.join(work, 'unpacked-'));
    execFileSync('tar', ['xzf', tarball, '-C', dir]);
    for (const m of maps) {
      const map = JSON.parse(fs.readFileSync(path.join(dir, 'package', m), 'utf8'));
      for (const s of map.sources) {
        const rel = path.posix.normalize(path.posix.join(path.posix.dirname(m), map.sourceRoot || '', s));
        assert.ok(pkgFiles.has(rel), `${m} names ${rel}, which is not shipped`);
      }
    }
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('build/')), 'tests or build output shipped');
  });

  it("README's links work from the registry page: absolute, and those into the package name shipped files", function () {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    assert.ok(links.length > 0);
    for (const link of links) {
      if (link.startsWith('#')) continue; // an anchor on the same page
      assert.match(link, /^https:\/\//, `relative link ${link} breaks on the registry page`);
      const m = /^https:\/\/unpkg\.com\/browse\/xenring\/(.*)$/.exec(link);
      if (!m) continue;
      const shipped = m[1].endsWith('/') ? files.some((f) => f.startsWith(m[1])) : files.includes(m[1]);
      assert.ok(shipped, `${link}: ${m[1]} is not in the package`);
    }
  });

  it('installs into an empty project with only node, npm and sh on PATH (no python3, make or C++ compiler), and echoes through it', async function () {
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    const npmCli = path.join(path.dirname(process.execPath), 'npm');
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync(fs.realpathSync(npmCli), path.join(bin, 'npm'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh')); // npm runs install scripts with sh
    const PATH = bin;
    assert.deepEqual(found(['python3', 'python', 'make', 'g++', 'c++', 'cc', 'gcc'], PATH), []);
    const project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    const env = { HOME: process.env.HOME, PATH, npm_config_cache: process.env.npm_config_cache, XENRING_DIR: path.join(work, 'rdv') };
    if (!env.npm_config_cache) delete env.npm_config_cache;
    await run(path.join(bin, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project, env });
    const installed = path.join(project, 'node_modules', 'xenring');
    assert.ok(!fs.existsSync(path.join(installed, 'build')), 'the addon was compiled instead of the prebuild being used');

    // A server in one process (the library), a client in another (the installed `xenring cat`).
    const data = crypto.randomBytes(1 << 20).toString('base64');
    fs.writeFileSync(path.join(project, 'data.txt'), data);
    const script = `
      const xenring = require('xenring');
      const DATA = require('node:fs').readFileSync('data.txt', 'utf8');
      const { execFile } = require('node:child_process');
      const server = xenring.createServer((s) => s.pipe(s)).listen('pack-echo', () => {
        const child = execFile('node_modules/.bin/xenring', ['cat', 'ring:pack-echo'], { maxBuffer: 8 << 20 }, (err, out) => {
          if (err) throw err;
          console.log(out === DATA ? 'echo ok' : 'echo CORRUPT ' + out.length);
          server.close();
        });
        child.stdin.end(DATA);
      });`;
    const { stdout } = await run(path.join(bin, 'node'), ['-e', script], { cwd: project, env });
    assert.equal(stdout.trim(), 'echo ok');
  });
});
