'use strict';
// Resource exhaustion during a Xen accept (issue 12): out of fds (EMFILE),
// grants (ENOSPC), or a store that answers ENOMEM/EAGAIN. As net's server
// under EMFILE, the listener stays up and a waiting client is not left to
// its connect timeout: it is refused at once with the code when its vchan
// cannot be made, and served once a passing failure is over. As the local
// listener (which backs off on EMFILE), no Server 'error' is emitted.
const assert = require('node:assert');
const path = require('node:path');
const { listen, connect, setup, until, NOTHING_HELD, root } = require('./helpers');
const xenring = require(root);
const { registerTransport, resolveTransport } = require(path.join(root, 'transports', 'registry.js'));
// What the tests replace, put back after each (the registry's own on-demand 'xen').
const registeredXen = resolveTransport('xen');

const coded = (code) => Object.assign(new Error(`${code} (injected)`), { code });

describe('xen (fake host): accept under resource exhaustion', function () {
  this.timeout(20000);
  let env;
  beforeEach(() => {
    env = setup();
  });
  afterEach(() => env.host.close());

  it('out of fds for the event channel (EMFILE): the client is refused at once with EMFILE, the listener serves the next one', async () => {
    const { host, d0, t0, t5 } = env;
    const l = await listen(t0, { port: 'fds' });
    const real = d0.xen.evtchnOpen;
    d0.xen.evtchnOpen = () => {
      throw coded('EMFILE');
    };
    const t = Date.now();
    await assert.rejects(connect(t5, { port: 'fds', domid: 0, timeout: 8000 }), { code: 'EMFILE' });
    assert.ok(Date.now() - t < 4000, `refused promptly (${Date.now() - t} ms), not by the timeout`);
    d0.xen.evtchnOpen = real;
    const c = await connect(t5, { port: 'fds', domid: 0 });
    const s = await l.nextLink();
    c.release();
    s.release();
    l.close();
    await until(() => host.held().grants === 0, 2000, 'grants freed');
    assert.deepStrictEqual(host.held(), NOTHING_HELD);
  });

  for (const code of ['ENOMEM', 'EAGAIN']) {
    it(`a store that answers ${code} while the listener reads a request: the client is still served (retried after a pause, not forgotten)`, async () => {
      const { host, t0, t5 } = env;
      const l = await listen(t0, { port: 'busy' });
      host.xs.inject({ op: 'get_perms', domid: 0, path: /\/xenring\/busy\/5-/, code, times: 3 });
      const t = Date.now();
      const c = await connect(t5, { port: 'busy', domid: 0, timeout: 8000 });
      assert.ok(Date.now() - t < 4000, `served in ${Date.now() - t} ms`);
      assert.strictEqual(host.xs.faults[0].times, 0, 'the failures happened');
      const s = await l.nextLink();
      c.release();
      s.release();
      l.close();
    });
  }

  it('a listing that fails (ENOMEM) is retried: a client that arrived meanwhile is served without another change', async () => {
    const { host, t0, t5 } = env;
    const l = await listen(t0, { port: 'ls' });
    host.xs.inject({ op: 'directory_part', domid: 0, path: /\/xenring\/ls$/, code: 'ENOMEM', times: 2 });
    const c = await connect(t5, { port: 'ls', domid: 0, timeout: 8000 });
    const s = await l.nextLink();
    assert.strictEqual(host.xs.faults[0].times, 0);
    c.release();
    s.release();
    l.close();
  });

  it("a Server whose accepts fail with EMFILE and ENOSPC keeps listening, emits no 'error', and its clients get the code", async () => {
    const { d0, host } = env;
    registerTransport({ name: 'xen', listen: env.t0.listen, connect: env.t5.connect });
    try {
      const errors = [];
      const server = xenring.createServer((sock) => sock.end('ok'));
      server.on('error', (e) => errors.push(e));
      await new Promise((r) => server.listen({ transport: 'xen', port: 'srv' }, r));
      const attempt = () =>
        new Promise((resolve) => {
          const c = xenring.connect({ transport: 'xen', port: 'srv', domid: 0 });
          let text = '';
          c.on('data', (d) => (text += d));
          c.on('error', (e) => resolve(e.code));
          c.on('close', () => resolve(text));
        });
      const real = d0.xen.evtchnOpen;
      d0.xen.evtchnOpen = () => {
        throw coded('EMFILE');
      };
      assert.strictEqual(await attempt(), 'EMFILE');
      d0.xen.evtchnOpen = real;
      host.faults.gntShareError = 'ENOSPC';
      assert.strictEqual(await attempt(), 'ENOSPC');
      host.faults.gntShareError = null;
      assert.strictEqual(await attempt(), 'ok');
      assert.strictEqual(server.listening, true);
      assert.deepStrictEqual(errors, []);
      await new Promise((r) => server.close(r));
    } finally {
      registerTransport(registeredXen);
    }
  });
});
