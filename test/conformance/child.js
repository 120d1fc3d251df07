'use strict';
/**
 * The other process of the conformance scenarios. Usage (forked by
 * harness.forkRole): node child.js <net|xenring> <role> [args...]
 * Roles that listen send { port } first. Roles report what they observed over
 * IPC; the parent asserts. A role exits when the parent disconnects, unless
 * noted otherwise.
 */
const crypto = require('node:crypto');
const net = require('node:net');
const path = require('node:path');

const [implName, role, ...args] = process.argv.slice(2);
const xenring = require(path.resolve(__dirname, '..', '..'));
const lib = implName === 'net' ? net : xenring;
const listen = (server, port, cb) => (implName === 'net' ? server.listen(port, '127.0.0.1', cb) : server.listen(port, cb));
const connect = (port, opts, cb) => lib.connect(implName === 'net' ? { port, host: '127.0.0.1', ...opts } : { port, ...opts }, cb);

const { trackSocket } = require('./harness');
const track = (s) => trackSocket(s, ['data', 'end', 'finish', 'error', 'close']);

const exitOnDisconnect = (server) =>
  process.on('disconnect', () => {
    if (server) server.close();
    setTimeout(() => process.exit(0), 20).unref();
  });

const roles = {
  /** Each connection: write <bytes> bytes then end(). Reports each connection's event log on close. */
  'end-server'() {
    const bytes = Number(args[0] || 3);
    const allowHalfOpen = args[1] === 'true';
    const server = lib.createServer({ allowHalfOpen }, (s) => {
      const log = track(s);
      s.end(Buffer.alloc(bytes, 'b'));
      s.on('close', () => process.send({ conn: log }));
    });
    listen(server, 0, () => process.send({ port: server.address().port }));
    exitOnDisconnect(server);
  },

  /** Each connection: read everything, report the log (received bytes, events) on close. */
  'record-server'() {
    const allowHalfOpen = args[0] === 'true';
    const server = lib.createServer({ allowHalfOpen }, (s) => {
      const log = track(s);
      let received = '';
      s.on('data', (d) => (received += d.toString('latin1')));
      s.on('close', () => process.send({ conn: log, received }));
    });
    listen(server, 0, () => process.send({ port: server.address().port }));
    exitOnDisconnect(server);
  },

  /** Each connection: write <bytes> bytes of the position pattern (byte i = i % 251) in <chunk> writes, then end(). */
  'pattern-server'() {
    const bytes = Number(args[0]);
    const chunk = Number(args[1] || 65536);
    const period = Buffer.alloc(chunk + 251);
    for (let i = 0; i < period.length; i++) period[i] = i % 251;
    const server = lib.createServer((s) => {
      let pos = 0;
      const pump = () => {
        while (pos < bytes) {
          const n = Math.min(chunk, bytes - pos);
          const ok = s.write(Buffer.from(period.subarray(pos % 251, (pos % 251) + n)));
          pos += n;
          if (!ok) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
      s.on('error', () => {});
    });
    listen(server, 0, () => process.send({ port: server.address().port }));
    exitOnDisconnect(server);
  },

  /** Reads with repeated pause()/resume() (slow reader); reports count, sha256, pauses. */
  'slow-sink-server'() {
    const pauseMs = Number(args[0] || 5);
    const server = lib.createServer((s) => {
      const hash = crypto.createHash('sha256');
      let count = 0;
      let pauses = 0;
      s.on('data', (d) => {
        count += d.length;
        hash.update(d);
        s.pause();
        pauses++;
        setTimeout(() => s.resume(), pauseMs);
      });
      s.on('end', () => {
        process.send({ count, sha256: hash.digest('hex'), pauses, bytesRead: s.bytesRead });
      });
      s.on('close', () => {});
    });
    listen(server, 0, () => process.send({ port: server.address().port }));
    exitOnDisconnect(server);
  },

  /** Connects to args[0] and answers each PING with PONG (pingpong client side). */
  'pingpong-client'() {
    const port = Number(args[0]);
    const rounds = Number(args[1]);
    const sock = connect(port, {});
    sock.setEncoding('latin1');
    let buf = '';
    let n = 0;
    const bad = [];
    sock.on('connect', () => sock.write('PING'));
    sock.on('data', (d) => {
      buf += d;
      while (buf.length >= 4) {
        const msg = buf.slice(0, 4);
        buf = buf.slice(4);
        if (msg !== 'PONG') bad.push(msg);
        n++;
        if (n < rounds) {
          if (!(sock.bufferSize >= 0 && sock.bufferSize <= 4)) bad.push(`bufferSize=${sock.bufferSize}`);
          sock.write('PING');
        } else {
          sock.end();
        }
      }
    });
    sock.on('end', () => process.send({ n, bad, readable: sock.readable }));
    sock.on('close', (h) => {
      process.send({ close: h });
      process.exit(0);
    });
  },

  /** Connects, writes args[1] bytes, then destroy(new Error('boom')); reports its own log. */
  'destroy-with-error-client'() {
    const sock = connect(Number(args[0]), {});
    const log = track(sock);
    sock.on('connect', () => {
      sock.write('hello', () => {
        sock.destroy(new Error('boom'));
      });
    });
    sock.on('close', () => {
      process.send({ log });
      setTimeout(() => process.exit(0), 10);
    });
  },

  /** Connects and resets the connection as soon as it is up (RST). */
  'reset-client'() {
    const sock = connect(Number(args[0]), {});
    const log = track(sock);
    sock.on('connect', () => sock.write('x', () => setTimeout(() => sock.resetAndDestroy(), 50)));
    sock.on('close', () => {
      process.send({ log });
      setTimeout(() => process.exit(0), 10);
    });
  },

  /** Listens, unref()s the server: the process must exit on its own. */
  'unref-server'() {
    const server = lib.createServer(() => {});
    listen(server, 0, () => {
      server.unref();
      process.send({ port: server.address().port }, () => process.channel && process.channel.unref());
    });
  },

  /** Connects to args[0] and unref()s the connected socket: the process must exit on its own. */
  'unref-socket'() {
    const sock = connect(Number(args[0]), {}, () => {
      sock.unref();
      process.send({ connected: true }, () => process.channel && process.channel.unref());
    });
    sock.on('error', (e) => {
      console.error(e);
      process.exit(3);
    });
  },

  /** Holds a connection with a pending setTimeout, unref'd: must still exit. */
  'unref-timeout-socket'() {
    const sock = connect(Number(args[0]), {}, () => {
      sock.setTimeout(60000);
      sock.unref();
      process.send({ connected: true }, () => process.channel && process.channel.unref());
    });
  },

  /**
   * Connects to args[0] and then leaves the socket alone in state args[1]:
   * 'paused' (pause() before connecting), 'paused-after-connect', 'unread'
   * (never reads: the parent sends data and ends, or sends more than the
   * high-water mark). Nothing is unref'd: the process must exit by itself
   * because an idle, not-reading socket keeps nothing alive.
   */
  'idle-socket'() {
    const [port, state] = [Number(args[0]), args[1]];
    const sock = connect(port, {});
    if (state === 'paused') sock.pause();
    sock.on('connect', () => {
      if (state === 'paused-after-connect') sock.pause();
      process.send({ connected: true }, () => process.channel && process.channel.unref());
    });
    sock.on('error', (e) => {
      console.error(e);
      process.exit(3);
    });
  },
};

if (!roles[role]) {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
roles[role]();
