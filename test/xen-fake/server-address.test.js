'use strict';
// server.address() on `transport: 'xen'` right after listen(), as net's
// (which has bound by the time listen() returns): the port at once (a free
// one picked for 0) and the domain id (dom0 from /proc/xen, a guest by one
// bounded synchronous xenstore read); null again after close() and after
// a failed listen. Fake host: servers are domain 0, sockets domain 5.
const assert = require('node:assert');
const path = require('node:path');
const { setup, root } = require('./helpers');
const xenring = require(root);
const { registerTransport, resolveTransport } = require(path.join(root, 'transports', 'registry.js'));
// What the tests replace, put back after each (the registry's own on-demand 'xen').
const registeredXen = resolveTransport('xen');
const { createXenTransport } = require(path.join(root, 'transports', 'xen', 'transport.js'));
const { readOwnDomidSync } = require(path.join(root, 'transports', 'xen', 'own_domid.js'));
const { native } = require(path.join(root, 'native.js'));
const { fork } = require('node:child_process');
const { once } = require('node:events');
const fs = require('node:fs');
const os = require('node:os');

/** One xs_wire message: type, req_id, payload. */
function frame(type, id, payload) {
  const body = Buffer.from(payload, 'latin1');
  const h = Buffer.alloc(16);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(id, 4);
  h.writeUInt32LE(body.length, 12);
  return Buffer.concat([h, body]);
}

describe('xen (fake host): server.address() right after listen()', function () {
  this.timeout(20000);
  let env;
  beforeEach(() => {
    env = setup();
    registerTransport({ name: 'xen', listen: env.t0.listen, connect: env.t5.connect });
  });
  afterEach(() => {
    registerTransport(registeredXen);
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

  it('a guest: listen() reads nothing; address() right after it reads the id from xenstore once, synchronously (the store answers from another process)', async () => {
    // The guest's xenstore is a xenstored in another process, so it can answer while listen() waits.
    const child = fork(path.join(__dirname, 'xenstored_process.js'), ['7'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const [{ sock }] = await once(child, 'message');
      const guest = { ...env.d5, xen: { ...env.d5.xen, xenbusOpen: () => native.unixConnect(sock) } };
      let reads = 0;
      guest.knownDomid = () => (reads++, readOwnDomidSync(guest, 2000));
      registerTransport({ name: 'xen', listen: createXenTransport(guest).listen, connect: env.t5.connect });
      const s = xenring.createServer();
      s.listen({ transport: 'xen', port: 'g1' });
      assert.strictEqual(reads, 0, 'listen() does not wait for the store');
      assert.deepStrictEqual(s.address(), { address: '7', family: 'xen', port: 'g1' });
      assert.strictEqual(reads, 1);
      assert.deepStrictEqual(s.address(), { address: '7', family: 'xen', port: 'g1' });
      assert.strictEqual(reads, 1, 'the id is kept');
      await new Promise((r) => s.once('listening', r));
      assert.deepStrictEqual(s.address(), { address: '7', family: 'xen', port: 'g1' });
      // Later listens ask the client, which knows the id by now: no second synchronous read.
      const again = xenring.createServer();
      again.listen({ transport: 'xen', port: 'g2' });
      assert.deepStrictEqual(again.address(), { address: '7', family: 'xen', port: 'g2' });
      assert.strictEqual(reads, 1);
      await new Promise((r) => again.once('listening', r));
      await closed(s);
      await closed(again);
    } finally {
      child.disconnect();
    }
  });

  it('a guest whose store does not answer in time: address() returns null after the bound, then the id once listening', async () => {
    // The store is in this process: it cannot answer while address() waits, as a stuck xenstored would not.
    let reads = 0;
    env.d0.knownDomid = () => (reads++, readOwnDomidSync(env.d0, 50));
    const s = xenring.createServer();
    s.listen({ transport: 'xen', port: 'g3' });
    assert.strictEqual(reads, 0, 'listen() does not wait for the store');
    const t0 = Date.now();
    assert.strictEqual(s.address(), null);
    const waited = Date.now() - t0;
    assert.strictEqual(reads, 1);
    assert.ok(waited >= 45 && waited < 2000, `address() waited ${waited} ms for a 50 ms bound`);
    await new Promise((r) => s.once('listening', r));
    assert.deepStrictEqual(s.address(), { address: '0', family: 'xen', port: 'g3' });
    await closed(s);
    // Nothing of the synchronous read is left: its fd went with it.
    assert.strictEqual(readOwnDomidSync({ ...env.d0, xen: { ...env.d0.xen, xenbusOpen: () => { throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' }); } } }), null, 'no device: null, no throw');
  });

  it('readOwnDomidSync takes nothing but a well-formed reply to its own request: anything else is null, never a wrong id', async () => {
    const child = fork(path.join(__dirname, 'xenstored_process.js'), ['9'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const [{ sock }] = await once(child, 'message');
      const real = { ...env.d5, xen: { ...env.d5.xen, xenbusOpen: () => native.unixConnect(sock) } };
      assert.strictEqual(readOwnDomidSync(real, 2000), 9, 'positive control');
      for (const reply of [
        frame(2, 1, 'abc'), // not a number
        frame(2, 1, '070'), // leading zero
        frame(2, 1, '99999'), // above the largest domid
        frame(2, 2, '9'), // another request's reply
        frame(16, 1, 'EACCES\0'), // an error reply
        Buffer.alloc(8), // a short header, then nothing
      ]) {
        // A store that answers `reply` to anything: the other end of a connected socket.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xr-domid-'));
        const lfd = native.unixListen(path.join(dir, 's'), 1);
        const fake = {
          ...env.d5,
          xen: {
            ...env.d5.xen,
            xenbusOpen: () => {
              const a = native.unixConnect(path.join(dir, 's'));
              const b = native.unixAccept(lfd);
              fs.writeSync(b, reply);
              ends.push(b);
              return a;
            },
          },
        };
        const ends = [];
        assert.strictEqual(readOwnDomidSync(fake, 50), null, `reply ${JSON.stringify(reply.toString('latin1'))}`);
        assert.strictEqual(ends.length, 1);
        ends.forEach((fd) => native.closeFd(fd));
        native.closeFd(lfd);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      child.disconnect();
    }
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
