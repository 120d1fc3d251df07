'use strict';
// What the sender does with the reader's word (READER_FLAGS_OFFSET, written
// by the peer's receiver in shared memory): the policy in PoolSender, on a
// real region memfd, the word written through a second mapping as the peer
// writes it.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { createShared } = require('./pair');
const { poolNative, PoolSender } = require('../../dist/pool');
const { READER_FLAGS_OFFSET, READER_FLAGS_SET, READER_TAKES_VIEWS } = require('../../dist/pool/layout');

const MIB = 1 << 20;

/** A sender on a fresh 16 MiB region, the peer's view of it, and a way to write the reader's word. */
function sender(options = {}) {
  const shared = createShared({ poolBytes: 16 * MIB });
  const mapping = new poolNative.PoolMapping(shared.poolFd, shared.regionSize, true);
  const peer = new poolNative.PoolMapping(shared.poolFd, shared.regionSize, true);
  const s = new PoolSender({ mapping, poolBytes: shared.poolBytes, init: true, copyThreshold: 256 * 1024, copyMax: 4 * MIB, ...options });
  return {
    s,
    word: (flags) => peer.write(READER_FLAGS_OFFSET, Uint8Array.of(flags, 0, 0, 0)),
    close() {
      s.close();
      peer.close();
      fs.closeSync(shared.poolFd);
      fs.closeSync(shared.ringFd);
    },
  };
}

describe('pool: the reader\'s word and what the sender does with it', function () {
  it('locally (ringForCopyingReaders) a copying reader gets ordinary Buffers through the ring; on Xen\'s terms by reference', () => {
    for (const ringForCopyingReaders of [true, false]) {
      const t = sender({ ringForCopyingReaders });
      try {
        t.word(READER_FLAGS_SET); // written, no views: it copies
        const sent = t.s.send(Buffer.alloc(MIB, 1), 0);
        assert.equal(sent, !ringForCopyingReaders, `ringForCopyingReaders ${ringForCopyingReaders}`);
        assert.equal(t.s.stats.inUse, sent ? MIB : 0, 'a refused copy left its extent taken');
      } finally {
        t.close();
      }
    }
  });

  it('a word not written yet refuses nothing, and is asked again later', () => {
    const t = sender({ ringForCopyingReaders: true });
    try {
      assert.equal(t.s.send(Buffer.alloc(MIB, 1), 0), true, 'unknown: by reference');
      t.word(READER_FLAGS_SET | READER_TAKES_VIEWS);
      assert.equal(t.s.send(Buffer.alloc(MIB, 2), 0), true, 'views: by reference');
      t.word(READER_FLAGS_SET);
      assert.equal(t.s.send(Buffer.alloc(MIB, 3), 0), false, 'copies: the ring');
      t.word(READER_FLAGS_SET | READER_TAKES_VIEWS);
      assert.equal(t.s.send(Buffer.alloc(MIB, 4), 0), false, 'a reader that copied copies for good');
    } finally {
      t.close();
    }
  });

  it('runs: an older receiver\'s bit 0 alone means views; nothing written, on a link without lazy opening, no run', () => {
    let t = sender();
    try {
      t.word(READER_TAKES_VIEWS);
      const run = t.s.openRun();
      assert.ok(run !== null, 'no run for a reader that takes views (bit 0 only)');
      t.s.dropRun(run);
    } finally {
      t.close();
    }
    t = sender();
    try {
      assert.equal(t.s.openRun(), null, 'a run for a reader that said nothing');
    } finally {
      t.close();
    }
  });
});
