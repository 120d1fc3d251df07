'use strict';
// A view of a peer's pages that user code keeps outlives the peer: the Python
// client of hostile_peer.py (its own process, standard library only) sends one
// payload by reference and goes away (the connection resets) while the view,
// a subarray of it and its bare ArrayBuffer are kept. The extent counts as
// returned at close, the pages stay mapped under the view, and collections
// after the close neither unmap nor change them.
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const xenring = require('../..');

const PY = path.join(__dirname, 'hostile_peer.py');
const LENGTH = 10000;
const want = Buffer.from(Array.from({ length: LENGTH }, (_, i) => (i * 7 + 3) % 251));

const { collectAll: collect } = require('../helpers/collect');

describe('recycling review: a kept view outlives a hostile peer (Python process)', function () {
  this.timeout(30000);

  it('the peer goes away while a view of its pages is kept: still readable and unchanged after close and GCs', async () => {
    let socket = null;
    const srv = xenring.createServer((s) => {
      socket = s;
      s.on('error', () => {});
    });
    srv.listen({ port: 0 });
    await once(srv, 'listening');
    const kept = [];
    const py = spawn('python3', [PY, 'client', JSON.stringify({ path: srv.address().address, poolSize: 1 << 20, scenario: 'honest', length: LENGTH })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const [line] = await once(readline.createInterface({ input: py.stdout }), 'line');
    assert.equal(JSON.parse(line).toServer, 1 << 20);
    while (socket === null) await new Promise((r) => setTimeout(r, 5));
    socket.on('data', (d) => kept.push(d));
    while (kept.reduce((n, d) => n + d.length, 0) < LENGTH) await new Promise((r) => setTimeout(r, 5));
    const stats = socket.poolStats();
    assert.equal(stats.receivedByRef, 1, 'the payload came as a view');
    // A subarray and the bare ArrayBuffer: both keep the view.
    const view = kept[0];
    const part = view.subarray(100, 200);
    const ab = view.buffer;
    kept.length = 0;
    // The peer exits: its memfd and mapping are gone on its side.
    const closed = new Promise((r) => socket.once('close', r)); // (events.once would reject on the reset's 'error')
    py.stdin.end();
    await once(py, 'exit');
    await closed;
    assert.equal(socket.poolStats().releasedAtClose, 1, 'the held extent was counted as returned at close');
    srv.close();
    await collect();
    assert.ok(view.equals(want), 'the kept view changed');
    assert.ok(part.equals(want.subarray(100, 200)));
    assert.ok(Buffer.from(ab, view.byteOffset, LENGTH).equals(want));
  });
});
