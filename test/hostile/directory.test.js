'use strict';
// Another user plants the rendezvous directory (issue 11, attack 6): a
// directory of theirs open to everyone, a symlink, the default
// <tmpdir>/xenring-<uid> made in advance. Whoever can create entries in the
// directory can impersonate servers or squat ports, so it must be refused.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { once } = require('node:events');
const xenring = require('../..');
const { hostilePeer, connectOutcome } = require('./helpers');

const NOBODY = { uid: 65534, gid: 65534 };

/** A fresh sticky, world-writable directory like /tmp, where the other user can plant. */
function sharedTmp() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-hostile-'));
  fs.chmodSync(dir, 0o1777);
  return dir;
}

async function plant(opts) {
  const peer = hostilePeer('plant', { ...NOBODY, ...opts });
  assert.equal(await peer.line(), 'planted');
  await peer.exited;
}

/** The error code of listen({ port, ...options }), or 'listening'. */
function listenResult(options) {
  return new Promise((resolve) => {
    const server = xenring.createServer();
    server.on('listening', () => server.close(() => resolve('listening')));
    server.on('error', (err) => resolve(err.code));
    server.listen({ port: 'squat', ...options });
  });
}

describe('hostile peer: rendezvous directory', function () {
  this.timeout(30000);
  before(function () {
    if (process.getuid() !== 0) this.skip(); // planting as another user needs root to switch uid
  });

  it("refuses a directory another user made open to everyone", async function () {
    const dir = path.join(sharedTmp(), 'planted');
    await plant({ path: dir, mode: 0o777 });
    assert.equal(await listenResult({ dir }), 'EACCES');
    assert.equal(await connectOutcome({ port: 'squat', dir }), 'EACCES');
    assert.deepEqual(fs.readdirSync(dir), [], 'a socket was created in the planted directory');
  });

  it('refuses a directory of another user even when it is not writable by others', async function () {
    const dir = path.join(sharedTmp(), 'planted');
    await plant({ path: dir, mode: 0o755 });
    assert.equal(await listenResult({ dir }), 'EACCES');
  });

  it('never follows a symlink planted as the directory', async function () {
    const tmp = sharedTmp();
    const ours = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-ours-'));
    const dir = path.join(tmp, 'link');
    await plant({ path: dir, symlinkTo: ours });
    assert.equal(await listenResult({ dir }), 'EACCES');
    assert.equal(await connectOutcome({ port: 'squat', dir }), 'EACCES');
    assert.deepEqual(fs.readdirSync(ours), []);
  });

  it('refuses a default <tmpdir>/xenring-<uid> planted in advance', async function () {
    const tmp = sharedTmp();
    await plant({ path: path.join(tmp, `xenring-${process.getuid()}`), mode: 0o777 });
    const keys = ['XENRING_DIR', 'XDG_RUNTIME_DIR', 'TMPDIR'];
    const saved = keys.map((k) => process.env[k]);
    delete process.env.XENRING_DIR;
    delete process.env.XDG_RUNTIME_DIR;
    try {
      // A client first under a TMPDIR of ours (nothing listens there), then
      // under the planted one: it must look in the new TMPDIR (the tmpdir is
      // cached per TMPDIR/TMP/TEMP), not reuse the directory it checked before.
      process.env.TMPDIR = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-ours-'));
      assert.equal(await connectOutcome({ port: 'squat' }), 'ECONNREFUSED');
      process.env.TMPDIR = tmp;
      assert.equal(await listenResult({}), 'EACCES');
      assert.equal(await connectOutcome({ port: 'squat' }), 'EACCES');
    } finally {
      keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
    }
  });

  it('refuses our own directory when group or others may write it', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-ours-'));
    fs.chmodSync(dir, 0o770);
    assert.equal(await listenResult({ dir }), 'EACCES');
    assert.equal(await connectOutcome({ port: 'squat', dir }), 'EACCES');
  });

  it('creates a missing directory 0700 and the socket 0600', async function () {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-ours-')), 'fresh');
    const server = xenring.createServer();
    server.listen({ port: 'owner-only', dir });
    await once(server, 'listening');
    try {
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      assert.equal(fs.statSync(path.join(dir, 'owner-only.sock')).mode & 0o777, 0o600);
    } finally {
      server.close();
    }
  });
});
