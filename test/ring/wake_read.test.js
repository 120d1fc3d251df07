'use strict';
// A wake-up's read done natively: a reader that goes to sleep arms the read
// (RingEndpoint.bindWakeRead words, setWakeTarget buffer), and the wait fd's
// watcher (FdWatcher.bindRing) consumes the wake-up and reads the ring before
// it calls JS, handing the callback the byte count: one crossing per wake-up.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { native } = require('../../dist/native');
const { RingChannel } = require('../../dist/ring/channel');
const { ringPair } = require('./pair');
const { W, arm, countWokenReads } = require('../helpers/wake_read');
const xenring = require('../..');
const { withGatesOpen } = require('../pool/gates');

const LEFT_PROD = native.layout.leftProd; // the server's rx ring: the client's producer index

/**
 * A wired pair whose server wait fd is watched by a real FdWatcher bound to
 * the server endpoint. Each callback is recorded with what ack() finds right
 * after it (0: the wake-up was consumed before the callback ran).
 */
function watchedPair(options = {}) {
  const pair = ringPair(12, { wired: true, ...options });
  const words = new Uint32Array(W.Count);
  pair.server.bindWakeRead(words);
  const calls = [];
  let wake = null;
  const watcher = new native.FdWatcher(pair.serverWaitFd, (events, read, error) => {
    calls.push({ events, read, error, pendingAfter: pair.server.ack() });
    if (wake) wake();
  });
  watcher.bindRing(pair.server);
  watcher.start(1);
  const next = () => new Promise((resolve) => (wake = () => ((wake = null), resolve(calls[calls.length - 1]))));
  return {
    pair,
    words,
    calls,
    next,
    close() {
      watcher.close();
      pair.close();
    },
  };
}

