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
/** Where the Xen devices are missing (CI, this machine) a Xen connect fails on opening them. */
const xenHere = require(path.join(ROOT, 'dist', 'transports', 'xen', 'native_xen.js')).devicesUsable();
const expectedCode = (code) => (xenHere ? assert.match(String(code), /^E[A-Z]+$/) : assert.strictEqual(code, 'ENOENT'));

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
    // Without Xen: the device's own error; in a Xen lab, a refusal (nothing listens on port 5).
    expectedCode(out.code);
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
    expectedCode(out.code);
  });

  it("the registry's 'xen' hands connect() and listen() their arguments and returns what the transport returns", () => {
    const out = inFreshProcess(`
      const { xenTransport } = require(${JSON.stringify(path.join(ROOT, 'dist', 'transports', 'xen', 'transport.js'))});
      const { resolveTransport } = require(${JSON.stringify(path.join(ROOT, 'dist', 'transports', 'registry.js'))});
      const calls = [];
      const listened = { listener: true };
      const connected = Promise.resolve('link');
      xenTransport.listen = (...args) => { calls.push(['listen', args]); return listened; };
      xenTransport.connect = (...args) => { calls.push(['connect', args]); return connected; };
      const xen = resolveTransport('xen');
      const req = { port: 7 }, onLink = () => {}, signal = new AbortController().signal, onError = () => {};
      const l = xen.listen(req, onLink, signal, onError);
      const c = xen.connect(req, signal);
      return {
        name: xen.name,
        sameListener: l === listened,
        sameConnect: c === connected,
        listenArgs: calls[0][0] === 'listen' && calls[0][1].length === 4 && calls[0][1][0] === req && calls[0][1][1] === onLink && calls[0][1][2] === signal && calls[0][1][3] === onError,
        connectArgs: calls[1][0] === 'connect' && calls[1][1].length === 2 && calls[1][1][0] === req && calls[1][1][1] === signal,
      };
    `);
    assert.deepStrictEqual(out, { name: 'xen', sameListener: true, sameConnect: true, listenArgs: true, connectArgs: true });
  });
});
