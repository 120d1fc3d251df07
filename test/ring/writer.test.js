'use strict';
// RingWriter alone: real rings in one process, no transport or watcher.
const assert = require('node:assert/strict');
const { RingWriter } = require('../../dist/ring/writer');
const { VchanState } = require('../../dist/ring/vchan_state');
const { ringPair } = require('./pair');

function setup(order = 12) {
  const pair = ringPair(order);
  const state = new VchanState(pair.client, true);
  const host = { closed: false, peerGone: false, gone: 0, errors: [], notePeerGone() { this.gone++; this.peerGone = true; }, fail(e) { this.errors.push(e); }, activity() {} };
  const writer = new RingWriter(state, host, 0);
  const drain = () => {
    const out = Buffer.alloc(1 << 16);
    const n = pair.server.read(out, 0, out.length);
    return out.subarray(0, n);
  };
  return { pair, state, host, writer, drain };
}

const tick = () => new Promise((r) => process.nextTick(r));

describe('ring: RingWriter', function () {
  it("writes a tick's first small write at once, stages the rest and moves them into the ring together at the end of the tick", async function () {
    const { pair, writer, drain } = setup();
    const writes = [];
    const write = pair.client.write;
    // The addon's methods are read-only on the prototype: an own property counts the calls.
    Object.defineProperty(pair.client, 'write', {
      value: (...args) => {
        writes.push(Buffer.concat([args[0]].flat()).toString());
        return write.apply(pair.client, args);
      },
    });
    assert.equal(writer.stage(Buffer.from('ab')), true);
    assert.equal(pair.server.readable(), 2, 'the first write is in the ring before stage() returns');
    assert.equal(writer.stage(Buffer.from('cd')), true);
    assert.equal(writer.stage(Buffer.from('ef')), true);
    assert.equal(pair.server.readable(), 2, 'the later ones are staged');
    await tick();
    assert.equal(drain().toString(), 'abcdef');
    assert.equal(writer.bytesWritten, 6);
    assert.deepEqual(writes, ['ab', 'cdef'], 'one native write for the first, one for the rest of the tick');
    // The next tick's first write goes at once again.
    assert.equal(writer.stage(Buffer.from('g')), true);
    assert.equal(drain().toString(), 'g');
    await tick();
    assert.deepEqual(writes, ['ab', 'cdef', 'g']);
    pair.close();
  });

  it('refuses to stage what the ring may not have room for (the caller then writes)', function () {
    const { pair, writer } = setup(); // 4 KiB ring
    assert.equal(writer.stage(Buffer.alloc(4096)), true);
    assert.equal(writer.stage(Buffer.alloc(1)), false, 'the ring is full once the staged bytes land');
    pair.close();
  });

  it('a write larger than the ring completes as the peer reads, in order', async function () {
    const { pair, writer, drain } = setup();
    const data = Buffer.from(Array.from({ length: 10000 }, (_, i) => i % 253));
    let done = false;
    writer.write([data.subarray(0, 3000), data.subarray(3000)], (err) => {
      assert.ifError(err);
      done = true;
    });
    assert.equal(writer.hasPending, true);
    const got = [];
    while (!done) {
      got.push(drain());
      writer.flush(); // what the channel does when the peer's read wakes us
      await tick();
    }
    got.push(drain());
    assert.deepEqual(Buffer.concat(got), data);
    pair.close();
  });

  it('a full ring whose reader closed (fin, then gone) fails the write with EPIPE', function () {
    const { pair, host, writer } = setup();
    pair.server.setFin();
    pair.server.setLive(0);
    let error;
    writer.write([Buffer.alloc(8192)], (err) => (error = err));
    assert.equal(error.code, 'EPIPE');
    assert.equal(host.gone, 1);
    assert.equal(writer.stage(Buffer.alloc(1)), false, 'nothing is staged for a peer that is gone');
    pair.close();
  });

  it('a full ring whose reader reset (gone without fin: it closed with bytes unread) fails the write with ECONNRESET, as after a TCP RST', function () {
    const { pair, writer } = setup();
    pair.server.setLive(0);
    let error;
    writer.write([Buffer.alloc(8192)], (err) => (error = err));
    assert.equal(error.code, 'ECONNRESET');
    assert.equal(error.syscall, 'write');
    pair.close();
  });

  it('abort() fails the pending write with EPIPE', function () {
    const { pair, writer } = setup();
    let error;
    writer.write([Buffer.alloc(8192)], (err) => (error = err));
    writer.abort();
    assert.equal(error.code, 'EPIPE');
    pair.close();
  });
});
