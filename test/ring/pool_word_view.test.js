'use strict';
// The pool word (the control page's pool bytes) as JS sees it: one buffer
// per control mapping, shared by every endpoint on it and by the next
// connection of a kept link, valid while the pages are mapped and detached
// before they go; a closed connection's LazyOpen reads and writes nothing.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { native } = require('../../dist/native');
const { LazyOpen, POOL_ANNOUNCES, POOL_OPENED } = require('../../dist/pool/lazy_open');

/** kExtPoolWord in native/vchan_layout.h (= kExtCliFin): client fin, server fin, client pool, server pool. */
const POOL_WORD_OFFSET = 3072 + 4;

function ring(order = 12) {
  const size = 4096 + 2 * (1 << order);
  const fd = native.memfdCreate('pool-word-test', size);
  const m = new native.SharedMapping(fd, size, true);
  fs.closeSync(fd);
  const place = { control: m, controlOffset: 0, left: { mapping: m, offset: 4096, order }, right: { mapping: m, offset: 4096 + (1 << order), order } };
  const endpoint = (role, init = false) => new native.RingEndpoint({ role, init, ext: true, ...place });
  return { m, endpoint };
}

describe('ring: the pool word view', () => {
  it('endpoints on one control mapping share one buffer; what one writes the other reads; it outlives an endpoint, not the pages', () => {
    const { m, endpoint } = ring();
    const server = endpoint('server', true);
    const client = endpoint('client');
    const a = server.poolWord();
    const b = client.poolWord();
    assert.equal(a.buffer, b.buffer, 'one buffer per mapping, not one per endpoint');
    assert.equal(a.length, 1);
    assert.equal(a.byteOffset, b.byteOffset);
    new Uint8Array(a.buffer, a.byteOffset, 4)[3] = POOL_ANNOUNCES; // the server's pool byte
    assert.equal((b[0] >>> 24) & 0xff, POOL_ANNOUNCES);
    server.close();
    client.close();
    // A kept link's next connection: a new endpoint on the same pages sees the same bytes.
    const next = endpoint('server');
    assert.equal(next.poolWord().buffer, a.buffer);
    assert.equal((next.poolWord()[0] >>> 24) & 0xff, POOL_ANNOUNCES);
    next.close();
    m.unmap();
    assert.equal(a.buffer.byteLength, 0, 'detached before the pages were unmapped');
    assert.equal(a[0], undefined);
    assert.equal(b[0], undefined);
  });

  it('the view is the extension\'s pool word of the control page, and only that word', () => {
    const { m, endpoint } = ring();
    const ep = endpoint('server', true);
    const w = ep.poolWord();
    assert.equal(w.buffer.byteLength, 4, 'nothing else of the pages reaches JS through it');
    new Uint8Array(w.buffer)[2] = 0x5a; // the client's pool byte
    assert.equal(m.readByte(POOL_WORD_OFFSET + 2), 0x5a);
    assert.equal(ep.poolWord(), w, 'the same view again');
    ep.close();
    m.unmap();
  });

  it("a client that announces and goes live between the server's read of its pool byte and of its live byte: no early open (a hostile-peer test saw one under load)", () => {
    const { m, endpoint } = ring();
    const ep = endpoint('server', true);
    const word = ep.poolWord();
    const clientByte = new Uint8Array(word.buffer, word.byteOffset, 4);
    // The client's order: its pool byte (ANNOUNCES), then live. The server's
    // look: word[0] first, then the live byte (peerStarted) — the client acts
    // in between.
    let live = false;
    const lazy = new LazyOpen(word, 'server', () => {
      clientByte[2] |= POOL_ANNOUNCES;
      live = true;
      return live;
    });
    const before = word[0];
    assert.equal(lazy.peerOpened(before), false, 'a peer that announces opens on OPENED only');
    clientByte[2] |= POOL_OPENED;
    assert.equal(lazy.peerOpened(word[0]), true);
    // Control: a peer that never announces and is live: opened at once.
    clientByte[2] = 0;
    const plain = new LazyOpen(word, 'server', () => true);
    assert.equal(plain.peerOpened(word[0]), true);
    lazy.close();
    plain.close();
    ep.close();
    m.unmap();
  });

  it('a closed LazyOpen reads undefined and writes nothing, though the buffer lives on for the next connection', () => {
    const { m, endpoint } = ring();
    const ep = endpoint('server', true);
    const word = ep.poolWord();
    const lazy = new LazyOpen(word, 'server', () => true, true);
    lazy.announce();
    assert.equal((word[0] >>> 24) & 0xff, POOL_ANNOUNCES);
    lazy.close();
    assert.equal(lazy.word[0], undefined);
    assert.equal(lazy.peerOpened(lazy.word[0]), false);
    lazy.opened(); // after close: must not mark the next connection's byte
    lazy.announce();
    assert.equal((word[0] >>> 24) & 0xff, POOL_ANNOUNCES, 'the shared byte is as the connection left it');
    assert.equal(((word[0] >>> 24) & POOL_OPENED), 0);
    ep.close();
    m.unmap();
  });
});
