'use strict';
// Half-close and close wake the peer that waits for them. A side's fin byte
// (end()) and its live byte going to Gone (close, reset) wake a xenring peer
// only if that peer asked for a wake-up (signalWrite, signalGone): the peer
// re-checks both bytes after asking and before it sleeps. Here every wait
// for such a change is real: a reader asleep on an empty ring for the
// peer's end() and close, a writer asleep on a full ring the peer closes,
// a half-open connection, and writes to a peer that has closed without
// waking us. The peer is another process (fixtures/close_peer.js); each
// scenario runs on node:net (TCP on 127.0.0.1) too, as the control, so
// what is asserted is what both do. Every wait is bounded and fails with
// what was missed: a peer not woken is a failure here, never a hang.
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { children } = require('../helpers/fixtures');
const { PatternChecker, writePattern, slice } = require('../helpers/pattern');
const xenring = require('../..');

const FIXTURE = path.join(__dirname, 'fixtures', 'close_peer.js');
/** The fixture's connection modes (its header's first byte). */
const Mode = { END: 1, STALL: 2, PEER_FIRST: 3, US_FIRST: 4, FULL_CLOSE: 5 };
/**
 * Longest wait for what a wake-up brings (an 'end', a 'close', a write's
 * error): a woken peer takes microseconds to a few ms. Below the 2 s after
 * which a local server frees a parked (kept) link, closing the rendezvous
 * socket: that hang-up would end, late, a wait a missing wake-up left hanging.
 */
const WAKE_MS = 1000;
/** Longest wait for anything else (the peer process starting, writing 1 MiB). */
const WAIT_MS = 3000;
const CHUNK = 64 * 1024;
const MiB = 1 << 20;
/** The default ring (lib/ring/ring_size.ts DEFAULT_RING_SIZE). */
const RING = 2 * MiB;

// Random sizes and delays, reproducible: XENRING_TEST_SEED=<n> replays a run.
const SEED = Number(process.env.XENRING_TEST_SEED) || (Date.now() % 1e9 >>> 0);
function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(SEED);
const randInt = (below) => Math.floor(rand() * below);

