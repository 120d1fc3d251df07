'use strict';
// Review of runs (lib/ring/writer.ts, PoolSender.openRun()): opening a run
// takes the peer's completions first, as every send does. A hostile peer (a
// Python client in its own process, test/pool/hostile_peer.py) says it takes
// views, never reads the ring, and returns an extent we never sent: our
// next large write finds the ring full and tries to open a run. The
// connection must fail with EPROTO ('error', then 'close'), as for any other
// refused completion; write() itself must not throw, and its callback must
// run with the error.
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const xenring = require('../..');
const { slice } = require('../helpers/pattern');
const { runsFromTheStart } = require('./local_pair');

const PY = path.join(__dirname, 'hostile_peer.py');

describe('pool: runs, review — a hostile peer while a run opens', function () {
  this.timeout(30000);
  runsFromTheStart(); // these cases are about runs, not about when a connection starts them

  it('a forged completion taken when a run opens fails the connection with EPROTO; write() does not throw', async () => {
    let conn = null;
    const srv = xenring.createServer((s) => (conn = s));
    srv.listen({ port: 0 });
    await once(srv, 'listening');
    const py = spawn('python3', [PY, 'client', JSON.stringify({ path: srv.address().address, poolSize: 16 << 20, scenario: 'views-forged-completion' })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const lines = readline.createInterface({ input: py.stdout });
      const [line] = await once(lines, 'line');
      const report = JSON.parse(line);
      assert.equal(report.error, undefined);
      assert.equal(report.toClient, 16 << 20, 'a pool large enough for runs');
      const deadline = Date.now() + 10000;
      while (conn === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      assert.ok(conn, 'the Python client connected');
      let error = null;
      conn.on('error', (err) => (error = err));
      const closed = new Promise((r) => conn.once('close', r)); // (events.once would reject on 'error')
      // The peer never reads: writes of 128 KiB (under the copy-in threshold,
      // so through the ring) fill it.
      let pos = 0;
      while (pos < report.ringBytes) {
        const n = Math.min(128 * 1024, report.ringBytes - pos);
        await new Promise((resolve, reject) => conn.write(Buffer.from(slice(pos, n)), (err) => (err ? reject(err) : resolve())));
        pos += n;
      }
      assert.equal(error, null);
      py.stdin.write('go\n');
      const [forged] = await once(lines, 'line');
      assert.equal(JSON.parse(forged).forged, true);
      // >= 16 KiB, ring full: opens a run, which takes completions first.
      const results = [];
      try {
        conn.write(Buffer.from(slice(pos, 32768)), (err) => results.push(err ? err.code : 'ok'));
      } catch (err) {
        assert.fail(`write() threw ${err.code}: ${err.message}`);
      }
      await closed;
      assert.ok(error, "the connection failed with 'error'");
      assert.equal(error.code, 'EPROTO');
      assert.deepEqual(results, ['EPROTO'], 'the write callback ran with the error');
    } finally {
      py.stdin.end();
      await once(py, 'exit');
      srv.close();
    }
  });
});
