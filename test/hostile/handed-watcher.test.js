'use strict';
// The client's handshake watcher on the rendezvous socket goes on as the
// connection's hang-up watcher (lib/transports/local.ts handWatcher,
// lib/ring/channel.ts). Whatever ends the connection around that hand-over
// (a ring refused as the channel attaches, a server gone right behind its
// ACCEPT, a socket destroyed at 'connect'), the watcher must be closed: a
// poll handle left running keeps the client's process alive for good. Each
// client is a real process that must exit on its own; the server is
// test/hostile/peer.py.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { hostilePeer } = require('./helpers');

let serial = 0;

/** A client process: connects to `port`, prints its outcome, then must exit on its own within 10 s. */
async function clientProcess(port, destroyAtConnect) {
  const script = `
    const xenring = require(${JSON.stringify(path.join(__dirname, '..', '..'))});
    const s = xenring.connect({ port: ${JSON.stringify(port)} });
    s.on('connect', () => { console.log('connect'); if (${destroyAtConnect}) s.destroy(); });
    s.on('error', (e) => console.log('error ' + e.code));
    s.on('close', () => console.log('close'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
  const [code, signal] = await once(child, 'exit');
  clearTimeout(timer);
  return { code, signal, lines: out.trim().split('\n') };
}

async function against(opts, destroyAtConnect = false) {
  const port = `handed-${process.pid}-${serial++}`;
  const peer = hostilePeer('server', { path: path.join(process.env.XENRING_DIR, `${port}.sock`), ...opts });
  assert.equal(await peer.line(), 'ready');
  try {
    return await clientProcess(port, destroyAtConnect);
  } finally {
    await peer.end();
  }
}

describe('hostile peer: the handshake watcher handed to the connection', function () {
  this.timeout(30000);

  it('a ring refused as the channel attaches (EPROTO): the client process exits on its own', async function () {
    const r = await against({ reply: 'bad-live' });
    assert.equal(r.signal, null, `killed after 10 s: a watcher kept it alive (${r.lines})`);
    assert.deepEqual(r.lines, ['error EPROTO', 'close']);
  });

  it('a server gone right behind its ACCEPT: the client sees the hang-up and exits on its own', async function () {
    const r = await against({ reply: 'honest', hangupAfterAccept: true });
    assert.equal(r.signal, null, `killed after 10 s: a watcher kept it alive (${r.lines})`);
    assert.equal(r.lines.at(-1), 'close', String(r.lines));
    assert.ok(r.lines.some((l) => l === 'connect' || l.startsWith('error ')), String(r.lines));
  });

  it('a socket destroyed at connect (the server still there): the client process exits on its own', async function () {
    const r = await against({ reply: 'honest' }, true);
    assert.equal(r.signal, null, `killed after 10 s: a watcher kept it alive (${r.lines})`);
    assert.deepEqual(r.lines, ['connect', 'close']);
  });
});
