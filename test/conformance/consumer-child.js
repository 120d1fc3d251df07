'use strict';
/**
 * The server process of the consumer tests: real Node consumers (http, tls,
 * stream.pipeline) on top of a net or xenring Server.
 * Usage: node consumer-child.js <net|xenring> <role> [args...]; sends { port }.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const tls = require('node:tls');
const { Readable, pipeline } = require('node:stream');

const [implName, role, ...args] = process.argv.slice(2);
const xenring = require(path.resolve(__dirname, '..', '..'));
const lib = implName === 'net' ? net : xenring;
const listen = (server, cb) => (implName === 'net' ? server.listen(0, '127.0.0.1', cb) : server.listen(0, cb));

/** `n` bytes in 1 MiB chunks derived from a seed (cheap, and not all-equal). */
function blocks(totalBytes, seed) {
  const base = crypto.createHash('sha512').update(String(seed)).digest();
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i += base.length) base.copy(block, i);
  let sent = 0;
  let i = 0;
  return Readable.from(
    (function* () {
      while (sent < totalBytes) {
        const n = Math.min(block.length, totalBytes - sent);
        const b = Buffer.from(block.subarray(0, n));
        b.writeUInt32LE(i++, 0);
        sent += n;
        yield b;
      }
    })(),
  );
}

const roles = {
  /** An http.Server fed through emit('connection') from a net/xenring Server. */
  'http-server'() {
    let conns = 0;
    const httpServer = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
      const connId = req.socket.connId;
      if (req.url === '/upload') {
        const hash = crypto.createHash('sha256');
        let n = 0;
        req.on('data', (d) => {
          n += d.length;
          hash.update(d);
        });
        req.on('end', () => res.end(JSON.stringify({ n, sha256: hash.digest('hex'), connId })));
        return;
      }
      if (req.url === '/big') {
        const hash = crypto.createHash('sha256');
        const src = blocks(10 * 1024 * 1024, 'big');
        src.on('data', (d) => hash.update(d));
        src.on('end', () => process.send({ bigSha256: hash.digest('hex') }));
        res.setHeader('content-length', 10 * 1024 * 1024);
        src.pipe(res);
        return;
      }
      req.resume();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, connId, method: req.method }));
    });
    const server = lib.createServer((socket) => {
      socket.connId = ++conns;
      httpServer.emit('connection', socket);
    });
    listen(server, () => process.send({ port: server.address().port }));
    process.on('message', (m) => {
      if (m === 'stats') process.send({ conns });
    });
    process.on('disconnect', () => process.exit(0));
  },

  /** Each connection: stream.pipeline(256 MiB generator, socket); reports the sha256 it sent. */
  'pipeline-source'() {
    const total = Number(args[0]);
    const server = lib.createServer((socket) => {
      const hash = crypto.createHash('sha256');
      const src = blocks(total, 'pipeline');
      src.on('data', (d) => hash.update(d));
      pipeline(src, socket, (err) => process.send({ err: err ? err.code || err.message : null, sent: socket.bytesWritten, sha256: hash.digest('hex') }));
    });
    listen(server, () => process.send({ port: server.address().port }));
    process.on('disconnect', () => process.exit(0));
  },

  /**
   * A TLS server that echoes what it gets, upper-cased. Mode 'halfopen': a
   * tls.Server fed through emit('connection') with sockets of
   * createServer({ allowHalfOpen: true }); 'default': the same with the
   * default allowHalfOpen (false); 'tlssocket': default sockets wrapped with
   * new tls.TLSSocket(socket, { isServer: true }). TLS then runs over Node's
   * JS stream wrapper (there is no libuv handle), which must still get every
   * byte of its reply out after the client's FIN.
   */
  'tls-server'() {
    const [keyFile, certFile, mode = 'halfopen'] = args;
    const key = fs.readFileSync(keyFile);
    const cert = fs.readFileSync(certFile);
    const onSecure = (t) => {
      process.send({ secure: true, protocol: t.getProtocol(), connecting: t.connecting });
      t.on('data', (d) => t.write(d.toString('latin1').toUpperCase()));
      t.on('end', () => t.end());
    };
    const tlsServer = tls.createServer({ key, cert }, onSecure);
    tlsServer.on('tlsClientError', (e) => process.send({ tlsClientError: e.message }));
    const secureContext = tls.createSecureContext({ key, cert });
    const server = lib.createServer({ allowHalfOpen: mode === 'halfopen' }, (socket) => {
      // After the parent disconnected the report has nowhere to go (the callback takes the EPIPE).
      socket.on('close', (hadError) => process.connected && process.send({ rawClose: hadError }, () => {}));
      if (mode !== 'tlssocket') return tlsServer.emit('connection', socket);
      const t = new tls.TLSSocket(socket, { isServer: true, secureContext });
      t.on('secure', () => onSecure(t));
    });
    listen(server, () => process.send({ port: server.address().port }));
    process.on('disconnect', () => process.exit(0));
  },
};

if (!roles[role]) {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
roles[role]();
