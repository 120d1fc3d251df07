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
  it('stages small writes and moves them into the ring together at the end of the tick', async function () {
    const { pair, writer, drain } = setup();
    assert.equal(writer.stage(Buffer.from('ab')), true);
    assert.equal(writer.stage(Buffer.from('cd')), true);
    assert.equal(pair.server.readable(), 0, 'nothing in the ring yet');
    await tick();
    assert.equal(drain().toString(), 'abcd');
    assert.equal(writer.bytesWritten, 4);
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
