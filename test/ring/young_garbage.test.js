'use strict';
// A closed connection must be young garbage: nothing of it may stay
// reachable from what V8's young-generation GC treats as alive. Two
// patterns did that in Node 20 (V8 11) and promoted every connection's whole
// graph (socket, channel, reader, writer, pool: ~7 KiB) to the old
// generation, where only a full GC frees it: an object literal with getters
// (the channel's writer host) and a closure assigned, where it was made, to a
// property (the pool's error callback). A new connection per request then
// spent 3x TCP's time in scavenges and page-faulted in old-space pages.
// This measures the growth of the old generation across young GCs only.
const assert = require('node:assert/strict');
const path = require('node:path');
const v8 = require('node:v8');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { native } = require('../../dist/native');
const { RingChannel } = require('../../dist/ring/channel');

/** Bytes a connection may leave in the old generation (TCP leaves ~0.9 KiB here: its parser and timers' bookkeeping; a retained xenring connection ~7 KiB). */
const PER_CONNECTION_MAX = 3 * 1024;
const CONNECTIONS = 4;
const ROUNDS = 9;

function oldAfterYoungGCs() {
  global.gc({ type: 'minor' });
  global.gc({ type: 'minor' });
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_used_size;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Old-generation growth per connection on the server's side and the client's, each round, both measured in fresh processes (fixtures/young_garbage_measure.js). */
async function measure(kind) {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', path.join(__dirname, 'fixtures', 'young_garbage_measure.js'), kind], { timeout: 60000 });
  const rounds = JSON.parse(stdout);
  return { server: median(rounds.server), client: median(rounds.client), rounds };
}

describe('ring: a closed connection is young garbage', function () {
  before(function () {
    if (typeof global.gc !== 'function') this.skip(); // run by mocha with --expose-gc (.mocharc)
  });

  it('a new connection per exchange leaves (almost) nothing in the old generation of either side, as TCP', async function () {
    const tcp = await measure('tcp');
    const ring = await measure('xenring');
    const say = `per connection, bytes (medians): xenring server ${ring.server} client ${ring.client}; TCP server ${tcp.server} client ${tcp.client}; xenring rounds ${JSON.stringify(ring.rounds)}`;
    assert.ok(ring.server <= PER_CONNECTION_MAX, `the server's connections outlive young GCs: ${say}`);
    assert.ok(ring.client <= PER_CONNECTION_MAX, `the client's connections outlive young GCs: ${say}`);
  });

  it('a RingChannel closed in place does not keep its owner past a young GC', function () {
    const order = 12;
    const size = 4096 + 2 * (1 << order);
    const fd = native.memfdCreate('young-garbage', size);
    const m = new native.SharedMapping(fd, size, true);
    native.closeFd(fd);
    const [waitFd, kickFd] = native.wakePair();
    const place = { control: m, controlOffset: 0, left: { mapping: m, offset: 4096, order }, right: { mapping: m, offset: 4096 + (1 << order), order } };
    new native.RingEndpoint({ role: 'server', init: true, ext: true, ...place }).close();
    // An owner with ~16 KiB of its own: kept, it shows.
    const once = () => {
      const endpoint = new native.RingEndpoint({ role: 'server', init: false, ext: true, ...place });
      endpoint.setNotifier(native.pipeNotifier(kickFd, waitFd));
      const link = { endpoint, waitFd, hangupFd: null, ext: true, release: () => endpoint.close() };
      const ballast = Array.from({ length: 1000 }, (_, i) => ({ i }));
      const owner = { ballast, channelData: () => true, channelEnd() {}, channelError() {}, channelActivity() {} };
      new RingChannel(link, owner, {}).close(true);
    };
    try {
      for (let i = 0; i < 50; i++) once();
      const grown = [];
      for (let r = 0; r < ROUNDS; r++) {
        const base = oldAfterYoungGCs();
        for (let i = 0; i < CONNECTIONS; i++) once();
        grown.push((oldAfterYoungGCs() - base) / CONNECTIONS);
      }
      assert.ok(median(grown) <= 1024, `each closed channel left ${median(grown)} bytes in the old generation`);
    } finally {
      native.closeFd(waitFd);
      native.closeFd(kickFd);
      try {
        m.unmap();
      } catch {
        /* an endpoint left open by a failure above: that failure is the one to report */
      }
    }
  });
});
