'use strict';
// Recycling a server's pool region for the next connection from the same
// client process (lib/transports/local_recycle.ts, issue 14), between real
// processes. The server (this process) keeps the memfd of its own region open
// for the connection's life: its inode, read through /proc/self/fd, shows
// which region a connection got. Every stream is the i % 251 pattern, checked
// byte by byte both ways, pool payloads and ring bytes interleaved.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const { once } = require('node:events');
const xenring = require('../..');

const recycle = require('../../dist/transports/local_recycle');
const { PatternChecker } = require('../helpers/pattern');
const { countFds, withoutKeptLinks } = require('../helpers/fixtures');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { forkPeer } = require('./peer_process');
const { withGatesOpen } = require('./gates');
const { writePlan } = require('./plan');

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
// Pool payloads (copied in at >= 256 KiB, or loaned) and ring bytes.
const PLAN = [[300007, 'buf'], [11, 'buf'], [500009, 'alloc'], [70001, 'buf'], [1 << 20, 'alloc'], [5, 'buf']];
const PLAN_BYTES = PLAN.reduce((n, [size]) => n + size, 0);

/** Inodes of the pool memfds this process holds open (its own regions: live connections and kept ones). */
function ownRegionInodes() {
  const out = new Set();
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).includes('xenring-pool')) out.add(fs.statSync(`/proc/self/fd/${fd}`).ino);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/**
 * A server that checks each client's stream, answers with PLAN (once the
 * client ended, or `atOnce`), and records the own-region inodes seen once
 * each connection's reply is written (regions on demand: a connection's
 * region is made, or the kept one taken, when it first sends by reference).
 */
async function server(atOnce = false, replyPlan = PLAN, endAfterReply = true) {
  const seen = [];
  const results = [];
  const sentByRef = []; // per connection, once its reply is written
  const srv = xenring.createServer((s) => {
    const i = seen.length;
    seen.push(null);
    const checker = new PatternChecker();
    s.on('data', (d) => checker.update(d));
    const reply = () =>
      writePlan(s, typeof replyPlan === 'function' ? replyPlan(i) : replyPlan).then(
        () => {
          seen[i] = [...ownRegionInodes()];
          sentByRef[i] = s.poolStats().sentByRef;
          if (endAfterReply) s.end();
        },
        () => {},
      );
    if (atOnce) reply();
    s.on('end', () => {
      results.push({ ok: checker.ok, bytes: checker.received });
      if (!atOnce) reply();
    });
    s.on('error', () => {});
  });
  srv.listen({ port: 0 });
  await once(srv, 'listening');
  return { srv, port: srv.address().port, seen, results, sentByRef };
}

async function runClient(port, rounds, extra = {}) {
  const p = forkPeer('reuse_client.js', { port, rounds, plan: PLAN, ...extra });
  const rs = [];
  for (let i = 0; i < rounds; i++) rs.push(await p.next('round'));
  const done = await p.next('done');
  await p.exited;
  return { rs, done };
}

function checkBytes(rs, results) {
  for (const r of rs) {
    assert.equal(r.sentBytes, PLAN_BYTES);
    assert.ok(r.ok, `client saw a bad byte in round ${r.i}`);
    assert.equal(r.bytes, PLAN_BYTES);
  }
  for (const r of results) {
    assert.ok(r.ok, 'server saw a bad byte');
    assert.equal(r.bytes, PLAN_BYTES);
  }
}

async function until(fn) {
  for (let i = 0; i < 1000 && !fn(); i++) await tick(10);
}

async function drained() {
  for (let i = 0; i < 400 && recycle.keptConnections() > 0; i++) await tick(10);
}