describe('ring: a wake-up read natively (FdWatcher.bindRing)', function () {
  it('consumes the wake-up and reads the armed bytes into the armed buffer before JS runs; unarmed, it leaves both to JS', async function () {
    const w = watchedPair();
    const target = Buffer.alloc(16, 0xee);
    w.pair.server.setWakeTarget(target);
    w.pair.server.requestData();
    arm(w.words, 3, 10);
    let got = w.next();
    assert.equal(w.pair.client.write(Buffer.from('hello, ring')), 11);
    let call = await got;
    assert.equal(call.error, undefined);
    assert.equal(call.read, 10, 'no more than the armed max');
    assert.equal(target.subarray(3, 13).toString(), 'hello, rin');
    assert.ok(target.subarray(0, 3).every((b) => b === 0xee) && target.subarray(13).every((b) => b === 0xee), 'nothing outside the armed range');
    assert.equal(call.pendingAfter, 0, 'the wake-up was consumed before the callback');
    assert.equal(w.words[W.Armed], 0, 'disarmed: one read per arming');
    assert.equal(w.pair.server.readable(), 1, 'the rest stays in the ring');

    // Not armed: the callback gets -1 and the wake-up is still pending for JS.
    w.pair.server.read(Buffer.alloc(1), 0, 1);
    w.pair.server.requestData();
    got = w.next();
    w.pair.client.write(Buffer.from('x'));
    call = await got;
    assert.equal(call.read, -1);
    assert.ok(call.pendingAfter > 0, 'the wake-up was left for JS');
    assert.equal(w.pair.server.readable(), 1);
    w.close();
  });

  it('with a watched word that moved, consumes the wake-up but reads nothing (a payload announced since arming may lie inside)', async function () {
    const w = watchedPair();
    const word = new Uint32Array([5]);
    w.pair.server.bindWatch(word);
    w.pair.server.setWakeTarget(Buffer.alloc(8));
    w.pair.server.requestData();
    arm(w.words, 0, 8, 4);
    let got = w.next();
    w.pair.client.write(Buffer.from('abc'));
    let call = await got;
    assert.equal(call.read, 0);
    assert.equal(call.pendingAfter, 0);
    assert.equal(w.pair.server.readable(), 3);
    // Armed with the word as it is: the read goes ahead.
    const target = Buffer.alloc(8);
    w.pair.server.setWakeTarget(target);
    w.pair.server.requestData();
    arm(w.words, 0, 8, 5);
    got = w.next();
    w.pair.client.write(Buffer.from('d'));
    call = await got;
    assert.equal(call.read, 4);
    assert.equal(target.subarray(0, 4).toString(), 'abcd');
    w.close();
  });

  it('a target that no longer holds the armed range (detached, or too short) reads nothing and leaves the wake-up to JS', async function () {
    const w = watchedPair();
    const cases = [
      () => {
        const t = new Uint8Array(64);
        w.pair.server.setWakeTarget(t);
        structuredClone(t.buffer, { transfer: [t.buffer] }); // detached: its memory is no longer ours
        arm(w.words, 0, 8);
      },
      () => {
        w.pair.server.setWakeTarget(Buffer.alloc(8));
        arm(w.words, 4, 5); // one past its end
      },
      () => {
        w.pair.server.setWakeTarget(null);
        arm(w.words, 0, 1);
      },
    ];
    for (const setUp of cases) {
      setUp();
      w.pair.server.requestData();
      const got = w.next();
      w.pair.client.write(Buffer.from('z'));
      const call = await got;
      assert.equal(call.read, -1);
      assert.ok(call.pendingAfter > 0);
      assert.equal(w.words[W.Armed], 0);
    }
    assert.equal(w.pair.server.readable(), 3, 'no byte was taken');
    w.close();
  });

  it('a hostile producer index reaches the callback as EPROTO (nothing read, no crash); a closed endpoint reads nothing', async function () {
    const w = watchedPair({ keepFd: true });
    const target = Buffer.alloc(32, 1);
    w.pair.server.setWakeTarget(target);
    w.pair.server.requestData();
    arm(w.words, 0, 32);
    const bad = Buffer.alloc(4);
    bad.writeUInt32LE(0x7fff0000);
    fs.writeSync(w.pair.fd, bad, 0, 4, LEFT_PROD);
    let got = w.next();
    w.pair.client.kick();
    let call = await got;
    assert.equal(call.read, -1);
    assert.equal(call.error.code, 'EPROTO');
    assert.ok(target.every((b) => b === 1), 'nothing copied');

    arm(w.words, 0, 32);
    w.pair.server.close();
    got = w.next();
    w.pair.client.kick();
    call = await got;
    assert.equal(call.read, -1);
    assert.equal(call.error, undefined);
    w.close();
  });

  it('takes only what it can use', function () {
    const pair = ringPair(12, { wired: true });
    const watcher = new native.FdWatcher(pair.serverWaitFd, () => {});
    assert.throws(() => watcher.bindRing({}), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => watcher.bindRing(Object.create(native.RingEndpoint.prototype)), { code: 'ERR_INVALID_ARG_TYPE' });
    watcher.bindRing(pair.server);
    watcher.bindRing(null);
    assert.throws(() => pair.server.bindWakeRead(new Uint32Array(W.Count - 1)), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => pair.server.bindWakeRead(new Uint8Array(64)), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => pair.server.setWakeTarget(new Uint32Array(4)), { code: 'ERR_INVALID_ARG_TYPE' });
    watcher.close();
    pair.close();
  });

  /** A channel owner that takes every chunk and keeps the channel's error. */
  function failingOwner() {
    const owner = {
      failed: null,
      channelData: () => true,
      channelActivity() {},
      channelEnd() {},
      channelError: (err) => (owner.failed = err),
    };
    return owner;
  }

  it('a channel whose sleeping reader finds a hostile index on a wake-up fails with EPROTO', async function () {
    const pair = ringPair(12, { wired: true, keepFd: true });
    const owner = failingOwner();
    const channel = new RingChannel(serverLink(pair), owner, { spinMicros: 0 });
    channel.resume(); // nothing to read: it asks for a wake-up and sleeps, its read armed
    const bad = Buffer.alloc(4);
    bad.writeUInt32LE(0xfffffff0);
    fs.writeSync(pair.fd, bad, 0, 4, LEFT_PROD);
    pair.client.kick();
    for (let i = 0; i < 200 && owner.failed === null; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(owner.failed?.code, 'EPROTO');
    channel.close(true);
    pair.close();
  });

  it('bytes a wake-up read for a reader that was not waiting fail the channel (ERR_INTERNAL_ASSERTION) instead of vanishing', function () {
    const pair = ringPair(12, { wired: true });
    const owner = failingOwner();
    const channel = new RingChannel(serverLink(pair), owner, { spinMicros: 0 });
    // Never resumed: nothing armed, so no wake-up can have read for it. A
    // report of bytes read anyway (a bug) must not be dropped silently.
    channel.reader.onWokenRead(0);
    assert.equal(owner.failed, null, 'no bytes: nothing to report');
    channel.reader.onWokenRead(5);
    assert.equal(owner.failed?.code, 'ERR_INTERNAL_ASSERTION');
    channel.close(true);
    pair.close();
  });

  it('a channel paused while its reader sleeps reads nothing on the next wake-up; resume() delivers it', async function () {
    const { channel, pair, chunks, calls } = sleepingChannel();
    channel.pause();
    let got = calls.next();
    pair.client.write(Buffer.from('abc'));
    let call = await got;
    assert.equal(call.read, -1, 'pause() disarmed the read');
    assert.equal(chunks.length, 0);
    assert.equal(pair.server.readable(), 3);
    channel.resume();
    assert.equal(Buffer.concat(chunks).toString(), 'abc');
    // Asleep again, armed: the next wake-up reads natively.
    got = calls.next();
    pair.client.write(Buffer.from('defg'));
    call = await got;
    assert.equal(call.read, 4);
    assert.equal(Buffer.concat(chunks).toString(), 'abcdefg');
    channel.close();
    pair.close();
  });
});

/** A RingLink over the server end of a wired pair (no transport: the ring alone). */
function serverLink(pair) {
  return {
    endpoint: pair.server,
    waitFd: pair.serverWaitFd,
    hangupFd: null,
    ext: true,
    local: { address: 'a', family: 'local', port: 1 },
    remote: { address: 'b', family: 'local', port: 2 },
    release() {},
  };
}

/** A channel on the server end of a wired pair, spinMicros 0, reading and asleep; its watcher's callbacks recorded. */
function sleepingChannel() {
  const pair = ringPair(12, { wired: true });
  const chunks = [];
  const owner = { channelData: (c) => (chunks.push(Buffer.from(c)), true), channelActivity() {}, channelEnd() {}, channelError: (e) => assert.fail(e) };
  const link = serverLink(pair);
  const record = [];
  let wake = null;
  const Real = native.FdWatcher;
  native.FdWatcher = function RecordingWatcher(fd, callback) {
    // Every argument passes through (the round bounds a wake-up's callback).
    return new Real(fd, (...args) => {
      const [events, read, error] = args;
      record.push({ events, read, error });
      callback(...args);
      if (wake) wake(record[record.length - 1]);
    });
  };
  let channel;
  try {
    channel = new RingChannel(link, owner, { spinMicros: 0 });
  } finally {
    native.FdWatcher = Real;
  }
  channel.resume();
  const calls = { next: () => new Promise((resolve) => (wake = (c) => ((wake = null), resolve(c)))) };
  return { channel, pair, chunks, calls };
}

/**
 * A ping-pong with a forked echo server, both sides spinMicros 0 (every reply
 * is a wake-up). The wait fds' watchers in this process are wrapped to count
 * the wake-ups whose read was done natively.
 */
describe('ring: wake-up reads across processes (spinMicros 0)', function () {
  this.timeout(60000);
  const woken = countWokenReads();

  async function echoPeer() {
    const child = fork(path.join(__dirname, 'fixtures', 'wake_echo.js'), ['0'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // Listened for from the start: a parent held up (load, a GC) can see the
    // child's exit before its own socket's 'close' (finish() then waited for
    // an 'exit' already emitted, until the test timed out).
    const exited = once(child, 'exit');
    const messages = [];
    child.on('message', (m) => messages.push(m));
    const [first] = await once(child, 'message');
    assert.equal(first.event, 'listening');
    return { child, exited, port: first.port, messages };
  }

  /** Sends each message, waits for all of its bytes back and checks them; returns the socket. */
  async function pingPong(socket, sizes, { onReply } = {}) {
    let pending = null;
    let got = [];
    let have = 0;
    let want = 0;
    const onChunk = (chunk) => {
      got.push(Buffer.from(chunk));
      have += chunk.length;
      if (have >= want && pending) pending();
    };
    socket.on('data', onChunk);
    for (let i = 0; i < sizes.length; i++) {
      const msg = Buffer.alloc(sizes[i]);
      for (let j = 0; j < msg.length; j++) msg[j] = (i * 31 + j * 7) & 0xff;
      got = [];
      have = 0;
      want = msg.length;
      const done = new Promise((resolve) => (pending = resolve));
      socket.write(msg);
      await done;
      pending = null;
      assert.ok(Buffer.concat(got).equals(msg), `message ${i} (${msg.length} B) came back intact`);
      if (onReply) await onReply(i);
    }
    socket.off('data', onChunk);
  }

  async function finish(socket, peer) {
    const closed = once(socket, 'close');
    socket.end();
    await once(socket, 'end');
    await closed;
    const [code] = await peer.exited;
    assert.equal(code, 0);
    assert.equal(peer.messages.filter((m) => m.event === 'error').length, 0, JSON.stringify(peer.messages));
    return peer.messages.find((m) => m.event === 'close');
  }

  it("every byte of small and pool-sized messages, interleaved, comes back through 'data'; the wake-ups read natively", async function () {
    const peer = await echoPeer();
    // Pool-sized messages go by reference from the first (test/pool/gates.js; the echo peer opens its own).
    const socket = await withGatesOpen(async () => {
      const s = xenring.connect({ port: peer.port, spinMicros: 0 });
      await once(s, 'connect');
      return s;
    });
    const sizes = [];
    for (let i = 0; i < 400; i++) sizes.push(i % 50 === 7 ? 300 * 1024 + i : 1 + ((i * 37) % 3000));
    await pingPong(socket, sizes);
    const stats = socket.poolStats();
    const closed = await finish(socket, peer);
    assert.ok(stats.receivedByRef >= 8, `pool payloads came back by reference (${stats.receivedByRef})`);
    assert.ok(closed.stats.receivedByRef >= 8, 'and went out by reference');
    // Most replies arrive while the client sleeps: their wake-ups read natively.
    assert.ok(woken.calls >= 200, `woken reads ${woken.calls} of 400 replies`);
    assert.ok(woken.bytes > 0);
  });

  it('onread: replies larger than the buffer arrive whole over several reads, the first read on each wake-up done natively', async function () {
    const peer = await echoPeer();
    const buffer = Buffer.alloc(100);
    const received = [];
    let pending = null;
    let want = 0;
    let have = 0;
    let stopNext = false;
    const socket = xenring.connect({
      port: peer.port,
      spinMicros: 0,
      onread: {
        buffer,
        callback: (n, buf) => {
          assert.equal(buf, buffer);
          received.push(Buffer.from(buf.subarray(0, n)));
          have += n;
          if (have >= want && pending) pending();
          if (stopNext) {
            stopNext = false;
            return false;
          }
          return true;
        },
      },
    });
    await once(socket, 'connect');
    for (let i = 0; i < 100; i++) {
      const msg = Buffer.alloc(1 + ((i * 53) % 700), i & 0xff);
      received.length = 0;
      have = 0;
      want = msg.length;
      const done = new Promise((r) => (pending = r));
      socket.write(msg);
      await done;
      assert.ok(Buffer.concat(received).equals(msg), `reply ${i}`);
    }
    assert.ok(woken.calls >= 50, `woken reads ${woken.calls} of 100 replies`);

    // The callback returns false: reading stops (as net's readStop), and so
    // does the armed read: the next reply waits in the ring until resume().
    stopNext = true;
    received.length = 0;
    socket.write(Buffer.from('stop'));
    for (let i = 0; i < 400 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(Buffer.concat(received).toString(), 'stop');
    const wokenBytes = woken.bytes;
    socket.write(Buffer.from('later'));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(Buffer.concat(received).toString(), 'stop', 'nothing delivered while stopped');
    assert.equal(woken.bytes, wokenBytes, 'nothing read on the wake-up while stopped');
    socket.resume();
    for (let i = 0; i < 400 && Buffer.concat(received).length < 9; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(Buffer.concat(received).toString(), 'stoplater');
    await finish(socket, peer);
  });
});
