'use strict';
// The domU half of test/xen/domu.test.js, run by the lab in the guest
// (`run.sh --domu --domu-cmd 'node test/xen/domu-peer.js'`). Each step mirrors
// the dom0 test of the same number; both sides run them in order. Exit 0 only
// if every step passed.
const path = require('node:path');
const { spawn } = require('node:child_process');
const { pump, run, root, connectRetry } = require('./helpers');
const dist = path.join(root, 'dist', 'transports', 'xen');
const { vchanServer, vchanClient } = require(path.join(dist, 'handshake.js'));
const { xenTransport } = require(path.join(dist, 'transport.js'));

const U = Number(process.env.XENLAB_DOMU_DOMID);
const D0 = Number(process.env.XENLAB_DOM0_DOMID || 0);
const MiB = 1 << 20;
const WAIT = 240000; // dom0 runs its own suite first
const mine = (name) => `/local/domain/${U}/data/vchan/${D0}/${name}`;
const theirs = (name) => `/local/domain/${D0}/data/vchan/${U}/${name}`;

function log(msg) {
  console.log(`domu-peer: ${msg}`);
}

// `node domu-peer.js 11 ...` runs only those steps (the dom0 half then runs only their tests).
const only = process.argv.slice(2).map(Number);

async function timed(name, fn) {
  if (only.length > 0 && !only.includes(Number(/^step([0-9]+)/.exec(name)[1]))) return;
  const t0 = Date.now();
  const r = await fn();
  log(`${name} ok in ${Date.now() - t0} ms${r ? ` (${r})` : ''}`);
}

async function main() {
  log(`domid ${U}, peer ${D0}`);
  const n = 16 * MiB;
  await timed('step1 xenring client -> dom0 xenring server', async () => {
    const c = await vchanClient({ domid: D0, path: theirs('xr1'), timeout: WAIT });
    const t0 = Date.now();
    await pump(c, { send: n, recv: n });
    c.release();
    return `${((2 * n) / MiB / ((Date.now() - t0) / 1000)).toFixed(1)} MiB/s both directions`;
  });
  await timed('step2 xenring server <- dom0 xenring client', async () => {
    const s = await vchanServer({ domid: D0, path: mine('xr2'), readSize: 65536, writeSize: 65536 });
    await pump(s, { send: n, recv: n, timeout: WAIT });
    s.release();
  });
  await timed("step3 8 transport connections to dom0", async () => {
    const deadline = Date.now() + WAIT;
    const links = await Promise.all(Array.from({ length: 8 }, () => connectRetry({ port: 7001, domid: D0 }, deadline)));
    await Promise.all(links.map((l) => pump(l, { send: 2 * MiB, recv: 2 * MiB })));
    links.forEach((l) => l.release());
  });
  await timed('step4 transport listener accepting 4 dom0 connections', async () => {
    const done = [];
    await Promise.resolve(
      xenTransport.listen(
        { port: 7002, domid: D0 },
        (link) => done.push(pump(link, { send: 2 * MiB, recv: 2 * MiB }).then(() => link.release())),
        new AbortController().signal,
      ),
    ).then(async (l) => {
      const deadline = Date.now() + WAIT;
      while (done.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await Promise.all(done);
      l.close();
      if (done.length < 4) throw new Error(`accepted ${done.length} of 4`);
    });
  });
  await timed('step5 xenring server <- dom0 libxenvchan client', async () => {
    const s = await vchanServer({ domid: D0, path: mine('xr5'), readSize: 65536, writeSize: 65536 });
    await pump(s, { send: 8 * MiB, recv: 8 * MiB, timeout: WAIT });
    s.release();
  });
  await timed('step6 libxenvchan client -> dom0 xenring server', async () => {
    const res = await run('xenlab-vchan', ['client', '--domid', String(D0), '--path', theirs('xr6'), '--send', '8M', '--recv', '8M', '--timeout', '240']);
    if (res.code !== 0) throw new Error(res.out);
    return res.out.trim();
  });
  await timed('step7 libxenvchan server <- dom0 xenring client', async () => {
    const res = await run('xenlab-vchan', ['server', '--domid', String(D0), '--path', `/local/domain/${U}/data/xr7`, '--send', '8M', '--recv', '8M', '--timeout', '240']);
    if (res.code !== 0) throw new Error(res.out);
    return res.out.trim();
  });
  await timed('step8 xenring client -> dom0 libxenvchan server', async () => {
    const c = await vchanClient({ domid: D0, path: `/local/domain/${D0}/data/xr8`, timeout: WAIT });
    await pump(c, { send: 8 * MiB, recv: 8 * MiB });
    c.release();
  });
  await timed('step9 client process killed (SIGKILL) while connected to dom0', async () => {
    const child = spawn(process.execPath, [path.join(__dirname, 'peer.js'), 'client', String(D0), theirs('xr9'), 'hold'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`peer exited early (${code})`)));
    });
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGKILL');
  });
  await timed('step11 transport connection to dom0 with the default pool: 8 MiB by reference each way', async () => {
    const { poolTransfer, xenMappings, settleMappings } = require('./pool_helpers');
    const start = xenMappings();
    const c = await connectRetry({ port: 7011, domid: D0 }, Date.now() + WAIT);
    if (!c.pool || !c.pool.sender || !c.pool.receiver) throw new Error('no pool both ways');
    await poolTransfer(c, { send: 32, recv: 32, size: 256 * 1024, timeout: WAIT });
    const st = c.pool.stats();
    c.release();
    const now = await settleMappings(start);
    if (now.gntalloc !== start.gntalloc || now.gntdev !== start.gntdev) throw new Error(`mappings left: ${JSON.stringify(now)} vs ${JSON.stringify(start)}`);
    return `sentByRef ${st.sentByRef}, receivedByRef ${st.receivedByRef}`;
  });
  // The Socket layer across domains (dom0 half: test/xen/socket.test.js, run after domu.test.js).
  await timed('step10 xenring Socket -> dom0 Server (transport xen): 4 MiB each way verified', () => socketStep(Date.now() + WAIT));
  await timed("step12 a guest process's server.address() right after listen(), then dom0 connects to it", async () => {
    // A fresh process: this one learnt its domid from xenstore long ago.
    const child = spawn(process.execPath, [path.join(__dirname, 'guest_address.js'), '7012'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`guest_address.js exited ${code}: ${out}`);
    const { early, listenMs, addressMs } = JSON.parse(out.split('\n')[0]);
    const want = { address: String(U), family: 'xen', port: 7012 };
    if (JSON.stringify(early) !== JSON.stringify(want)) throw new Error(`address() right after listen(): ${JSON.stringify(early)}, want ${JSON.stringify(want)}`);
    return `address ${JSON.stringify(early)}, listen() took ${listenMs} ms, the first address() ${addressMs} ms`;
  });
  await timed('step13 Socket allocBuffer payloads both ways with dom0 (pool by reference), every byte checked', async () => {
    const { socketPoolExchange, xenMappings, settleMappings } = require('./pool_helpers');
    const xenring = require(path.join(root, 'dist', 'index.js'));
    const start = xenMappings();
    const deadline = Date.now() + WAIT;
    let r;
    for (;;) {
      const c = xenring.connect({ port: 7013, transport: 'xen', domid: D0, allowHalfOpen: true });
      const refused = new Promise((resolve) => c.once('error', (err) => resolve(err.code === 'ECONNREFUSED')));
      const connected = new Promise((resolve) => c.once('connect', () => resolve(false)));
      if (await Promise.race([refused, connected])) {
        if (Date.now() > deadline) throw new Error('dom0 never listened on 7013');
        await new Promise((res) => setTimeout(res, 300));
        continue;
      }
      r = await socketPoolExchange(c, { count: 32, size: 256 * 1024, timeout: WAIT });
      break;
    }
    const n = 32 * 256 * 1024;
    if (r.got !== n) throw new Error(`received ${r.got} of ${n}`);
    if (r.stats.sentByRef !== 32 || r.stats.receivedByRef !== 32) throw new Error(`by reference: sent ${r.stats.sentByRef}, received ${r.stats.receivedByRef} (want 32 each)`);
    const now = await settleMappings(start);
    if (now.gntalloc !== start.gntalloc || now.gntdev !== start.gntdev) throw new Error(`mappings left: ${JSON.stringify(now)} vs ${JSON.stringify(start)}`);
    return `sentByRef ${r.stats.sentByRef}, receivedByRef ${r.stats.receivedByRef}, pool-full waits ${r.waits}`;
  });
}

