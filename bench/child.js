'use strict';
// The forked side of every benchmark case: it listens on the transport,
// accepts the parent's connection(s) and then
//   bulk  receives and checks the stream, reports MB/s, CPU and page faults;
//   echo  echoes every byte back (ping-pong);
//   mem   holds idle connections, drains transfers, reports its memory.
// argv[2] is a JSON object: { transport, mode, verify, ringSize, xenDomid }.
// It exits when the parent goes away (IPC channel closed).

const { CHECK_EVERY, PERIOD, makePattern, patternOk, procMemory, getGc } = require('./common');
const T = require('./transports');

const cfg = JSON.parse(process.argv[2] || '{}');
process.on('disconnect', () => process.exit(0));

function send(msg, exit) {
  try {
    process.send(msg, () => { if (exit) process.exit(exit === true ? 0 : exit); });
  } catch {
    process.exit(1);
  }
}
const fail = (e) => send({ type: 'error', error: String((e && e.stack) || e) }, 1);
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

/**
 * Receives and checks a bulk stream. `onread`: null for 'data' events, else
 * the object passed to connect() as net's onread option, whose callback calls
 * `onread.handler` (receiveBulk sets it before any byte can arrive).
 */
function receiveBulk(sock, full, onread = null) {
  return new Promise((resolve, reject) => {
    let count = 0, events = 0, firstLen = 0, maxLen = 0;
    let tFirst = 0n, tLast = 0n, cpu0 = null, flt0 = 0;
    let edgeErrors = 0, fullChecks = 0, fullErrors = 0, nextCheck = 0;
    let lastBuf = null, lastOff = 0;
    // d[0..len) are the new bytes (d is reused between reads with onread).
    const onChunk = (d, len) => {
      const now = process.hrtime.bigint();
      if (events === 0) {
        tFirst = now;
        cpu0 = process.cpuUsage();
        flt0 = process.resourceUsage().minorPageFault;
        firstLen = len;
      }
      events++;
      tLast = now;
      if (len > maxLen) maxLen = len;
      // Every read: its first and last byte sit where the pattern says (a lost,
      // duplicated or reordered byte shifts the pattern and shows at an edge).
      if (d[0] !== count % PERIOD || d[len - 1] !== (count + len - 1) % PERIOD) edgeErrors++;
      // Whole-read comparison: every read with --verify full, else one per 4 MiB.
      if (full || count + len > nextCheck) {
        fullChecks++;
        if (!patternOk(len === d.length ? d : d.subarray(0, len), count)) fullErrors++;
        nextCheck = (Math.floor((count + len) / CHECK_EVERY) + 1) * CHECK_EVERY;
      }
      if (onread) {
        // The buffer is reused: keep a copy of the last read for the final check.
        if (lastBuf === null || lastBuf.length < len) lastBuf = Buffer.allocUnsafe(d.length);
        d.copy(lastBuf, 0, 0, len);
        lastBuf.used = len;
      } else {
        lastBuf = d;
      }
      lastOff = count;
      count += len;
    };
    if (onread) onread.handler = (n, buf) => onChunk(buf, n);
    else sock.on('data', (d) => onChunk(d, d.length));
    sock.on('end', () => {
      const cpu = cpu0 ? process.cpuUsage(cpu0) : { user: 0, system: 0 };
      const faults = process.resourceUsage().minorPageFault - flt0;
      if (lastBuf && !full) {
        fullChecks++;
        if (!patternOk(onread ? lastBuf.subarray(0, lastBuf.used) : lastBuf, lastOff)) fullErrors++;
      }
      resolve({
        bytes: count, events, firstLen, maxLen, ns: Number(tLast - tFirst),
        cpuUserUs: cpu.user, cpuSysUs: cpu.system, faults, edgeErrors, fullChecks, fullErrors,
      });
    });
    sock.on('error', reject);
  });
}

