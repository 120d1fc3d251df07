'use strict';
// RingReader alone: real rings in one process, no transport or watcher.
const assert = require('node:assert/strict');
const { RingReader } = require('../../dist/ring/reader');
const { VchanState, finish, reset } = require('../../dist/ring/vchan_state');
const { ringPair } = require('./pair');

function setup(options = {}, sinkExtra = {}) {
  const pair = ringPair(14);
  const state = new VchanState(pair.server, true);
  const got = { chunks: [], ends: 0, errors: [] };
  const sink = {
    channelData: (c) => (got.chunks.push(Buffer.from(c)), true),
    channelActivity() {},
    ...sinkExtra,
  };
  const host = { endOfData: () => got.ends++, fail: (e) => got.errors.push(e) };
  const reader = new RingReader(state, sink, host, { maxChunk: 4096, spinMicros: 0, ...options });
  return { pair, state, reader, got };
}

const immediate = () => new Promise((r) => setImmediate(r));

describe('ring: RingReader', function () {
  it('delivers what the peer wrote as pooled chunks, in order, then end of data once fin is set', function () {
    const { pair, reader, got } = setup();
    const data = Buffer.from(Array.from({ length: 10000 }, (_, i) => i % 251));
    assert.equal(pair.client.write(data), data.length);
    reader.resume();
    // The first read fills the connection's first room (read_pool.ts FIRST_ROOM), the rest go by maxChunk.
    assert.deepEqual(got.chunks.map((c) => c.length), [4032, 4096, 1872]);
    assert.deepEqual(Buffer.concat(got.chunks), data);
    assert.equal(reader.bytesRead, 10000);
    assert.equal(got.ends, 0, 'no end while the peer may still write');
    finish(pair.client);
    reader.resume();
    assert.equal(got.ends, 1);
    assert.equal(reader.isReading, false);
    pair.close();
  });

  it('reads into the owner\'s buffer (onread sink) and stops when the owner says so', function () {
    const target = Buffer.alloc(100);
    const reads = [];
    const { pair, reader } = setup({}, {
      channelTarget: () => target,
      channelRead: (n) => (reads.push(target.subarray(0, n).toString()), reads.length < 2),
    });
    pair.client.write(Buffer.from('x'.repeat(250)));
    reader.resume();
    assert.deepEqual(reads.map((r) => r.length), [100, 100], 'paused after the second read');
    assert.equal(reader.isReading, false);
    reader.resume();
    assert.deepEqual(reads.map((r) => r.length), [100, 100, 50]);
    pair.close();
  });

  it('yields to the event loop after a turn\'s budget of reads, then goes on', async function () {
    const { pair, reader, got } = setup({ turnReads: 2 });
    assert.equal(pair.client.write(Buffer.alloc(5 * 3000, 7)), 15000);
    reader.resume();
    assert.equal(got.chunks.length, 2, 'two reads, then yield');
    const seen = [];
    for (let turn = 0; turn < 20 && got.chunks.length < 4; turn++) {
      await immediate();
      seen.push(got.chunks.length);
    }
    assert.equal(got.chunks.length, 4, `then it went on by itself: ${seen}`);
    assert.ok(seen.every((n) => n % 2 === 0), `at most two reads per turn: ${seen}`);
    pair.close();
  });

  it('a peer that leaves without fin reads as end of data for the host to judge (reset)', function () {
    const { pair, state, reader, got } = setup();
    reset(pair.client);
    reader.resume();
    assert.equal(got.ends, 1);
    assert.equal(state.peerReset, true);
    pair.close();
  });

  it('a ring error fails the reader (reported to the host), not the process', function () {
    const { pair, reader, got } = setup();
    pair.client.write(Buffer.alloc(10));
    pair.server.close(); // then any call is ERR_SOCKET_CLOSED, a ring error
    reader.resume();
    assert.equal(got.errors.length, 1);
    assert.equal(got.errors[0].code, 'ERR_SOCKET_CLOSED');
    pair.client.close();
  });
});