/** connect({ transport: 'xen' }) Socket to dom0's Server on port 7010 (retried while refused): 4 MiB each way, every byte checked, close(false). */
function socketStep(deadline) {
  const xenring = require(path.join(root, 'dist', 'index.js'));
  const { PATTERN } = require('./helpers');
  const n = 4 * MiB;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const c = xenring.connect({ port: 7010, transport: 'xen', domid: D0, allowHalfOpen: true });
      let got = 0;
      let failed = false;
      const fail = (err) => {
        if (failed) return;
        failed = true;
        c.destroy();
        reject(err);
      };
      c.once('error', (err) => {
        if (err.code === 'ECONNREFUSED' && got === 0 && Date.now() < deadline) return setTimeout(attempt, 300);
        fail(err);
      });
      c.once('connect', () => {
        let off = 0;
        const more = () => {
          while (off < n) {
            const st = off % 251;
            const len = Math.min(n - off, 65536, PATTERN.length - st);
            off += len;
            if (!c.write(PATTERN.subarray(st, st + len)) && off < n) return c.once('drain', more);
          }
          c.end();
        };
        more();
      });
      c.on('data', (buf) => {
        for (let i = 0; i < buf.length; i++) {
          if (buf[i] !== (got + i) % 251) return fail(new Error(`data mismatch at byte ${got + i}`));
        }
        got += buf.length;
      });
      c.once('end', () => {
        if (got !== n) fail(new Error(`end after ${got} of ${n} bytes`));
      });
      c.once('close', (hadError) => {
        if (failed || got === 0) return; // refused attempts are retried above
        if (hadError) return fail(new Error('close(hadError=true)'));
        resolve(`recv ${got}, sent ${c.bytesWritten}`);
      });
    };
    attempt();
  });
}

main().then(
  () => {
    log('ALL STEPS OK');
    process.exit(0);
  },
  (err) => {
    log(`FAILED: ${err.code || ''} ${err.stack || err.message}`);
    process.exit(1);
  },
);
