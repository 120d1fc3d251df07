'use strict';
// The `xenring` command, run as real processes: help and exit codes,
// cat/listen moving real bytes both ways, proxy chains tcp -> ring -> tcp
// with many connections, half-close, refused targets and a graceful stop,
// status, bench.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { once } = require('node:events');
require('../helpers/fixtures');
const xenring = require('../..');
const { startCli, runCli, killAll } = require('./run-cli');

const uniq = (tag) => `cli-${tag}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;

/**
 * A TCP server that echoes everything and, once the client has ended its
 * side (half-close), appends the SHA-256 of what it received and ends.
 */
async function hashEchoServer() {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const h = crypto.createHash('sha256');
    s.on('data', (d) => {
      h.update(d);
      s.write(d);
    });
    s.on('end', () => s.end(h.digest()));
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** Sends `data` through a TCP port, half-closes, resolves with everything received until the peer's end. */
function tcpExchange(port, data) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const got = [];
    s.on('data', (d) => got.push(d));
    s.on('error', reject);
    s.on('end', () => {
      s.end();
      resolve(Buffer.concat(got));
    });
    s.on('connect', () => s.end(data));
  });
}

function checkEcho(reply, data) {
  assert.equal(reply.length, data.length + 32, 'echo plus a 32-byte hash');
  assert.ok(reply.subarray(0, data.length).equals(data), 'echoed bytes differ');
  assert.ok(reply.subarray(data.length).equals(crypto.createHash('sha256').update(data).digest()), 'server received other bytes');
}

describe('xenring command', function () {

  describe('help, usage and exit codes', function () {
    // These commands are independent and short: start them all at once, each test awaits its own.
    const started = new Map();
    const result = (args) => {
      const key = args.join(' ');
      if (!started.has(key)) started.set(key, runCli(args));
      return started.get(key);
    };
    const commands = ['proxy', 'cat', 'listen', 'status', 'bench'];
    before(function () {
      for (const cmd of commands) result([cmd, '--help']);
      for (const [args] of usageCases) result(args);
    });

    for (const cmd of commands) {
      it(`${cmd} --help prints its usage on stdout and exits 0`, async function () {
        const r = await result([cmd, '--help']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(String(r.stdout), new RegExp(`^Usage: xenring ${cmd}`));
        assert.equal(r.stderr, '');
      });
    }

    it('a command loads its own code only: --help nothing of the library, cat neither bench nor status', function () {
      // A fresh process runs main() and reports which of our compiled modules it loaded.
      const loadedBy = (args) => {
        const root = path.join(__dirname, '..', '..');
        const script = `
          const path = require('node:path');
          let code = null;
          process.stdout.write = () => true; process.stderr.write = () => true;
          require(${JSON.stringify(path.join(root, 'dist', 'cli', 'main.js'))}).main(${JSON.stringify(args)}, (c) => { code = c; });
          const files = Object.keys(require.cache).map((k) => path.relative(${JSON.stringify(root)}, k)).filter((k) => k.startsWith('dist/'));
          require('node:fs').writeSync(1, JSON.stringify({ code, files }));
        `;
        return JSON.parse(require('node:child_process').execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 }));
      };
      const help = loadedBy(['--help']);
      assert.equal(help.code, 0);
      assert.deepEqual(help.files.filter((f) => f !== 'dist/cli/main.js' && f !== 'dist/cli/options.js'), []);
      const cat = loadedBy(['cat', '--no-such-option']);
      assert.equal(cat.code, 2);
      assert.ok(cat.files.includes('dist/cli/cat.js'), 'cat itself');
      assert.ok(!cat.files.includes('dist/cli/bench.js') && !cat.files.includes('dist/cli/status.js') && !cat.files.includes('dist/cli/proxy.js'), cat.files.join(' '));
      const status = loadedBy(['status', '--no-such-option']);
      assert.equal(status.code, 2);
      assert.ok(status.files.includes('dist/cli/status.js') && !status.files.includes('dist/cli/cat.js'), status.files.join(' '));
    });

    it('no command prints the command list on stderr and exits 2; --help on stdout, exit 0', async function () {
      const r = await runCli([]);
      assert.equal(r.code, 2);
      assert.equal(String(r.stdout), '');
      assert.match(String(r.stderr), /Commands:[\s\S]*proxy[\s\S]*cat[\s\S]*listen[\s\S]*status[\s\S]*bench/);
      const help = await runCli(['--help']);
      assert.equal(help.code, 0);
      assert.match(String(help.stdout), /Commands:/);
    });

    const usageCases = [
      [['frobnicate'], /^xenring: unknown command 'frobnicate' \(see 'xenring --help'\)\n$/],
      [['proxy', '--listen', 'tcp:127.0.0.1:0'], /^xenring proxy: --connect ADDR is required/],
      [['proxy', '--listen', 'udp:1', '--connect', 'ring:1'], /^xenring proxy: --listen 'udp:1': expected tcp:HOST:PORT, unix:PATH or ring:\[DOMID\/\]PORT/],
      [['cat', 'ring:bad/name'], /^xenring cat: address 'ring:bad\/name': expected ring:\[DOMID\/\]PORT/],
      // As the library: no '.' in a service name (bad usage, not a failed connect).
      [['cat', 'ring:a.b'], /^xenring cat: address 'ring:a\.b': expected ring:\[DOMID\/\]PORT/],
      [['cat', 'tcp:host:99999'], /^xenring cat: address 'tcp:host:99999': port must be 0\.\.65535/],
      [['cat'], /^xenring cat: missing the address/],
      [['listen', '--bogus', '1'], /^xenring listen: unknown option '--bogus'/],
      [['cat', '--transport', 'carrier-pigeon', 'ring:1'], /^xenring cat: --transport 'carrier-pigeon': expected 'local' or 'xen'/],
      [['status', 'extra'], /^xenring status: unexpected argument 'extra'/],
      // Longer than a UNIX socket's address holds: the bind cut it short and left that file behind.
      [['proxy', '--listen', `unix:/tmp/${'a'.repeat(120)}`, '--connect', 'ring:1'], /^xenring proxy: --listen 'unix:\/tmp\/a+': path longer than 107 bytes/],
    ];
    for (const [args, re] of usageCases) {
      it(`'${args.join(' ')}' fails with exit 2 and one line`, async function () {
        const r = await result(args);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, re);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
        assert.equal(r.stdout.length, 0);
      });
    }

    it('cat to a port nobody listens on exits 1 with one ECONNREFUSED line', async function () {
      const r = await runCli(['cat', `ring:${uniq('nobody')}`], { input: 'x' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^xenring cat: ring:cli-nobody-\S+: connect ECONNREFUSED/);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    });

    it('listen on a port already in use exits 1 with one EADDRINUSE line', async function () {
      const port = uniq('busy');
      const server = xenring.createServer(() => {}).listen(port);
      await once(server, 'listening');
      try {
        const r = await runCli(['listen', port]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^xenring listen: cannot listen on ring:cli-busy-\S+: .*EADDRINUSE/);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      } finally {
        server.close();
      }
    });
  });

  describe('cat and listen', function () {
    afterEach(killAll);
    it('move 2 MiB each way between two processes and exit 0', async function () {
      const port = uniq('nc');
      const toListener = crypto.randomBytes(2 << 20);
      const toCat = crypto.randomBytes(2 << 20);
      const l = startCli(['listen', port]);
      await l.waitStderr(/listening on ring:\S+/);
      l.child.stdin.end(toCat);
      const c = await runCli(['cat', `ring:${port}`], { input: toListener });
      const lr = await l.exited;
      assert.equal(c.code, 0, c.stderr);
      assert.equal(lr.code, 0, lr.stderr);
      assert.ok(c.stdout.equals(toCat), `cat got ${c.stdout.length} bytes`);
      assert.ok(lr.stdout.equals(toListener), `listen got ${lr.stdout.length} bytes`);
    });

    it("stdout closed early (| head): one line naming the command, exit 1", async function () {
      const port = uniq('head');
      const l = startCli(['listen', port]);
      await l.waitStderr(/listening on ring:\S+/);
      l.child.stdin.end();
      l.child.stdout.destroy(); // the reader is gone: the next write to the pipe is EPIPE
      const c = await runCli(['cat', `ring:${port}`], { input: crypto.randomBytes(8 << 20) });
      const r = await l.exited;
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trimEnd().split('\n').filter((line) => !/listening on/.test(line));
      assert.deepEqual(lines, ['xenring listen: write EPIPE'], r.stderr);
      assert.ok(c.code === 0 || c.code === 1, `cat: ${c.code} ${c.stderr}`);
    });

    it('a second listen on the same unix: path fails with EADDRINUSE and leaves the first one serving its peer', async function () {
      // Its stale-socket check connected to the live socket: the first
      // listen took that probe for its one peer and exited with nothing,
      // and the real sender then found no socket (a new user's walkthrough).
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-cli-'));
      const sock = path.join(dir, 'l.sock');
      const data = crypto.randomBytes(64 << 10);
      const first = startCli(['listen', `unix:${sock}`]);
      await first.waitStderr(/listening on unix:/);
      first.child.stdin.end();
      const second = await runCli(['listen', `unix:${sock}`]);
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, /EADDRINUSE/);
      const c = await runCli(['cat', `unix:${sock}`], { input: data });
      assert.equal(c.code, 0, c.stderr);
      const r = await first.exited;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(data), `the first listen got ${r.stdout.length} bytes`);
    });

    it('SIGINT while listen waits for its peer: exit 130, its socket file removed (ring port and unix: path)', async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-cli-'));
      const port = uniq('sig');
      for (const [addr, file] of [[port, path.join(dir, `${port}.sock`)], [`unix:${path.join(dir, 'u.sock')}`, path.join(dir, 'u.sock')]]) {
        const l = startCli(['listen', '--dir', dir, addr]);
        await l.waitStderr(/listening on/);
        assert.ok(fs.existsSync(file), `${file} while listening`);
        l.child.kill('SIGINT');
        const r = await l.exited;
        assert.equal(r.code, 130, r.stderr);
        assert.ok(!fs.existsSync(file), `${file} left behind`);
      }
    });

    it('--progress reports on stderr while stdout carries only the data', async function () {
      const port = uniq('prog');
      const data = crypto.randomBytes(1 << 20);
      const l = startCli(['listen', '--progress', port]);
      await l.waitStderr(/listening on/);
      l.child.stdin.end();
      const c = await runCli(['cat', '--progress', `ring:${port}`], { input: data });
      const lr = await l.exited;
      assert.equal(c.code, 0, c.stderr);
      assert.ok(lr.stdout.equals(data));
      assert.match(lr.stderr, /xenring listen: done in [0-9.]+ s: out 0 B .*, in 1\.0 MiB/);
      assert.match(c.stderr, /xenring cat: done in [0-9.]+ s: out 1\.0 MiB/);
    });
  });

  describe('proxy', function () {
    afterEach(killAll);
    let echo;
    beforeEach(async function () {
      echo = await hashEchoServer();
    });
    afterEach(function () {
      echo.close();
    });

    /** proxy tcp:127.0.0.1:0 -> ring:P and proxy ring:P -> tcp:target (the echo server); resolves { front, back, tcpPort }. */
    async function chain(extra = [], target = echo.address().port) {
      const ringPort = uniq('px');
      const back = startCli(['proxy', '--listen', `ring:${ringPort}`, '--connect', `tcp:127.0.0.1:${target}`, ...extra]);
      await back.waitStderr(/listening on ring:/);
      const front = startCli(['proxy', '--listen', 'tcp:127.0.0.1:0', '--connect', `ring:${ringPort}`, ...extra]);
      const m = await front.waitStderr(/listening on tcp:127\.0\.0\.1:([0-9]+)/);
      return { front, back, tcpPort: Number(m[1]), ringPort };
    }

    it('tcp -> ring -> tcp: 24 connections at once, every byte echoed, half-close forwarded', async function () {
      const { front, back, tcpPort } = await chain();
      const payloads = Array.from({ length: 24 }, (_, i) => crypto.randomBytes(1000 + i * 37000));
      const replies = await Promise.all(payloads.map((p) => tcpExchange(tcpPort, p)));
      replies.forEach((r, i) => checkEcho(r, payloads[i]));
      front.child.kill('SIGTERM');
      back.child.kill('SIGTERM');
      assert.equal((await front.exited).code, 0);
      assert.equal((await back.exited).code, 0);
    });

    it('backpressure: a receiver that stops reading stalls the sender, the proxies hold no backlog, then every byte arrives', async function () {
      // A TCP server that reads nothing until released, then hashes what it gets.
      let held = null;
      const sink = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => (held = s));
      sink.listen(0, '127.0.0.1');
      await once(sink, 'listening');
      try {
        const { front, back, tcpPort } = await chain([], sink.address().port);
        const rss = (p) => Number(/VmRSS:\s+([0-9]+) kB/.exec(fs.readFileSync(`/proc/${p.child.pid}/status`, 'utf8'))[1]) * 1024;
        const before = [rss(front), rss(back)];
        const data = crypto.randomBytes(64 << 20);
        const s = net.connect({ port: tcpPort, host: '127.0.0.1', allowHalfOpen: true });
        s.on('error', () => {});
        await once(s, 'connect');
        // In 64 KiB writes: writableLength counts a write until all of it is
        // out, so one 64 MiB write would read 64 MiB however much had left.
        for (let i = 0; i < data.length; i += 64 << 10) s.write(data.subarray(i, i + (64 << 10)));
        s.end();
        // Wait until the pipeline is full: the sender's backlog stops shrinking
        // (sampled until it stays put for 300 ms; bounded by the test's timeout).
        let last = -1;
        while (s.writableLength !== last) {
          last = s.writableLength;
          await new Promise((r) => setTimeout(r, 300));
        }
        assert.ok(held, 'the sink got the connection');
        // Kernel socket buffers and the 1 MiB ring hold some of it; most must still be with the sender.
        assert.ok(s.writableLength > 32 << 20, `only ${s.writableLength} bytes still waiting at the sender: someone buffered the rest`);
        const grown = [rss(front) - before[0], rss(back) - before[1]];
        assert.ok(Math.max(...grown) < 24 << 20, `a proxy grew by ${grown.map((g) => (g / 1048576).toFixed(1))} MiB while stalled`);
        // Released: everything arrives, in order, then the end.
        const h = crypto.createHash('sha256');
        let n = 0;
        held.on('data', (d) => (h.update(d), (n += d.length)));
        held.resume();
        await once(held, 'end');
        assert.equal(n, data.length);
        assert.ok(h.digest().equals(crypto.createHash('sha256').update(data).digest()), 'the sink got other bytes');
        held.end();
        s.destroy();
        front.child.kill('SIGTERM');
        back.child.kill('SIGTERM');
        assert.equal((await front.exited).code, 0);
        assert.equal((await back.exited).code, 0);
      } finally {
        held?.destroy();
        sink.close();
      }
    });

    it('unix -> ring -> tcp with --progress: totals on stderr', async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-cli-'));
      const sock = path.join(dir, 'front.sock');
      const ringPort = uniq('pu');
      const back = startCli(['proxy', '--listen', `ring:${ringPort}`, '--connect', `tcp:127.0.0.1:${echo.address().port}`, '--progress']);
      await back.waitStderr(/listening on/);
      const front = startCli(['proxy', '--listen', `unix:${sock}`, '--connect', `ring:${ringPort}`]);
      await front.waitStderr(/listening on unix:/);
      const data = crypto.randomBytes(3 << 20);
      const reply = await new Promise((resolve, reject) => {
        const s = net.connect({ path: sock, allowHalfOpen: true });
        const got = [];
        s.on('data', (d) => got.push(d)).on('error', reject);
        s.on('end', () => resolve(Buffer.concat(got)));
        s.end(data);
      });
      checkEcho(reply, data);
      back.child.kill('SIGINT');
      front.child.kill('SIGINT');
      const b = await back.exited;
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stderr, /done in [0-9.]+ s: out 3\.0 MiB .*, in 3\.0 MiB/);
      assert.equal((await front.exited).code, 0);
      assert.ok(!fs.existsSync(sock), 'the UNIX socket file is removed on exit');
    });

    it('a target that refuses: the client connection closes, one line on stderr, the proxy keeps serving', async function () {
      const p = startCli(['proxy', '--listen', 'tcp:127.0.0.1:0', '--connect', `ring:${uniq('gone')}`]);
      const port = Number((await p.waitStderr(/listening on tcp:127\.0\.0\.1:([0-9]+)/))[1]);
      for (let i = 0; i < 2; i++) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {}); // reset, as the target's refusal is passed on
        s.resume();
        await new Promise((resolve) => s.once('close', resolve));
      }
      await p.waitStderr(/#2: cannot reach ring:cli-gone-\S+: connect ECONNREFUSED/);
      p.child.kill('SIGTERM');
      assert.equal((await p.exited).code, 0);
    });

    it('a second SIGTERM resets the open connections (exit 143): a ring client sees ECONNRESET, not an end', async function () {
      // A server that streams 256 MiB through the proxy; the ring client reads
      // slowly, so the transfer is open when the proxy is stopped twice. (A
      // TCP client of a proxy gets an RST, which Node itself reports as an
      // end now and then under load: 2 of 20 plain net resetAndDestroy()s.)
      const big = net.createServer((s) => {
        const chunk = Buffer.alloc(1 << 20, 1);
        let sent = 0;
        const more = () => {
          while (sent < 256) {
            sent++;
            if (!s.write(chunk)) return void s.once('drain', more);
          }
          s.end();
        };
        s.on('error', () => {});
        more();
      });
      big.listen(0, '127.0.0.1');
      await once(big, 'listening');
      const ringPort = uniq('reset');
      const proxy = startCli(['proxy', '--listen', `ring:${ringPort}`, '--connect', `tcp:127.0.0.1:${big.address().port}`]);
      await proxy.waitStderr(/listening on ring:/);
      try {
        const s = xenring.connect({ port: ringPort });
        let got = 0;
        const outcome = new Promise((resolve) => {
          s.on('end', () => resolve(`end after ${got} bytes`));
          s.on('error', (e) => resolve(e.code));
        });
        s.on('data', (d) => {
          got += d.length;
          s.pause();
          setTimeout(() => s.resume(), 5);
        });
        while (got < 4 << 20) await new Promise((r) => setTimeout(r, 10));
        proxy.child.kill('SIGTERM');
        await proxy.waitStderr(/SIGTERM: not accepting; waiting for 1 connection/);
        proxy.child.kill('SIGTERM');
        assert.equal((await proxy.exited).code, 143);
        assert.equal(await outcome, 'ECONNRESET');
        assert.ok(got < 256 << 20, `the transfer was cut (${got} bytes)`);
      } finally {
        big.close();
      }
    });

    it('SIGTERM gives up a connection whose target never answers, and exits 0 at once', async function () {
      // A ring server stopped with SIGSTOP: the proxy's connect to it waits for an answer that never comes.
      const ringPort = uniq('stopped');
      const lib = JSON.stringify(require.resolve('../..'));
      const target = require('node:child_process').spawn(process.execPath, ['-e', `require(${lib}).createServer(() => {}).listen(${JSON.stringify(ringPort)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await once(target.stdout, 'data');
        target.kill('SIGSTOP');
        const p = startCli(['proxy', '--listen', 'tcp:127.0.0.1:0', '--connect', `ring:${ringPort}`]);
        const port = Number((await p.waitStderr(/listening on tcp:127\.0\.0\.1:([0-9]+)/))[1]);
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        const clientClosed = new Promise((resolve) => s.once('close', resolve)); // reset: ECONNRESET, then 'close'
        await once(s, 'connect');
        await new Promise((r) => setTimeout(r, 300)); // the proxy's connect to the stopped server is pending
        p.child.kill('SIGTERM');
        const r = await Promise.race([p.exited, new Promise((resolve) => setTimeout(resolve, 5000, { code: 'still running' }))]);
        assert.equal(r.code, 0, r.stderr);
        await clientClosed;
      } finally {
        target.kill('SIGKILL');
      }
    });

    it('SIGTERM: stops accepting, lets an open transfer finish, then exits 0', async function () {
      const { front, back, tcpPort } = await chain();
      const first = crypto.randomBytes(256 << 10);
      const rest = crypto.randomBytes(768 << 10);
      const s = net.connect({ port: tcpPort, host: '127.0.0.1', allowHalfOpen: true });
      const got = [];
      s.on('data', (d) => got.push(d));
      const ended = once(s, 'end');
      await once(s, 'connect');
      s.write(first);
      while (Buffer.concat(got).length < first.length) await new Promise((r) => setTimeout(r, 10));
      front.child.kill('SIGTERM');
      await front.waitStderr(/SIGTERM: not accepting; waiting for 1 connection/);
      // New connections are refused now ...
      const refused = net.connect(tcpPort, '127.0.0.1');
      const [err] = await once(refused, 'error');
      assert.equal(err.code, 'ECONNREFUSED');
      // ... while the open one still carries data both ways.
      s.end(rest);
      await ended;
      checkEcho(Buffer.concat(got), Buffer.concat([first, rest]));
      const f = await front.exited;
      assert.equal(f.code, 0, f.stderr);
      back.child.kill('SIGTERM');
      assert.equal((await back.exited).code, 0);
    });
  });

  describe('status', function () {
    afterEach(killAll);
    it('reports the local transport usable, a safe directory and the ports listening in it', async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-status-'));
      fs.chmodSync(dir, 0o700);
      const server = xenring.createServer(() => {}).listen({ port: 'status-probe', dir });
      await once(server, 'listening');
      fs.writeFileSync(path.join(dir, 'unrelated.txt'), '');
      try {
        const r = await runCli(['status', '--json', '--dir', dir]);
        assert.equal(r.code, 0, r.stderr);
        const s = JSON.parse(String(r.stdout));
        assert.equal(s.transports.find((t) => t.name === 'local').usable, true);
        assert.equal(s.rendezvous.dir, fs.realpathSync(dir));
        assert.equal(s.rendezvous.safe, true);
        assert.deepEqual(s.rendezvous.ports.map((p) => [p.port, p.listening]), [['status-probe', true]]);
        // The server was probed without being disturbed: it got no connection.
        assert.equal(await new Promise((r) => server.getConnections((e, n) => r(n))), 0);
        const xen = s.transports.find((t) => t.name === 'xen');
        if (!xen.usable) assert.ok(xen.reasons.length > 0, 'an unusable transport says why');
      } finally {
        server.close();
      }
    });

    it('flags a directory others can write to, and a stale socket', async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-status-'));
      fs.chmodSync(dir, 0o777);
      // A server killed outright leaves its socket file behind with nobody accepting.
      const { spawnSync } = require('node:child_process');
      spawnSync(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))", path.join(dir, '4242.sock')]);
      assert.ok(fs.existsSync(path.join(dir, '4242.sock')));
      const r = await runCli(['status', '--dir', dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(String(r.stdout), /UNSAFE: mode 777: others can create or replace sockets in it/);
      assert.match(String(r.stdout), /stale \(nothing accepts; .*--clean removes them\): 4242$/m);
    });

    it('stale files on one line however many; --clean removes them and nothing else (a live port and a file not a socket stay)', async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-status-'));
      fs.chmodSync(dir, 0o700);
      const { spawnSync } = require('node:child_process');
      // Twelve servers killed outright, as in a shared directory after many runs.
      spawnSync(process.execPath, ['-e', `const net = require('net'); let n = 0; for (let i = 0; i < 12; i++) net.createServer().listen(process.argv[1] + '/dead' + i + '.sock', () => { if (++n === 12) process.kill(process.pid, 'SIGKILL'); });`, dir]);
      const server = xenring.createServer(() => {}).listen({ port: 'alive', dir });
      await once(server, 'listening');
      fs.writeFileSync(path.join(dir, 'notasocket.sock'), '');
      try {
        const r = await runCli(['status', '--dir', dir]);
        assert.equal(r.code, 0, r.stderr);
        const lines = String(r.stdout).split('\n');
        assert.equal(lines.filter((l) => /dead[0-9]+/.test(l)).length, 1, String(r.stdout));
        assert.match(String(r.stdout), /stale \(.*\): dead0, dead1, .*, and 4 more$/m);
        const c = await runCli(['status', '--json', '--clean', '--dir', dir]);
        assert.equal(c.code, 0, c.stderr);
        const s = JSON.parse(String(c.stdout));
        assert.equal(s.rendezvous.removed.length, 12);
        assert.deepEqual(fs.readdirSync(dir).sort(), ['alive.sock', 'notasocket.sock']);
        assert.equal(await new Promise((res) => server.getConnections((e, n) => res(n))), 0, 'the live server was disturbed');
      } finally {
        server.close();
      }
    });
  });

  it('bench runs the benchmark and prints its tables', async function () {
    const r = await runCli(['bench', '--reps', '1', '--cases', 'pingpong', '--transports', 'xenring', '--pp-sizes', '1', '--pp-iters', '100', '--pp-warmup', '10']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(String(r.stdout), /Verification: 1 measurements, 0 not ok, 0 failed to run\./);
  });
});