/** Resolves as `promise`, or rejects after `ms` saying what did not happen. */
function within(ms, what, promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms (seed ${SEED})`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** The fixture's 16-byte header: what the connection does. */
function header({ mode, flag = 0, d1 = 0, d2 = 0, id, n = 0, m = 0 }) {
  const b = Buffer.alloc(16);
  b[0] = mode;
  b[1] = flag;
  b[2] = d1;
  b[3] = d2;
  b.writeUInt32LE(id, 4);
  b.writeUInt32LE(n, 8);
  b.writeUInt32LE(m, 12);
  return b;
}

/** The fixture in its own process, its IPC messages kept until asked for. */
class Peer {
  constructor(impl) {
    this.child = fork(FIXTURE, [impl], { env: process.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(this.child);
    this.child.once('exit', () => children.delete(this.child));
    this.exited = once(this.child, 'exit');
    this.inbox = [];
    this.waiters = [];
    this.child.on('message', (m) => {
      const i = this.waiters.findIndex((w) => w.event === m.event && (w.id === undefined || w.id === m.id));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      else this.inbox.push(m);
    });
  }

  /** The next message `event` (for connection `id`), within `ms`. */
  next(event, id, ms, what) {
    const i = this.inbox.findIndex((m) => m.event === event && (id === undefined || m.id === id));
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    const got = new Promise((resolve) => this.waiters.push({ event, id, resolve }));
    return within(ms, what, got);
  }

  send(msg) {
    this.child.send(msg);
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.disconnect();
    await within(WAIT_MS, 'the peer process exiting', this.exited).catch(() => this.child.kill('SIGKILL'));
  }
}

for (const impl of ['net', 'xenring']) {
  describe(`ring: close and half-close wake the peer that waits [${impl}]`, function () {
    this.timeout(60000);
    let peer;
    let ports;
    let nextId = 1;
    /** Sockets of the current test, destroyed after it (a failed wait leaves one open). */
    const sockets = new Set();

    function connect(port, options = {}) {
      const s =
        impl === 'net'
          ? net.connect({ port, host: '127.0.0.1', ...options })
          : xenring.connect({ port, transport: 'local', ...options });
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      return s;
    }

    /**
     * Records the socket's events in order; `ended` resolves on 'end' (never
     * rejects: events.once would on 'error'), `closed` with hadError on 'close'.
     */
    function watch(s) {
      const events = [];
      s.on('end', () => events.push('end'));
      s.on('error', (err) => events.push(`error ${err.code}`));
      const closed = new Promise((resolve) =>
        s.once('close', (hadError) => {
          events.push('close');
          resolve(hadError);
        }),
      );
      return { events, closed, ended: new Promise((resolve) => s.once('end', resolve)) };
    }

    before(async function () {
      peer = new Peer(impl);
      ({ ports } = await peer.next('listening', undefined, 10000, 'the peer process listening'));
    });

    afterEach(function () {
      for (const s of sockets) s.destroy();
      sockets.clear();
    });

    after(() => peer.stop());

    it('a reader asleep on an empty ring sees the peer end() and then close: 200 fresh connections, random delays', async function () {
      const hows = ['end()', 'end(), then destroy()', 'destroy()'];
      const seen = { 'end()': 0, 'end(), then destroy()': 0, 'destroy()': 0, slept: 0 };
      for (let i = 0; i < 200; i++) {
        const id = nextId++;
        const n = rand() < 0.25 ? 0 : 1 + randInt(8192);
        const d1 = randInt(4);
        const d2 = randInt(4);
        const flag = randInt(3);
        const what = `connection ${i} (${n} bytes after ${d1} ms, then ${hows[flag]} after ${d2} ms)`;
        const s = connect(ports.closing);
        const { events, closed, ended } = watch(s);
        const check = new PatternChecker();
        s.on('data', (d) => check.update(d)); // reading: not paused, asleep while the ring is empty
        s.write(header({ mode: Mode.END, flag, d1, d2, id, n }));
        await within(WAKE_MS, `${what}: our 'end' (the peer's ${hows[flag]} did not wake our reader?)`, ended);
        assert.deepEqual([check.received, check.ok], [n, true], `${what}: bytes before the end`);
        const hadError = await within(WAKE_MS, `${what}: our 'close'`, closed);
        const theirs = await peer.next('closed', id, WAKE_MS, `${what}: the peer's 'close'${flag === 0 ? ' (our end() did not wake it?)' : ''}`);
        assert.deepEqual(events, ['end', 'close'], what);
        assert.equal(hadError, false, what);
        assert.equal(theirs.hadError, false, `${what}: the peer's close had an error (${theirs.events})`);
        assert.deepEqual([theirs.bytesRead, theirs.bytesWritten], [16, n], `${what}: the peer's byte counts`);
        if (flag === 0) assert.ok(theirs.events.includes('end'), `${what}: the peer never saw our end (${theirs.events})`);
        seen[hows[flag]]++;
        if (d2 > 0) seen.slept++;
      }
      // Every way of leaving came up, and both orderings: fin in the same turn
      // as the data (d2 0: the reader may still be awake) and fin a
      // millisecond or more after it (the reader asleep: it spins 50 µs).
      assert.ok(hows.every((h) => seen[h] > 0) && seen.slept > 0 && seen.slept < 200, JSON.stringify(seen));
    });

    it('a writer blocked on a full ring fails with EPIPE or ECONNRESET promptly when the peer closes; every pending write callback runs', async function () {
      for (const how of ['destroy', 'end-destroy']) {
        const id = nextId++;
        const what = `the peer's ${how}`;
        const s = connect(ports.closing);
        const { events, closed } = watch(s);
        s.resume();
        const failed = once(s, 'error').then(([err]) => err);
        // The peer reads its first 64 KiB (verified), then pauses for good.
        s.write(header({ mode: Mode.STALL, id, n: CHUNK }));
        let pos = 0;
        let issued = 0;
        let called = 0;
        let returnedFalse = false;
        const writeMore = (bytes) => {
          for (const end = pos + bytes; pos < end; pos += CHUNK) {
            issued++;
            // Called with the error, or (net, a write the failed socket's close
            // cancelled) with none: called, in any case.
            const ok = s.write(Buffer.from(slice(pos, CHUNK)), () => called++);
            if (!ok) returnedFalse = true;
          }
        };
        writeMore(4 * MiB);
        // Blocked: callbacks pending and none called for 100 ms. A TCP
        // connection's kernel buffers may take more than 4 MiB: more then.
        for (let last = -1; ; ) {
          await delay(100);
          if (called === last && called < issued) break;
          if (called === issued) {
            assert.ok(impl === 'net', `4 MiB written to a peer that reads nothing all completed: the ${RING}-byte ring never filled`);
            assert.ok(pos < 64 * MiB, `${pos} bytes written to a peer that reads nothing, none pending`);
            writeMore(4 * MiB);
          }
          last = called;
        }
        assert.ok(returnedFalse, 'write() never returned false');
        // xenring: the writer is asleep on a ring it filled (the bytes it moved
        // into the ring; the callbacks wait for the whole batched write).
        if (impl === 'xenring') assert.ok(s.channel.bytesWritten >= RING / 2, `blocked after ${s.channel.bytesWritten} bytes moved into the ring`);
        const stalled = await peer.next('stalled', id, WAIT_MS, 'the peer reading its first 64 KiB');
        assert.deepEqual([stalled.received, stalled.ok], [CHUNK, true], 'the bytes the peer read');
        peer.send({ cmd: 'close', id, how });
        const err = await within(WAKE_MS, `${what}: the blocked writer's error (not woken by the peer's close?)`, failed);
        assert.ok(['EPIPE', 'ECONNRESET'].includes(err.code), `${what}: ${err.code} ${err.message}`);
        await within(WAKE_MS, `${what}: all ${issued} write callbacks (${issued - called} still pending)`, (async () => {
          while (called < issued) await delay(5);
        })());
        assert.equal(await within(WAKE_MS, `${what}: our 'close'`, closed), true);
        assert.equal(events.filter((e) => e.startsWith('error')).length, 1, `${what}: ${events}`);
        const theirs = await peer.next('closed', id, WAKE_MS, `${what}: the peer's 'close'`);
        assert.equal(theirs.bytesWritten, 0);
      }
    });

    it('half-open (allowHalfOpen both sides): the side that ended reads and verifies the 1 MiB the other still writes; both see end and close', async function () {
      // The peer ends first; we keep writing.
      {
        const id = nextId++;
        const s = connect(ports.halfOpen, { allowHalfOpen: true });
        const { events, closed, ended } = watch(s);
        s.resume();
        s.write(header({ mode: Mode.PEER_FIRST, id }));
        await within(WAKE_MS, "our 'end' after the peer's end() (our reader not woken?)", ended);
        assert.equal(s.writable, true, 'half-open: still writable after the peer ended');
        await within(WAIT_MS, 'writing 1 MiB after the peer ended', new Promise((resolve) => writePattern(s, MiB, 100000, resolve)));
        s.end();
        const report = await peer.next('end', id, WAKE_MS, "the peer's 'end' after our end() (its reader not woken?)");
        assert.deepEqual([report.received, report.ok], [MiB, true], 'what the peer read after it ended');
        assert.equal(await within(WAKE_MS, "our 'close'", closed), false);
        assert.deepEqual(events, ['end', 'close']);
        const theirs = await peer.next('closed', id, WAKE_MS, "the peer's 'close'");
        assert.equal(theirs.hadError, false);
        assert.deepEqual(theirs.events, ['finish', 'end']);
      }
      // We end first; the peer keeps writing.
      {
        const id = nextId++;
        const s = connect(ports.halfOpen, { allowHalfOpen: true });
        const { events, closed, ended } = watch(s);
        const check = new PatternChecker();
        s.on('data', (d) => check.update(d));
        s.end(header({ mode: Mode.US_FIRST, id, n: MiB }));
        await within(WAKE_MS, "our 'end' after the peer wrote 1 MiB and ended", ended);
        assert.deepEqual([check.received, check.ok], [MiB, true], 'what we read after we ended');
        assert.equal(await within(WAKE_MS, "our 'close'", closed), false);
        assert.deepEqual(events, ['end', 'close']);
        const theirs = await peer.next('closed', id, WAKE_MS, "the peer's 'close' (it waits for us to read its last bytes)");
        assert.equal(theirs.hadError, false);
        assert.deepEqual(theirs.events, ['end', 'finish']);
        assert.deepEqual([theirs.bytesRead, theirs.bytesWritten], [16, MiB]);
      }
    });

    it('writes to a peer that has closed (its end and close unseen: our reader is paused) fail with EPIPE or ECONNRESET within a ring of bytes', async function () {
      const id = nextId++;
      const s = connect(ports.closing);
      s.pause();
      const { events, closed } = watch(s);
      // The peer verifies our 64 KiB, writes 1000 bytes we never read, ends and closes.
      s.write(Buffer.concat([header({ mode: Mode.FULL_CLOSE, id, n: CHUNK, m: 1000 }), slice(0, CHUNK)]));
      const theirs = await peer.next('closed', id, WAKE_MS, "the peer's end() and 'close'");
      assert.deepEqual([theirs.received, theirs.ok, theirs.hadError], [CHUNK, true, false], 'the peer read our bytes and closed');
      assert.deepEqual(events, [], 'our paused socket saw nothing yet');
      const failed = once(s, 'error').then(([err]) => err);
      // TCP fails at the first or second write after the peer closed; so does
      // the ring once a write sees the peer's live byte gone in the state its
      // last call published (before that check, only a full ring told: ~2 MiB).
      const limit = impl === 'net' ? 2 * RING : 4 * CHUNK;
      let written = 0;
      let err = null;
      while (!err && written < limit) {
        const done = new Promise((resolve) => s.write(Buffer.from(slice(CHUNK + written, CHUNK)), resolve));
        written += CHUNK;
        err = await within(WAKE_MS, `write ${written / CHUNK} after the peer closed neither completed nor failed (a writer asleep on a ring the peer left?)`, Promise.race([done, failed]));
      }
      assert.ok(err, `${written} bytes written to a peer that closed, and no error`);
      assert.ok(['EPIPE', 'ECONNRESET'].includes(err.code), `${err.code} ${err.message}`);
      assert.equal(await within(WAKE_MS, "our 'close'", closed), true);
      assert.ok(!events.includes('end'), `our paused socket emitted 'end' (${events})`);
    });
  });
}
