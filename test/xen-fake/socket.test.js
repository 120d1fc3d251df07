'use strict';
// Socket and Server over `transport: 'xen'` on the fake Xen host: the stream
// layer's view of the accept protocol (bytes both ways, refusals, and a
// listener that goes deaf reported as the Server's 'error').
const assert = require('node:assert');
const path = require('node:path');
const { setup, until, root } = require('./helpers');
const xenring = require(root);
const { registerTransport, resolveTransport } = require(path.join(root, 'transports', 'registry.js'));
// What the tests replace, put back after each (the registry's own on-demand 'xen').
const registeredXen = resolveTransport('xen');

describe('xen (fake host): Socket and Server', function () {
  this.timeout(20000);
  let env;
  beforeEach(() => {
    env = setup();
    // Servers listen as domain 0, sockets connect as domain 5.
    registerTransport({ name: 'xen', listen: env.t0.listen, connect: env.t5.connect });
  });
  afterEach(() => {
    registerTransport(registeredXen);
    env.host.close();
  });

  function listening(server, opts) {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ transport: 'xen', ...opts }, () => {
        server.off('error', reject);
        resolve(server.address());
      });
    });
  }

  it('echoes 2 MiB through a Server (every byte checked), then frees everything', async () => {
    const server = xenring.createServer((s) => s.pipe(s));
    const addr = await listening(server, { port: 'echo' });
    assert.deepStrictEqual(addr, { address: '0', family: 'xen', port: 'echo' });
    const data = Buffer.alloc(2 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
    const got = await new Promise((resolve, reject) => {
      const c = xenring.connect({ transport: 'xen', port: 'echo', domid: 0 });
      const parts = [];
      c.on('data', (d) => parts.push(d));
      c.on('error', reject);
      c.on('end', () => resolve(Buffer.concat(parts)));
      c.end(data);
    });
    assert.ok(got.equals(data), 'echo differs');
    await new Promise((r) => server.close(r));
    await until(() => env.host.held().grants === 0, 3000, 'grants freed');
    assert.deepStrictEqual(env.host.held(), { grants: 0, mappings: 0, ports: 0, evtchnFds: 0 });
  });

  it("a listener whose xenstore connection dies emits 'error' on the Server", async () => {
    const server = xenring.createServer(() => {});
    await listening(server, { port: 'deaf' });
    const err = await new Promise((resolve) => {
      server.once('error', resolve);
      env.host.xs.disconnect(0);
    });
    assert.ok(['ECONNRESET', 'EIO'].includes(err.code), err.code);
    await new Promise((r) => server.close(r));
  });

  it("an exception from a 'connection' handler reaches 'uncaughtException'; the accepted socket stays usable", async () => {
    const boom = new Error('boom');
    let accepted = null;
    const server = xenring.createServer((s) => {
      accepted = s;
      s.pipe(s);
      throw boom;
    });
    await listening(server, { port: 'throws' });
    // Mocha's own handler would fail the test: stand in for it meanwhile.
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const caught = new Promise((resolve) => process.once('uncaughtException', resolve));
    try {
      const c = xenring.connect({ transport: 'xen', port: 'throws', domid: 0 });
      assert.strictEqual(await Promise.race([caught, new Promise((r) => setTimeout(() => r('no uncaughtException in 5 s'), 5000))]), boom);
      const got = await new Promise((resolve, reject) => {
        const parts = [];
        c.on('data', (d) => parts.push(d));
        c.on('error', reject);
        c.on('end', () => resolve(Buffer.concat(parts).toString()));
        c.end('still echoed');
      });
      assert.strictEqual(got, 'still echoed');
      assert.ok(accepted, 'the handler ran');
    } finally {
      for (const l of saved) process.on('uncaughtException', l);
    }
    await new Promise((r) => server.close(r));
  });

  it('ECONNREFUSED for a port nobody listens on', async () => {
    const err = await new Promise((resolve) => xenring.connect({ transport: 'xen', port: 'none', domid: 0 }).once('error', resolve));
    assert.strictEqual(err.code, 'ECONNREFUSED');
  });
});
