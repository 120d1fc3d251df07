'use strict';
// rendezvousPath() and socketPath() remember their last answer (a client
// connects again and again; path.resolve/join are costly while cold): every
// input they depend on must still change the answer at once. Checked
// against the rule written out here, through changes of the option, each
// variable, and the working directory, in any order.
const assert = require('node:assert');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');

const { rendezvousPath, socketPath } = require(path.join(__dirname, '..', '..', 'dist', 'transports', 'local_dir.js'));

const uid = process.getuid ? process.getuid() : 0;
/** The rule (README, "Trust model"): the option, XENRING_DIR, $XDG_RUNTIME_DIR/xenring, <tmpdir>/xenring-<uid>; relative to the working directory. */
function expected(dir) {
  const e = process.env;
  return path.resolve(dir || e.XENRING_DIR || (e.XDG_RUNTIME_DIR ? path.join(e.XDG_RUNTIME_DIR, 'xenring') : '') || path.join(os.tmpdir(), `xenring-${uid}`));
}

describe('rendezvous paths follow every input at once', () => {
  const saved = {};
  const vars = ['XENRING_DIR', 'XDG_RUNTIME_DIR', 'TMPDIR', 'TMP', 'TEMP'];
  const cwd = process.cwd();
  let scratch;
  before(() => {
    for (const v of vars) saved[v] = process.env[v];
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xr-rpath-'));
  });
  after(() => {
    for (const v of vars) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
    process.chdir(cwd);
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('the option, each variable, unset and empty, the working directory', () => {
    const set = (k, v) => (v === undefined ? delete process.env[k] : (process.env[k] = v));
    const steps = [
      () => {},
      () => set('XDG_RUNTIME_DIR', undefined),
      () => set('XENRING_DIR', undefined),
      () => set('TMPDIR', path.join(scratch, 't1')),
      () => set('TMPDIR', path.join(scratch, 't2')),
      () => set('TMPDIR', ''),
      () => set('TMP', path.join(scratch, 'tmp')),
      () => set('TMPDIR', undefined),
      () => set('XDG_RUNTIME_DIR', path.join(scratch, 'run')),
      () => set('XDG_RUNTIME_DIR', ''),
      () => set('XDG_RUNTIME_DIR', 'relative-run'),
      () => process.chdir(scratch),
      () => set('XENRING_DIR', 'rel'),
      () => process.chdir(cwd),
      () => set('XENRING_DIR', ''),
      () => set('XENRING_DIR', path.join(scratch, 'x')),
      () => set('XENRING_DIR', undefined),
    ];
    const dirs = [undefined, '', path.join(scratch, 'opt'), path.join(scratch, 'opt', '..', 'opt2', '.'), 'opt-rel'];
    let checked = 0;
    for (const [i, step] of steps.entries()) {
      step();
      // The option asked last before this change first (the remembered answer
      // must not survive it), then the others, in turn one way and the other.
      for (const d of i % 2 ? [...dirs].reverse() : dirs) {
        assert.strictEqual(rendezvousPath(d), expected(d), `dir ${JSON.stringify(d)}, env ${JSON.stringify(vars.map((v) => process.env[v]))}, cwd ${process.cwd()}`);
        // Asked twice in a row (the remembered answer), and after another option.
        assert.strictEqual(rendezvousPath(d), expected(d));
        checked++;
      }
    }
    assert.strictEqual(checked, steps.length * dirs.length);
  });

  it('a bad option is still refused, whatever was asked before', () => {
    rendezvousPath(undefined);
    assert.throws(() => rendezvousPath(42), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.strictEqual(rendezvousPath(undefined), expected(undefined));
  });

  it('socketPath: each directory and port', () => {
    for (const [dir, port] of [['/a', 1], ['/a', 1], ['/a', 2], ['/b', 2], ['/b', 'name'], ['/a', 'name'], ['/a', 1]]) {
      assert.strictEqual(socketPath(dir, port), path.join(dir, `${port}.sock`));
    }
  });
});
