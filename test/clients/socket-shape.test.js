'use strict';
// Every xenring.Socket shares one hidden class, as net.Socket's do: code that
// handles sockets (a client library's writes, the stream internals) stays
// optimized from one connection to the next. When `new xenring.Socket()` ran
// with the callable proxy as new.target, V8 gave each socket a map of its own,
// and each new pg connection deoptimized that code again (wrong map). Checked
// in a child with V8's natives syntax, after real bytes went both ways.
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
require('../helpers/fixtures');

const child = `
const xenring = require(${JSON.stringify(path.join(__dirname, '..', '..'))});
const port = 'shape-' + process.pid;
const server = xenring.createServer((s) => s.pipe(s));
server.listen(port, async () => {
  const echo = (s) => new Promise((resolve, reject) => {
    let got = '';
    s.on('data', (d) => { got += d; if (got === 'ping') { s.end(); resolve(got); } });
    s.on('error', reject);
    s.connect(port, () => s.write('ping'));
  });
  class Sub extends xenring.Socket { kind() { return 'sub'; } }
  const made = [new xenring.Socket(), new xenring.Socket(), xenring.Socket(), new Sub(), new Sub()];
  const echoed = await Promise.all(made.map(echo));
  const [a, b, c, d, e] = made;
  console.log(JSON.stringify({
    echoed,
    newNew: %HaveSameMap(a, b),
    newCall: %HaveSameMap(a, c),
    subSub: %HaveSameMap(d, e),
    sub: d instanceof Sub && d instanceof xenring.Socket && d.kind() === 'sub',
    servers: %HaveSameMap(new xenring.Server(), xenring.Server()),
  }));
  for (const s of made) s.destroy();
  server.close();
});
`;

describe('xenring.Socket instances share one hidden class', function () {
  this.timeout(60000);

  it('new Socket(), Socket() and a subclass each give sockets of one shape, after moving real bytes', () => {
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '-e', child], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop());
    assert.deepEqual(r.echoed, ['ping', 'ping', 'ping', 'ping', 'ping']);
    assert.equal(r.sub, true, 'a subclass keeps its own prototype (new.target)');
    assert.equal(r.newNew, true, 'two new xenring.Socket() share a hidden class');
    assert.equal(r.newCall, true, 'Socket() without new gives the same hidden class');
    assert.equal(r.subSub, true, 'two sockets of one subclass share a hidden class');
    assert.equal(r.servers, true, 'Server instances too');
  });
});