async function main() {
  const { transport, mode } = cfg;
  const gc = getGc();

  if (mode === 'mem') {
    // Baseline before anything of the library exists in this process.
    if (T.isXenring(transport)) T.xenring();
    if (gc) gc();
    let received = 0, expect = Infinity, reachedSent = false;
    const checkReached = () => {
      if (!reachedSent && received >= expect) { reachedSent = true; send({ type: 'reached', received }); }
    };
    const base = procMemory();
    let conns = [];
    const ready = await T.listen(transport, { ringSize: cfg.ringSize }, (sock) => {
      conns.push(sock);
      sock.on('data', (d) => { received += d.length; checkReached(); });
      sock.on('error', () => {});
      sock.on('close', () => send({ type: 'closed' }));
      send({ type: 'accepted', n: conns.length });
    });
    process.on('message', (m) => {
      if (m.cmd === 'mem') {
        if (gc) { gc(); gc(); }
        send({ type: 'mem', mem: procMemory(), conns: conns.length });
      } else if (m.cmd === 'expect') {
        expect = m.bytes;
        reachedSent = false;
        checkReached();
      } else if (m.cmd === 'reset') {
        // forget the warm-up connection
        conns = conns.filter((s) => !s.destroyed);
        received = 0;
        expect = Infinity;
      } else if (m.cmd === 'sendback') {
        // The other direction: every connection writes m.bytes to the parent.
        const buf = makePattern(64 * 1024);
        for (const s of conns) {
          let left = m.bytes;
          const go = () => {
            while (left > 0) {
              const n = Math.min(left, buf.length);
              left -= n;
              if (!s.write(n === buf.length ? buf : buf.subarray(0, n))) { s.once('drain', go); return; }
            }
          };
          go();
        }
      } else if (m.cmd === 'exit') {
        for (const s of conns) s.destroy();
        ready.server.close();
        T.removeSocketFile(ready.cleanupPath);
        send({ type: 'bye' }, true);
      }
    });
    send({ type: 'ready', port: ready.port, path: ready.path, baseMem: base });
    return;
  }

  if (mode === 'msg') {
    // The pool family (run.js runPool): messages of cfg.size bytes; the
    // receiver reads one byte per 4 KiB page of each, gives pool Buffers back
    // (release), and answers 1 byte after every cfg.ackEvery messages.
    // cfg.read false: it looks at one byte per 'data' chunk only (the
    // hand-off as issue 13 states it: sent and acknowledged).
    const stride = cfg.read === false ? Infinity : 4096;
    const ready = await listenMsg(cfg.kind, { spin: cfg.spin, before: cfg.before }, (sock) => {
      const ack = Buffer.from([0x61]);
      let got = 0;
      let msgs = 0;
      let sum = 0;
      sock.on('data', (d) => {
        for (let i = 0; i < d.length; i += stride) sum += d[i];
        got += d.length;
        if (cfg.kind === 'pool') sock.release(d);
        while (got >= cfg.size) {
          got -= cfg.size;
          if (++msgs % cfg.ackEvery === 0) sock.write(ack);
        }
      });
      sock.on('end', () => {
        sock.end();
        send({ type: 'result', msgs, sum: sum & 0xff, pool: typeof sock.poolStats === 'function' ? sock.poolStats() : null }, true);
      });
      sock.on('error', fail);
    });
    send({ type: 'ready', port: ready.port, path: ready.path });
    return;
  }

  if (cfg.connectTo) {
    // -onread rows: this side connects with net's onread option and receives.
    if (mode !== 'bulk') throw new Error(`${transport} is a bulk-only row`);
    // connect() checks the callback at once; receiveBulk() sets the handler.
    const onread = { buffer: Buffer.alloc(T.ONREAD_BUFFER), handler: null, callback: (n, buf) => onread.handler(n, buf) };
    const sock = await T.connect(transport, cfg.connectTo, { ringSize: cfg.ringSize, onread });
    const resP = receiveBulk(sock, cfg.verify === 'full', onread);
    send({ type: 'ready', connected: true });
    const res = await resP;
    send({ type: 'result', options: T.effectiveOptions(sock), ...res }, true);
    return;
  }

  let resolveConn;
  const connP = new Promise((r) => { resolveConn = r; });
  let ready = null;
  ready = await T.listen(transport, { ringSize: cfg.ringSize, echo: mode === 'echo' }, (sock, server) => {
    server.close(); // one connection per case
    T.removeSocketFile(ready && ready.cleanupPath);
    resolveConn(sock);
  });
  send({ type: 'ready', port: ready.port, path: ready.path, serverOptions: ready.serverOptions });
  const sock = await connP;
  const options = T.effectiveOptions(sock);

  if (mode === 'bulk') {
    const res = await receiveBulk(sock, cfg.verify === 'full');
    send({ type: 'result', options, ...res }, true);
  } else if (mode === 'echo') {
    let echoed = 0;
    sock.on('data', (d) => { echoed += d.length; sock.write(d); });
    sock.on('end', () => {
      sock.end();
      send({ type: 'result', echoed, options }, true);
    });
    sock.on('error', fail);
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

/**
 * Listens for the pool family: 'pool' (xenring, local, default pool), 'ring'
 * (xenring, local, pool: false), 'uds', 'tcp'. One connection. `o.spin`:
 * spinMicros (undefined: the default); `o.before`: the build in XENRING_BENCH_BEFORE.
 */
function listenMsg(kind, o, onConnection) {
  if (kind === 'uds' || kind === 'tcp') {
    return T.listen(kind, {}, (sock, server) => {
      server.close();
      onConnection(sock);
    });
  }
  return new Promise((resolve, reject) => {
    const server = T.xenring(o.before ? 'xenring-before' : undefined).createServer({ pool: kind === 'ring' ? false : undefined, spinMicros: o.spin }, (sock) => {
      server.close();
      onConnection(sock);
    });
    server.on('error', reject);
    server.listen({ port: 0, transport: 'local' }, () => resolve({ port: server.address().port }));
  });
}

main().catch(fail);
