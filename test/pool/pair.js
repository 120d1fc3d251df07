'use strict';
// One direction of a xenring connection with its pool, built by hand from
// the primitives (the transports' handshake is not wired yet): a vchan ring
// pair in one memfd and a pool region (queues + pool pages) in another. The
// writer interleaves ring bytes and pool payloads in one ordered stream; the
// reader merges them back. Used by the pool tests and bench/pool.js.
const { native } = require('../../dist/native');
const { poolNative, PoolSender, PoolReceiver, regionBytes } = require('../../dist/pool');

/** Fresh memfds for a ring pair of 2^order bytes per ring and a pool of poolBytes. */
function createShared({ order = 16, poolBytes }) {
  const ringSize = 4096 + 2 * (1 << order);
  const regionSize = regionBytes(poolBytes);
  return {
    order,
    poolBytes,
    ringSize,
    regionSize,
    ringFd: native.memfdCreate('pool-test-ring', ringSize),
    poolFd: native.memfdCreate('pool-test-pool', regionSize),
  };
}

/** The ring endpoint: the server (the writer here) initialises the control page. */
function attachRing(fd, { ringSize, order }, role) {
  native.memfdCheck(fd, ringSize);
  const mapping = new native.SharedMapping(fd, ringSize, true);
  const ep = new native.RingEndpoint({
    role,
    init: role === 'server',
    ext: true,
    control: mapping,
    controlOffset: 0,
    left: { mapping, offset: 4096, order },
    right: { mapping, offset: 4096 + (1 << order), order },
  });
  return { mapping, ep };
}

/** The pool half: the writer creates (and initialises) the region it sends from. */
function attachPool(fd, { regionSize, poolBytes }, side, extra = {}) {
  native.memfdCheck(fd, regionSize);
  const mapping = new poolNative.PoolMapping(fd, regionSize, true);
  if (side === 'sender') return new PoolSender({ mapping, poolBytes, init: true, ...extra });
  return new PoolReceiver({ mapping, poolBytes, init: false, views: true, ...extra });
}

/**
 * Writes ring bytes and pool payloads in order. A payload is announced at the
 * ring position where it was written, so it waits until every ring byte
 * before it is in the ring; one the pool refuses goes through the ring.
 */
class MixedWriter {
  constructor(ep, sender) {
    this.ep = ep;
    this.sender = sender;
    this.ringPos = 0;
    this.queue = []; // { buf, off, pool }
    this.byRef = 0;
    this.byRing = 0;
  }
  write(buf, pool) {
    this.queue.push({ buf, off: 0, pool });
  }
  /** Moves what it can; true when everything queued is out. */
  flush() {
    while (this.queue.length > 0) {
      const item = this.queue[0];
      if (item.pool && item.off === 0) {
        if (this.sender.send(item.buf, this.ringPos)) {
          this.byRef++;
          this.queue.shift();
          continue;
        }
        item.pool = false;
        item.recycle = true; // a loan that goes through the ring instead
      }
      const n = this.ep.write(item.buf, item.off);
      item.off += n;
      this.ringPos += n;
      if (item.off < item.buf.length) return false;
      this.byRing++;
      if (item.recycle) this.sender.recycle(item.buf);
      this.queue.shift();
    }
    return true;
  }
}

/**
 * Reads the merged stream: ring bytes up to the next payload's position, then
 * the payload. The ring's readable count is taken BEFORE the descriptors, so
 * no ring byte past an announced position can be read early.
 */
class MixedReader {
  constructor(ep, receiver, onChunk, scratch = 1 << 20) {
    this.ep = ep;
    this.receiver = receiver;
    this.onChunk = onChunk;
    this.consumed = 0;
    this.scratch = Buffer.alloc(scratch);
  }
  /** One pass; true when anything arrived. */
  step() {
    let avail = this.ep.readable();
    this.receiver.poll(this.consumed);
    let progress = false;
    for (;;) {
      const allow = this.receiver.allowance(this.consumed);
      if (allow === 0) {
        this.onChunk(this.receiver.take(this.consumed), true);
        progress = true;
        continue;
      }
      const n = Math.min(avail, allow, this.scratch.length);
      if (n === 0) return progress;
      const got = this.ep.read(this.scratch, 0, n);
      this.consumed += got;
      avail -= got;
      progress = true;
      this.onChunk(this.scratch.subarray(0, got), false);
    }
  }
}

/** Calls step() until done() — at once while it makes progress, every ms while idle. */
function pump(step, done, idle) {
  return new Promise((resolve, reject) => {
    const tick = () => {
      try {
        let progress = false;
        for (let i = 0; i < 64 && !done(); i++) if (step()) progress = true;
        if (done()) return resolve();
        if (!progress && idle) idle();
        if (progress) setImmediate(tick);
        else setTimeout(tick, 1);
      } catch (err) {
        reject(err);
      }
    };
    tick();
  });
}

module.exports = { createShared, attachRing, attachPool, MixedWriter, MixedReader, pump };
