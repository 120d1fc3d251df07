'use strict';
// The channel's lifecycle table, alone.
const assert = require('node:assert/strict');
const { Lifecycle, Phase } = require('../../dist/ring/lifecycle');

function run(events) {
  const l = new Lifecycle();
  for (const e of events) l.on(e);
  return l;
}

describe('ring: Lifecycle', function () {
  it('end and peer-gone combine in either order; close is final', function () {
    assert.equal(run(['ended', 'peerGone']).phase, Phase.PeerClosed);
    assert.equal(run(['peerGone', 'ended']).phase, Phase.PeerClosed);
    const l = run(['ended']);
    assert.deepEqual([l.ended, l.peerGone, l.closed], [true, false, false]);
    assert.equal(run(['peerGone', 'close', 'ended', 'drain']).phase, Phase.Closed);
  });

  it('draining remembers whether end of data was already delivered', function () {
    assert.equal(run(['drain']).phase, Phase.Draining);
    assert.equal(run(['drain', 'ended']).phase, Phase.DrainingEnded);
    assert.equal(run(['ended', 'drain']).phase, Phase.DrainingEnded);
    assert.equal(run(['drain', 'peerGone']).draining, true, 'the drain check reads the live byte itself');
    assert.equal(run(['drain', 'ended']).ended, true);
  });
});
