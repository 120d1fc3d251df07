'use strict';
// The Xen transport is loaded only when a process uses it: require('xenring'),
// a local connection and the default-transport probe leave its modules
// unloaded. Each case runs in a fresh Node process, which reports what it had
// loaded.
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');

/** Runs `body` (a script with `xenring` in scope) in a new process; resolves its JSON output. */
function inFreshProcess(body) {
  const script = `
    const xenring = require(${JSON.stringify(ROOT)});
    const loaded = () => Object.keys(require.cache).map((k) => require('node:path').relative(${JSON.stringify(ROOT)}, k)).filter((k) => k.startsWith('dist/'));
    (async () => { ${body} })().then((out) => { process.stdout.write(JSON.stringify(out)); process.exit(0); }, (err) => { console.error(err); process.exit(1); });
  `;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 }));
}

const xenFiles = (files) => files.filter((f) => f.startsWith('dist/transports/xen/') && f !== 'dist/transports/xen/native_xen.js');

describe('the Xen transport is loaded on demand', function () {
  this.timeout(60_000);

  it('require() does not load the Xen transport', () => {
    const out = inFreshProcess('return { files: loaded() };');
    assert.deepStrictEqual(xenFiles(out.files), []);
    assert.ok(out.files.includes('dist/transports/local.js'), 'the local transport is loaded');
  });

  it('a connection over the default transport (no Xen devices here) moves bytes without loading it', function () {
    const out = inFreshProcess(`
      const server = xenring.createServer((s) => s.pipe(s));
      await new Promise((r) => server.listen(0, r));
      const sock = xenring.connect({ port: server.address().port });
      const got = await new Promise((resolve, reject) => {
        const parts = [];
        sock.on('data', (d) => { parts.push(d); if (Buffer.concat(parts).length === 5) sock.end(); });
        sock.on('end', () => resolve(Buffer.concat(parts).toString()));
        sock.on('error', reject);
        sock.write('hello');
      });
      server.close();
      return { got, files: loaded() };
    `);
    assert.strictEqual(out.got, 'hello');
    // Only where the devices are usable is 'xen' the default (then loaded by this connection).
    const xenHere = require(ROOT + '/dist/transports/xen/native_xen').devicesUsable();
    assert.deepStrictEqual(xenFiles(out.files).length > 0, xenHere);
  });

  it("naming transport 'xen' loads it, and its errors are the transport's own", () => {
    const out = inFreshProcess(`
      const before = loaded();
      const sock = xenring.connect({ transport: 'xen', port: 5, domid: 0 });
      const err = await new Promise((resolve) => { sock.on('error', resolve); sock.on('connect', () => resolve(null)); });
      if (err === null) sock.destroy();
      return { before: before, after: loaded(), code: err && err.code };
    `);
    assert.deepStrictEqual(xenFiles(out.before), []);
    assert.ok(out.after.includes('dist/transports/xen/handshake.js'), 'loaded by the connect');
    assert.ok(out.after.includes('dist/transports/xen/transport.js'));
    // Without Xen: the device's own error (ENOENT, EACCES); in a Xen lab, a refusal (nothing listens on port 5).
    assert.match(String(out.code), /^E[A-Z]+$/);
  });

  it('vchanClient() loads it too, and fails as the transport does without Xen', () => {
    const out = inFreshProcess(`
      const before = loaded();
      const sock = xenring.vchanClient({ domid: 0, path: '/local/domain/0/data/vchan/x', connectTimeout: 2000 });
      const err = await new Promise((resolve) => { sock.on('error', resolve); sock.on('connect', () => resolve(null)); });
      if (err === null) sock.destroy();
      return { before: before, after: loaded(), code: err && err.code };
    `);
    assert.deepStrictEqual(xenFiles(out.before), []);
    assert.ok(out.after.includes('dist/transports/xen/handshake.js'));
    assert.match(String(out.code), /^E[A-Z]+$/);
  });
});
