'use strict';
// A pool payload delivered as a view costs the reader's turn one read, not
// its length: counted as bytes, each payload of 1 MiB or more used up the
// turn's budget (1 MiB) and the next one waited for a loop turn (and a
// state refresh), one payload per turn. A real sender process writes a burst
// of 4 MiB payloads; this process reads them once all are announced and
// counts payloads per turn.
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const xenring = require('../..');

const COUNT = 8;
const SIZE = 4 * 1024 * 1024;

describe('pool: payloads delivered as views and the turn budget', function () {
  it('takes several payloads of a burst in one loop turn, every one intact', async function () {
    let child = null;
    const perTurn = [];
    const got = await new Promise((resolve, reject) => {
      const seen = [];
      let inTurn = 0;
      let ticking = true;
      const tick = () => {
        if (inTurn > 0) perTurn.push(inTurn);
        inTurn = 0;
        if (ticking) setImmediate(tick);
      };
      let conn = null;
      let written = false; // the IPC message may come before the accept
      const server = xenring.createServer((sock) => {
        server.close();
        // Read once the whole burst is announced: what one pump may take is then the budget's choice alone.
        conn = sock;
        if (!written) sock.pause();
        sock.on('data', (d) => {
          seen.push({ length: d.length, first: d[0], last: d[d.length - 1], view: sock.release(d) });
          inTurn++;
        });
        sock.on('end', () => { ticking = false; sock.end(); resolve(seen); });
        sock.on('error', reject);
      });
      server.listen({ port: 0, transport: 'local' }, () => {
        child = fork(path.join(__dirname, 'turn_budget_peer.js'), [String(server.address().port), String(COUNT), String(SIZE)]);
        child.on('message', (m) => {
          if (m.written !== COUNT) return reject(new Error(m.error));
          written = true;
          if (conn) conn.resume();
        });
        setImmediate(tick);
      });
    });
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    assert.deepEqual(got.map((s) => [s.length, s.first, s.last, s.view]),
      Array.from({ length: COUNT }, (_, i) => [SIZE, i, i, true]), 'each payload whole, in order, as a view');
    // main took one per turn (8 turns); all eight fit one turn's reads.
    assert.ok(Math.max(...perTurn) >= COUNT / 2, `payloads per loop turn: ${perTurn}`);
  });
});
