#!/usr/bin/env node
'use strict';
/*
 * How a 1-byte round trip on a pool connection (default options) speeds up
 * as the two processes warm up: medians per window of message numbers, so a
 * short run (bench/run.js's pool case: 100 warm-up + 300 timed messages) can
 * be told from the steady state (bench/run.js --cases pingpong: 2 000 + 20 000).
 *
 *   node [node flags] bench/warmup.js [--dist DIR] [--count N] [--await] [--pin]
 *
 * --await: the next message is written after `await` of a promise that the
 * 'data' handler resolves (as bench/run.js runMsg does); without it, from
 * the handler (as bench/run.js pingpongLoop does). --pin: this process on
 * CPU 0, the child on CPU 1. Node flags (e.g. --jitless) reach the child too.
 */
const path = require('node:path');
const { connectForkedSelf, optionValue } = require('./common');

const args = process.argv.slice(2);
const opt = (name, def) => optionValue(args, name, def);
const dist = path.resolve(opt('dist', path.join(__dirname, '..', 'dist')));
const count = Number(opt('count', 20000));
const xenring = require(dist);

if (args.includes('--child')) {
  const server = xenring.createServer({}, (sock) => {
    server.close();
    const ack = Buffer.from([0x61]);
    sock.on('data', () => sock.write(ack));
    sock.on('end', () => sock.end());
  });
  server.listen({ port: 0, transport: 'local' }, () => process.send({ port: server.address().port }));
} else {
  connectForkedSelf(xenring, __filename, args).then(async ({ child, sock }) => {
    const msg = Buffer.from([1]);
    const us = [];
    const cpu0 = process.cpuUsage();
    if (args.includes('--await')) {
      let acks = 0;
      let wake = null;
      sock.on('data', (d) => { acks += d.length; if (wake) wake(); });
      const answered = (n) => new Promise((resolve) => (acks >= n ? resolve() : (wake = resolve)));
      for (let i = 0; i < count; i++) {
        const t0 = process.hrtime.bigint();
        sock.write(msg);
        await answered(i + 1);
        us.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    } else {
      await new Promise((resolve) => {
        let t0 = 0n;
        const send = () => { t0 = process.hrtime.bigint(); sock.write(msg); };
        sock.on('data', () => {
          us.push(Number(process.hrtime.bigint() - t0) / 1000);
          if (us.length < count) send(); else resolve();
        });
        send();
      });
    }
    const cpu = process.cpuUsage(cpu0);
    const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1].toFixed(1);
    const windows = [[0, 100], [100, 400], [400, 1000], [1000, 2000], [2000, 5000], [5000, 10000], [10000, 20000]].filter(([, b]) => b <= count);
    console.log(`1-byte round trip medians (µs) by message number, ${args.includes('--await') ? 'await' : 'from the handler'}, load ${require('node:os').loadavg()[0].toFixed(1)}:`);
    console.log('  ' + windows.map(([a, b]) => `[${a}, ${b}) ${median(us.slice(a, b))}`).join(' | '));
    console.log(`  client CPU ${((cpu.user + cpu.system) / count).toFixed(1)} µs per message (all threads, JIT included)`);
    sock.end();
    child.once('exit', () => process.exit(0));
  });
}
