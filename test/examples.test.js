'use strict';
// The examples run as written and do what they say.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFile } = require('node:child_process');
require('./helpers/fixtures');

function run(file, args = []) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, '..', 'examples', file), ...args], { timeout: 60000 }, (err, stdout, stderr) =>
      err ? reject(Object.assign(err, { stdout, stderr })) : resolve(stdout),
    );
  });
}

describe('examples', function () {
  it('stream-demo --quick verifies the stream and reports throughput and round trips', async function () {
    const out = await run('stream-demo.js', ['--quick']);
    assert.match(out, /bulk: 256 MiB in [0-9.]+ s = [0-9.]+ GB\/s .*verified/);
    assert.match(out, /ping-pong: 1800 round trips .* median [0-9.]+ µs/);
  });

  it('echo.js echoes the message back', async function () {
    const out = await run('echo.js');
    assert.match(out, /client: echoed back: hello over a shared-memory ring/);
  });

  it('http.js makes three keep-alive requests', async function () {
    const out = await run('http.js');
    for (const n of [3, 2, 1]) assert.match(out, new RegExp(`client: 200 you asked for /hello/${n} over a ring`));
  });

  it('pipe-file.js copies a file byte for byte', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-pipe-'));
    const input = path.join(dir, 'in.bin');
    const output = path.join(dir, 'out.bin');
    const data = crypto.randomBytes(5 << 20);
    fs.writeFileSync(input, data);
    const out = await run('pipe-file.js', [input, output]);
    const digest = crypto.createHash('sha256').update(data).digest('hex');
    assert.equal(out.split(digest).length - 1, 2, out);
    assert.ok(fs.readFileSync(output).equals(data));
    fs.rmSync(dir, { recursive: true });
  });
});
