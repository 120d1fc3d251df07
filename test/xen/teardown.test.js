'use strict';
// issue 12 on real Xen: a worker terminated with a live Xen link (and its
// pool) leaks nothing. The environment's teardown closes its event-channel
// and xenbus fds, and its grant mappings go with its objects, so the server
// sees the client gone and this process' fds and mappings are back where
// they started.
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { ownDomidOrSkip, waitPeerState, root } = require('./helpers');
const { xenMappings, settleMappings, gc } = require('./pool_helpers');
const { xenTransport } = require(path.join(root, 'dist', 'transports', 'xen', 'transport.js'));

/** Open fds of this process on each Xen device. */
function xenFds() {
  const out = { evtchn: 0, xenbus: 0, gntdev: 0, gntalloc: 0 };
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    const m = /^\/dev\/xen\/(evtchn|xenbus|gntdev|gntalloc)$/.exec(target);
    if (m) out[m[1]]++;
  }
  return out;
}

describe('xen lab: worker.terminate() with a live Xen link (issue 12)', function () {
  this.timeout(120000);
  let self;
  before(async function () {
    self = await ownDomidOrSkip(this);
  });

  it('closes the worker’s event channel and xenbus fds and unmaps its pages; the server sees the client gone', async () => {
    let server = null;
    const l = await Promise.resolve(xenTransport.listen({ port: 'teardown', pool: { size: 64 * 1024, views: undefined } }, (k) => (server = k), new AbortController().signal));
    // The listener's own xenbus connection is open now: count from here, once
    // the xenstore client's extra fds have lingered out (100 ms idle).
    await new Promise((r) => setTimeout(r, 300));
    const fds0 = xenFds();
    const maps0 = xenMappings();
    const worker = new Worker(path.join(__dirname, 'worker_peer.js'), { workerData: { port: 'teardown', domid: self } });
    const msg = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.ok(msg.ready, msg.error);
    assert.strictEqual(msg.pool, true, 'the worker has a pool');
    for (const end = Date.now() + 30000; server === null; ) {
      if (Date.now() > end) throw new Error('no accepted link');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(xenFds().evtchn > fds0.evtchn, 'the worker holds an event channel fd');
    await worker.terminate();
    await waitPeerState(server, 0, 30000); // the kernel's unmap notify: the worker's mapping is gone
    server.release();
    l.close();
    await new Promise((r) => setTimeout(r, 300));
    // xenbus: this process' xenstore client may have closed idle fds of its
    // own meanwhile, so at most what it had; every other device exactly.
    const fds = xenFds();
    assert.ok(fds.xenbus <= fds0.xenbus, `xenbus fds ${fds0.xenbus} -> ${fds.xenbus}`);
    assert.deepStrictEqual({ ...fds, xenbus: 0 }, { ...fds0, xenbus: 0 });
    assert.deepStrictEqual(await settleMappings(maps0), maps0);
  });

  // The device bindings map pages, then make the JS object that owns them.
  // Once a worker is being terminated those N-API calls fail; gntShare()
  // built its refs array before the mapping had an owner, and Adopt() could
  // fail after New(), so a grant mapping (with its grants) stayed mapped.
  it('a worker terminated inside gntShare / gntMap / gntSharePool / gntMapPool, 40 times: none of its grant mappings stay', async function () {
    // A worker takes seconds to start on the lab's emulated CPU. Before the
    // fix 8 of 40 terminations each left one gntalloc mapping.
    this.timeout(300000);
    const start = xenMappings();
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { xen } = require(workerData.nativeXen);
      const self = workerData.self;
      parentPort.postMessage('go');
      for (;;) {
        const s = xen.gntShare(self, 4, true, -1, -1);
        const m = xen.gntMap(self, s.refs, true, -1, -1);
        m.unmap();
        s.mapping.unmap();
        const ps = xen.gntSharePool(self, 4);
        const pm = xen.gntMapPool(self, ps.refs);
        pm.close();
        ps.mapping.close();
      }`;
    const left = [];
    for (let i = 0; i < 40; i++) {
      await new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { self, nativeXen: path.join(root, 'dist', 'transports', 'xen', 'native_xen.js') } });
        w.once('message', () => setTimeout(() => w.terminate(), 2 + (i % 9)));
        w.once('error', reject);
        w.once('exit', resolve);
      });
      // The worker has exited: every finalizer of its environment has run,
      // so its mappings are gone now or never.
      gc();
      const now = xenMappings();
      if (now.gntalloc !== start.gntalloc || now.gntdev !== start.gntdev) left.push({ round: i, ...now });
    }
    assert.deepStrictEqual(left, [], `rounds after which grant mappings stayed (start ${JSON.stringify(start)})`);
  });
});