describe('pool: a server region recycled for the same client process', function () {
  // About connections made afresh: a reconnect would take its kept link.
  withoutKeptLinks();

  this.timeout(60000);
  beforeEach(drained); // regions kept by an earlier test are not this one's

  it('the key of a peer includes its start time', () => {
    assert.notEqual(recycle.peerKey(1000, 42, '100'), recycle.peerKey(1000, 42, '101'));
    assert.notEqual(recycle.peerKey(1000, 42, '100'), recycle.peerKey(1001, 42, '100'));
    const mine = recycle.processStartTime(process.pid);
    assert.match(mine, /^\d+$/);
    assert.equal(recycle.processStartTime(0x7ffffff0), null);
    // Our own process is never a peer to recycle for, nor another uid (an accepted socket of our own connection).
    const { native } = require('../../dist/native');
    const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-id-')), 's');
    const listener = native.unixListen(sock, 4);
    const client = native.unixConnect(sock);
    const conn = native.unixAccept(listener);
    try {
      const scope = recycle.openScope();
      assert.equal(recycle.peerIdentity({ pid: process.pid, uid: process.getuid() }, conn, scope), null);
      assert.equal(recycle.peerIdentity({ pid: process.ppid, uid: process.getuid() + 1 }, conn, scope), null);
      // The pidfd names the connecting process (here this one, alive); a process gone is never keyed.
      const pidfd = native.socketPeerPidfd(conn);
      assert.ok(pidfd >= 0, 'SO_PEERPIDFD (Linux 6.5+) on this host');
      assert.equal(native.pidfdAlive(pidfd), true);
      native.closeFd(pidfd);
    } finally {
      [conn, client, listener].forEach((fd) => native.closeFd(fd));
      fs.rmSync(path.dirname(sock), { recursive: true, force: true });
    }
  });

  it('a peer process is named by its pidfs inode: the same for two connections of one process, another for another process', async function () {
    const { native } = require('../../dist/native');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-id-'));
    const sock = path.join(dir, 's');
    const listener = native.unixListen(sock, 4);
    const self = native.unixConnect(sock);
    const fds = [listener, self];
    // A real other process: connects twice, then waits for its stdin to close.
    const child = spawn('python3', ['-c', `
import socket, sys
a = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); a.connect(sys.argv[1])
b = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); b.connect(sys.argv[1])
print('ok', flush=True); sys.stdin.read()`, sock], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await once(child.stdout, 'data');
      const mine = native.unixAccept(listener);
      const a = native.unixAccept(listener);
      const b = native.unixAccept(listener);
      fds.push(mine, a, b);
      const ownId = native.socketPeerProcessId(mine);
      if (ownId === null) {
        this.skip(); // reason: before Linux 6.9 pidfds are not pidfs; the /proc start time names the process instead
        return;
      }
      assert.match(ownId, /^\d+$/);
      assert.equal(native.socketPeerProcessId(a), native.socketPeerProcessId(b));
      assert.notEqual(native.socketPeerProcessId(a), ownId);
      const scope = recycle.openScope();
      const peer = native.socketPeerCred(a);
      assert.equal(peer.pid, child.pid);
      const ka = recycle.peerIdentity(peer, a, scope);
      const kb = recycle.peerIdentity(native.socketPeerCred(b), b, scope);
      assert.ok(ka !== null && kb !== null);
      assert.equal(ka.key, kb.key);
      assert.ok(ka.key.endsWith(`:p${native.socketPeerProcessId(a)}`), ka.key);
      recycle.closeScope(scope);
    } finally {
      child.stdin.end();
      await once(child, 'exit');
      fds.forEach((fd) => native.closeFd(fd));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reconnects from one process reuse the region; every byte checked both ways; a second process gets fresh memory', async () => {
    const fdsBefore = countFds();
    const { srv, port, seen, results } = await server();
    const rounds = 8;
    const a = await runClient(port, rounds);
    checkBytes(a.rs, results);
    // Each connection holds one own region; from the second on it is the first's.
    assert.equal(seen.length, rounds);
    for (const s of seen) assert.equal(s.length, 1, `own regions at a connection: ${s}`);
    const first = seen[0][0];
    for (let i = 1; i < rounds; i++) assert.equal(seen[i][0], first, `round ${i} got a fresh region`);
    // The ring too, kept with the region (the client maps the server's ring memfd: its inode).
    for (const r of a.rs) assert.equal(r.ringInodes.length, 1);
    assert.deepEqual(a.rs.map((r) => r.ringInodes[0]), a.rs.map(() => a.rs[0].ringInodes[0]), 'a round got a fresh ring');
    // Another process (same uid) right after, while the first's region is
    // kept (its fd still open here): fresh memory, never the first's.
    assert.equal(recycle.keptConnections(), 1);
    const b = await runClient(port, 2);
    checkBytes(b.rs, results);
    assert.equal(seen[rounds].length, 2, `own regions: ${seen[rounds]}`);
    assert.ok(seen[rounds].includes(first), "the first process's region, kept");
    const second = seen[rounds].find((ino) => ino !== first);
    assert.deepEqual(seen[rounds + 1].filter((ino) => ino !== first), [second], 'the second process reuses its own');
    srv.close();
    // Kept regions go after ~2 s unused: nothing left behind.
    await drained();
    assert.equal(recycle.keptConnections(), 0);
    assert.equal(ownRegionInodes().size, 0);
    for (let i = 0; i < 50 && countFds() > fdsBefore; i++) await tick(10);
    assert.ok(countFds() <= fdsBefore, `fds ${fdsBefore} -> ${countFds()}`);
  });

  it('a reconnect that never sends by reference leaves the kept region for the next one', async () => {
    const fdsBefore = countFds();
    // The server's replies: by reference, then ring bytes only, then by reference again.
    const SMALL = [[11, 'buf'], [70001, 'buf']];
    const plans = [PLAN, SMALL, PLAN];
    const { srv, port, seen } = await server(false, (i) => plans[i]);
    const p = forkPeer('reuse_client.js', { port, rounds: 3, plan: PLAN });
    const rs = [];
    for (let i = 0; i < 3; i++) rs.push(await p.next('round'));
    await p.next('done');
    await p.exited;
    assert.deepEqual(rs.map((r) => r.ok), [true, true, true]);
    assert.deepEqual(rs.map((r) => r.bytes), [PLAN_BYTES, 70012, PLAN_BYTES]);
    const first = seen[0][0];
    assert.deepEqual(seen[1], [first], 'the kept region is held, unused, through the second connection');
    assert.deepEqual(seen[2], [first], 'the third connection got the first one\'s region');
    srv.close();
    assert.equal(recycle.keptConnections(), 0);
    assert.equal(ownRegionInodes().size, 0);
    for (let i = 0; i < 50 && countFds() > fdsBefore; i++) await tick(10);
    assert.ok(countFds() <= fdsBefore, `fds ${fdsBefore} -> ${countFds()}`);
  });

  it('a reused region keeps its written pages: an ordinary Buffer goes by reference from the first write, where a fresh region sends it through the ring', async () => {
    // A fresh region's pages are allocated at their first write (~1 ms per
    // MiB here): an ordinary Buffer on a new connection takes the warm ring
    // instead. The pages a reused region's last connection wrote are warm.
    const MIB = [[1 << 20, 'buf']];
    const plans = [MIB, [[1 << 20, 'alloc']], MIB];
    const { srv, port, seen, sentByRef } = await server(false, (i) => plans[i]);
    const p = forkPeer('reuse_client.js', { port, rounds: 3, plan: [[11, 'buf']] });
    const rs = [];
    for (let i = 0; i < 3; i++) rs.push(await p.next('round'));
    await p.next('done');
    await p.exited;
    assert.deepEqual(rs.map((r) => r.ok), [true, true, true]);
    assert.deepEqual(rs.map((r) => r.bytes), [1 << 20, 1 << 20, 1 << 20]);
    assert.equal(sentByRef[0], 0, 'a fresh region: the MiB went through the ring');
    assert.deepEqual(seen[0], [], 'a region was made for a payload the ring carried');
    assert.equal(sentByRef[1], 1, 'a loan goes by reference');
    assert.equal(sentByRef[2], 1, 'the reused region: the MiB went by reference');
    assert.deepEqual(seen[2], seen[1], "the third connection got the second one's region");
    srv.close();
    await drained();
  });

  it('a client that connects again before its last connection closed on its side gets that region once it has', async () => {
    // As the ring case in ring_reuse.test.js, with the server's region: A's
    // region (its payload not yet read: A is paused) waits while A is open
    // on the client; B gets a fresh one; A then reads and releases its
    // payload and closes; C gets A's region.
    const ONE = [[300007, 'alloc']];
    const { srv, port, seen } = await server(true, ONE, false); // ends at the client's end (net's default)
    const p = forkPeer('overlap_client.js', { port, pool: {}, expect: 300007 });
    const a = await p.next('a');
    for (let i = 0; i < 500 && recycle.keptConnections() < 1; i++) await tick(4);
    assert.equal(recycle.keptConnections(), 1, 'A was not kept');
    const regionA = seen[0][0];
    p.child.send('go');
    const b = await p.next('b');
    assert.ok(b.ok, 'B: a bad byte');
    assert.equal(b.aClosed, false, 'A closed on the client before B connected: this case tests nothing');
    assert.equal(seen[1].length, 2, `own regions at B: ${seen[1]}`);
    assert.ok(seen[1].includes(regionA), "A's kept region was freed when B found A still open");
    assert.ok((await p.next('a-closed')).ok, 'A: a bad byte');
    p.child.send('go');
    const c = await p.next('c');
    assert.ok(c.ok, 'C: a bad byte');
    assert.deepEqual([...seen[2]].sort(), [...seen[1]].sort(), "C did not get A's region");
    assert.equal(c.ring, a.ring, "C did not get A's ring");
    await p.next('done');
    await p.exited;
    srv.close();
    await drained();
  });

  it('a client that keeps its views: the region is not reused, and its views stay unchanged', async () => {
    const { srv, port, seen, results } = await server();
    const rounds = 4;
    const a = await runClient(port, rounds, { hold: true });
    checkBytes(a.rs, results);
    assert.ok(a.done.heldOk, 'held views changed');
    assert.ok(a.done.held > 0);
    const inodes = seen.map((s) => s[s.length - 1]);
    assert.equal(new Set(inodes).size, rounds, `regions: ${inodes}`);
    srv.close();
    await drained();
  });

  it('hostile: a peer that returns everything, closes, keeps the old ring and region and scribbles on them reaches only memory it had; another process gets fresh memory', () => withGatesOpen(async () => {
    // ordinary Buffers copied into the pool from the first write (gates.js): this case is about what the pool then holds
    // One payload by reference, no ring byte: the Python peer need not read the ring for the server to close in order.
    const ONE = [[300007, 'buf']];
    const { srv, port, seen } = await server(true, ONE);
    // The Python peer's connections, as the server sees them: each must close (EPROTO or not), never hang.
    // Its second may never be one: a ring it broke before the server bound it is dropped without a 'connection'.
    const hostile = [];
    let hostilePhase = true;
    srv.on('connection', (s) => {
      if (!hostilePhase) return;
      const h = { closed: false, error: null };
      hostile.push(h);
      s.on('error', (e) => (h.error = e.code));
      s.on('close', () => (h.closed = true));
    });
    const py = spawn('python3', [path.join(__dirname, 'hostile_peer.py'), 'recycle', JSON.stringify({ path: srv.address().address, poolSize: 64 << 20, ms: 500 })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = once(py, 'exit'); // taken now: a peer that already exited must not hang the cleanup below
    const lines = readline.createInterface({ input: py.stdout });
    const next = async () => JSON.parse((await Promise.race([once(lines, 'line'), exited.then(() => { throw new Error('python peer exited'); })]))[0]);
    try {
      const r = await next();
      assert.equal(r.error, undefined, r.error);
      assert.ok(r.payloadOk, 'the first payload, as the server wrote it');
      // Its own region again: memory it already had (its first connection's pages).
      // (What the server sent: its memfds' inodes as the peer read them. The
      // server may fail that connection at once, EPROTO, for what the peer
      // scribbled on the ring, and then hold nothing of it.)
      assert.equal(r.ino2, r.ino1, 'the same process got its own region back');
      // And its own ring, re-initialised while it scribbled on its old mapping of it.
      assert.equal(r.ringIno2, r.ringIno1, 'the same process got its own ring back');
      assert.ok(r.early > 0);
      py.stdin.write('go\n');
      const sc = await next();
      assert.ok(sc.scribbled > 0);
      // Another process while it scribbled: fresh memory, every byte checked both ways.
      hostilePhase = false;
      const base = seen.length;
      const b = await runClient(port, 2);
      for (const rr of b.rs) {
        assert.ok(rr.ok, 'the second process saw a bad byte');
        assert.equal(rr.bytes, 300007);
      }
      assert.equal(seen.length, base + 2);
      for (const k of [base, base + 1]) assert.ok(!seen[k].includes(r.ino1) || seen[k].length > 1, `process 2 got the hostile peer's region: ${seen[k]}`);
      const second = seen[base].filter((ino) => ino !== r.ino1);
      assert.equal(second.length, 1);
      assert.deepEqual(seen[base + 1].filter((ino) => ino !== r.ino1), second, 'process 2 reuses its own');
    } finally {
      py.stdin.end();
      await exited;
    }
    await until(() => hostile.length >= 1 && hostile.every((h) => h.closed));
    assert.ok(hostile.length === 1 || hostile.length === 2, `${hostile.length} hostile connections`);
    for (const h of hostile) {
      assert.ok(h.closed, "a hostile peer's connection never closed");
      assert.ok(h.error === null || ['EPROTO', 'ECONNRESET'].includes(h.error), `hostile connection failed with ${h.error}`);
    }
    // The server lives on and serves.
    const c = await runClient(port, 1);
    assert.ok(c.rs[0].ok);
    srv.close();
    await drained();
  }));

  it('an old client that sends an empty record instead of closing its rendezvous socket gets fresh memory', () => withGatesOpen(async () => {
    // ordinary Buffers copied into the pool from the first write (gates.js): this case is about what the pool then holds
    // On a SEQPACKET socket an empty record reads as EOF does: the server must
    // see that the socket is still open, so the old mappings are not "let go".
    const { srv } = await server(true, [[300007, 'buf']]);
    srv.on('connection', (s) => s.on('error', () => {}));
    const py = spawn('python3', [path.join(__dirname, 'hostile_peer.py'), 'recycle', JSON.stringify({ path: srv.address().address, poolSize: 64 << 20, ms: 0, fakeClose: true })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = once(py, 'exit');
    const lines = readline.createInterface({ input: py.stdout });
    try {
      const [line] = await Promise.race([once(lines, 'line'), exited.then(() => { throw new Error('python peer exited'); })]);
      const r = JSON.parse(line);
      assert.equal(r.error, undefined, r.error);
      assert.ok(r.payloadOk);
      assert.notEqual(r.ringIno2, r.ringIno1, 'the ring went back to a client whose old socket is open');
      assert.notEqual(r.ino2, r.ino1, 'the region went back to a client whose old socket is open');
    } finally {
      py.stdin.end();
      await exited;
    }
    srv.close();
    await drained();
  }));

  it("a listener closing drops what its connections left at once, and only that; nothing more is kept for it", async () => {
    const fdsBefore = countFds();
    const one = await server();
    const two = await server();
    await runClient(one.port, 2);
    await runClient(two.port, 1);
    for (let i = 0; i < 100 && recycle.keptConnections() < 2; i++) await tick(10);
    assert.equal(recycle.keptConnections(), 2, 'nothing was kept: the test tests nothing');
    const oneRegions = new Set(one.seen.flat());
    const twoRegions = new Set(two.seen.flat().filter((ino) => !oneRegions.has(ino)));
    assert.equal(twoRegions.size, 1);
    one.srv.close();
    assert.equal(recycle.keptConnections(), 1, "the closed listener's connection outlived it, or the open one's went with it");
    assert.deepEqual([...ownRegionInodes()], [...twoRegions], "what is left is the open listener's region");
    // A connection still open when its server closes, ended in order after: not kept.
    const c = forkPeer('reuse_client.js', { port: two.port, rounds: 1, plan: PLAN, waitGo: true });
    await c.next('connected');
    two.srv.close();
    assert.equal(recycle.keptConnections(), 0, 'kept memory outlived its listener');
    c.child.send('go');
    const r = await c.next('round');
    await c.exited;
    assert.ok(r.ok && r.bytes === PLAN_BYTES, 'the open connection still served in full');
    await tick(50);
    assert.equal(recycle.keptConnections(), 0, 'kept memory outlived its listener');
    assert.equal(ownRegionInodes().size, 0);
    for (let i = 0; i < 50 && countFds() > fdsBefore; i++) await tick(10);
    assert.ok(countFds() <= fdsBefore, `fds ${fdsBefore} -> ${countFds()}`);
  });

  it('a client SIGKILLed mid-connection: nothing kept, nothing left behind', async () => {
    const fdsBefore = countFds();
    const { srv, port, seen } = await server(true, PLAN, false); // replies at once (by reference: a region), never ends
    const closedSockets = [];
    srv.on('connection', (s) => closedSockets.push(new Promise((r) => s.once('close', r))));
    const p = forkPeer('reuse_client.js', { port, stall: true });
    await p.next('connected');
    await until(() => closedSockets.length === 1);
    await tick(50);
    p.child.kill('SIGKILL');
    await p.exited;
    await closedSockets[0];
    assert.equal(seen[0]?.length, 1, 'the reply made no region: the test tests nothing');
    assert.equal(recycle.keptConnections(), 0, 'a region kept for a killed peer');
    assert.equal(ownRegionInodes().size, 0);
    srv.close();
    for (let i = 0; i < 50 && countFds() > fdsBefore; i++) await tick(10);
    assert.ok(countFds() <= fdsBefore, `fds ${fdsBefore} -> ${countFds()}`);
  });

  it('XENRING_RECYCLE=0 keeps nothing', async () => {
    process.env.XENRING_RECYCLE = '0';
    try {
      const { srv, port, seen, results } = await server();
      const a = await runClient(port, 3);
      checkBytes(a.rs, results);
      assert.equal(recycle.keptConnections(), 0);
      assert.deepEqual(seen.map((s) => s.length), [0, 0, 0]); // the memfd is not kept open either
      srv.close();
    } finally {
      delete process.env.XENRING_RECYCLE;
    }
  });
});
