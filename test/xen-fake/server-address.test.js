'use strict';
// server.address() on `transport: 'xen'` right after listen(), as net's
// (which has bound by the time listen() returns): the port at once (a free
// one picked for 0) and the domain id as soon as it is known (dom0 at once,
// a guest after its first xenstore use); null again after close() and after
// a failed listen. Fake host: servers are domain 0, sockets domain 5.
const assert = require('node:assert');
const path = require('node:path');
const { setup, root } = require('./helpers');
const xenring = require(root);
const { registerTransport } = require(path.join(root, 'transports', 'registry.js'));
const { xenTransport } = require(path.join(root, 'transports', 'xen', 'transport.js'));

describe('xen (fake host): server.address() right after listen()', function () {
  this.timeout(20000);
  let env;
  beforeEach(() => {
    env = setup();
    registerTransport({ name: 'xen', listen: env.t0.listen, connect: env.t5.connect });
  });
  afterEach(() => {
    registerTransport(xenTransport);
    env.host.close();
  });

  const closed = (server) => new Promise((r) => server.close(r));

  it('dom0 (knows its id): the address is there on return, named and numbered ports, and is the one it listens on', async () => {
    env.d0.knownDomid = () => 0; // what /proc/xen/capabilities tells dom0
    const named = xenring.createServer();
    named.listen({ transport: 'xen', port: 'svc' });
    assert.deepStrictEqual(named.address(), { address: '0', family: 'xen', port: 'svc' });
    assert.strictEqual(named.listening, false, "accepting only from 'listening' (xenstore is being set up)");
    await new Promise((r) => named.once('listening', r));
    assert.deepStrictEqual(named.address(), { address: '0', family: 'xen', port: 'svc' });

    const any = xenring.createServer((s) => s.end('hi'));
    any.listen({ transport: 'xen', port: 0 });
    const early = any.address();
    assert.strictEqual(early.family, 'xen');
    assert.strictEqual(early.address, '0');
    assert.ok(Number.isInteger(early.port) && early.port >= 49152 && early.port <= 65535, `ephemeral port ${early.port}`);
    await new Promise((r) => any.once('listening', r));
    assert.deepStrictEqual(any.address(), early, 'listens on the port it reported');
    // A client given that port reaches this server.
    const got = await new Promise((resolve, reject) => {
      const c = xenring.connect({ transport: 'xen', port: early.port, domid: 0 });
      let text = '';
      c.setEncoding('utf8');
      c.on('data', (d) => (text += d));
      c.on('error', reject);
      c.on('end', () => resolve(text));
    });
    assert.strictEqual(got, 'hi');
    await closed(named);
    await closed(any);
  });

  it('a guest: null until its domain id is known (first xenstore use), then at once for later listens', async () => {
    const first = xenring.createServer();
    first.listen({ transport: 'xen', port: 'g1' });
    assert.strictEqual(first.address(), null, 'no domain id yet, and no blocking read to learn it');
    await new Promise((r) => first.once('listening', r));
    assert.deepStrictEqual(first.address(), { address: '0', family: 'xen', port: 'g1' });
    const second = xenring.createServer();
    second.listen({ transport: 'xen', port: 'g2' });
    assert.deepStrictEqual(second.address(), { address: '0', family: 'xen', port: 'g2' });
    await new Promise((r) => second.once('listening', r));
    await closed(first);
    await closed(second);
  });

  it('null after close() before listening, and after a listen that fails (EADDRINUSE)', async () => {
    env.d0.knownDomid = () => 0;
    const s = xenring.createServer();
    s.listen({ transport: 'xen', port: 'gone' });
    assert.ok(s.address());
    s.close();
    assert.strictEqual(s.address(), null);
    await new Promise((r) => s.once('close', r));

    const holder = xenring.createServer();
    await new Promise((r) => holder.listen({ transport: 'xen', port: 'taken' }, r));
    const dup = xenring.createServer();
    dup.listen({ transport: 'xen', port: 'taken' });
    assert.deepStrictEqual(dup.address(), { address: '0', family: 'xen', port: 'taken' });
    const err = await new Promise((r) => dup.once('error', r));
    assert.strictEqual(err.code, 'EADDRINUSE');
    assert.strictEqual(dup.address(), null);
    assert.strictEqual(dup.listening, false);
    await closed(holder);
  });
});
