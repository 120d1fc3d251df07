'use strict';
// RegionExchange (lib/transports/local_regions.ts) on real SEQPACKET socket
// pairs, for what the kernel does around an honest peer's REGION: a peer
// that closed with our own REGION unread (ECONNRESET pending before its
// queued records), no free fd for the region (the kernel drops it), and a
// REGION that comes as we close (drained, never mapped).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { native, closeQuietly } = require('../../dist/native');
const { RegionExchange } = require('../../dist/transports/local_regions');
const { createLocalRegion } = require('../../dist/pool/pool_link');
const { poolNative } = require('../../dist/pool/native_pool');
const hs = require('../../dist/transports/local_handshake');
const { countFds } = require('../helpers/fixtures');

const POOL = 1 << 20;

describe('pool: a region handed over on the rendezvous socket (real sockets)', function () {
  let dir;
  const open = [];
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-regions-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterEach(() => open.splice(0).forEach(closeQuietly));

  /** A connected pair: { ours, peer } (fds, closed after the test unless closed by it). */
  function pair(name) {
    const p = path.join(dir, name);
    const listener = native.unixListen(p, 4);
    const peer = native.unixConnect(p);
    let ours = -1;
    for (let i = 0; i < 100 && ours < 0; i++) ours = native.unixAccept(listener);
    native.closeFd(listener);
    open.push(ours, peer);
    return { ours, peer };
  }

  /** A region made as a peer makes it, sent in a REGION message on `fd`; its mapping closed, its memfd too. */
  function sendRegion(fd) {
    const r = createLocalRegion(POOL);
    native.sendMessage(fd, hs.buildRegion(POOL), [r.fd]);
    r.mapping.close();
    native.closeFd(r.fd);
  }

  it('a peer that closed with our REGION unread: its own, queued before the close, is still taken', () => {
    const { ours, peer } = pair('reset.sock');
    sendRegion(ours); // ours, which the peer never reads
    sendRegion(peer); // the peer's: REGION, (OPENED, a payload, fin), then it closes
    native.closeFd(peer);
    open.splice(open.indexOf(peer), 1);
    const ex = new RegionExchange(ours, POOL, POOL);
    const regionsBefore = poolNative.poolRegionsAlive();
    const mapping = ex.takePeer(); // our receiver opening on its OPENED bit
    assert.equal(mapping.length, POOL + 4096);
    assert.equal(poolNative.poolRegionsAlive(), regionsBefore + 1);
    assert.equal(ex.read(), true, 'then the end of file');
    mapping.close();
    ex.close();
  });

  it('no free fd for the region: EMFILE, not a protocol error', function () {
    const { ours, peer } = pair('emfile.sock');
    sendRegion(peer);
    const ex = new RegionExchange(ours, POOL, POOL);
    const held = [];
    let err = null;
    try {
      try {
        for (;;) held.push(fs.openSync('/dev/null', 'r'));
      } catch {
        /* the fd table is full */
      }
      try {
        ex.read();
      } catch (e) {
        err = e;
      }
    } finally {
      held.forEach((fd) => fs.closeSync(fd));
    }
    assert.ok(held.length > 0);
    assert.equal(err?.code, 'EMFILE', err?.message);
    ex.close();
  });

  it('a REGION that comes as we close is drained, never mapped; the end of file stays readable', () => {
    const fdsBefore = countFds();
    const { ours, peer } = pair('drain.sock');
    sendRegion(peer);
    native.closeFd(peer);
    open.splice(open.indexOf(peer), 1);
    const ex = new RegionExchange(ours, POOL, POOL);
    const regionsBefore = poolNative.poolRegionsAlive();
    ex.drain();
    ex.close();
    assert.equal(poolNative.poolRegionsAlive(), regionsBefore);
    // What local_recycle's peerClosed() reads next: EOF, twice.
    for (let i = 0; i < 2; i++) assert.equal(native.recvMessage(ours)?.data.length, 0);
    native.closeFd(ours);
    open.splice(open.indexOf(ours), 1);
    assert.equal(countFds(), fdsBefore, 'the region\'s fd was closed');
  });
});
