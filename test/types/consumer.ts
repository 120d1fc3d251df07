// A consumer of the packed package, compiled by types.test.js with strict
// and skipLibCheck: false. Each line states a type a user relies on; the
// NotAny checks fail if an event's parameter quietly became `any`.
import * as xenring from 'xenring';
import { connect, createConnection, createServer, Server, Socket } from 'xenring';
import type { DropInfo, ListenOptions, ServerOptions, SocketAddress, SocketConnectOptions, TransportAddress } from 'xenring';

type IsAny<T> = 0 extends 1 & T ? true : false;
function notAny<T>(_value: T, _check: IsAny<T> extends true ? never : true): void {}

const serverOptions: ServerOptions = { allowHalfOpen: false, pauseOnConnect: false, spinMicros: 0 };
const server: Server = createServer(serverOptions, (socket) => {
  notAny(socket, true);
  const s: Socket = socket;
  const owner: Server | null = s.server;
  s.setEncoding('utf8');
  s.on('data', (chunk) => {
    notAny(chunk, true);
    const b: Buffer = chunk;
    s.write(b);
  });
  s.on('end', () => s.end());
  s.on('close', (hadError) => {
    notAny(hadError, true);
    const h: boolean = hadError;
    void h;
  });
  void owner;
});
server.on('connection', (socket) => {
  notAny(socket, true);
  const port: number | string | undefined = socket.remotePort;
  void port;
});
server.on('drop', (info) => {
  notAny(info, true);
  const d: DropInfo | undefined = info;
  void d;
});
server.on('error', (err) => {
  notAny(err, true);
  const e: Error = err;
  void e;
});
server.once('listening', () => {
  const address: TransportAddress | null = server.address();
  if (address) console.log(address.family, address.port);
});
const listenOptions: ListenOptions = { port: 0, transport: 'local' };
server.listen(listenOptions, () => {
  const port = server.address()!.port;
  const options: SocketConnectOptions = { port, allowHalfOpen: true, connectTimeout: 1000 };
  const client: Socket = connect(options, () => client.end('hello'));
  client.on('connect', () => {});
  client.on('ready', () => {});
  client.on('timeout', () => client.destroy());
  client.on('error', (err) => {
    notAny(err, true);
    console.error(err.message);
  });
  client.on('close', (hadError: boolean) => {
    const read: number = client.bytesRead;
    const written: number = client.bytesWritten;
    const addr: SocketAddress | Record<string, never> = client.address();
    console.log(hadError, read, written, addr, client.readyState);
    server.close((err?: Error) => void err);
  });
  const other: Socket = createConnection(port);
  other.setTimeout(100, () => other.destroy()).setNoDelay(true).setKeepAlive(true).unref().ref();
  other.destroy();
  const raw = new Socket({ allowHalfOpen: true });
  raw.connect({ port }, () => raw.destroy());
  const viaNamespace: xenring.Socket = xenring.connect(port);
  viaNamespace.pipe(viaNamespace);
  viaNamespace.destroySoon();
});
server.getConnections((err, count) => console.log(err, count + 1));
server.unref();
const second: Server = new Server();
second.close();
// net's extras: AbortSignal options, constructors callable without new.
const ac = new AbortController();
const withSignal: Socket = connect({ port: 7000, signal: ac.signal, highWaterMark: 1 << 16 });
withSignal.on('error', (err) => console.error(err.name));
const viaCall: Socket = xenring.Socket({ allowHalfOpen: true });
const serverViaCall: Server = xenring.Server(() => {});
serverViaCall.listen({ port: 0, signal: ac.signal, backlog: 16 });
ac.abort();
viaCall.destroy();
// TCP fallback: connect({ fallback }) and an unconnected FallbackSocket that a client connects itself.
const viaFallback: xenring.FallbackSocket = connect({ port: 7000, family: 4, localAddress: '127.0.0.1', fallback: { host: 'db.example' } });
viaFallback.on('connect', () => {
  const t: 'local' | 'xen' | 'tcp' | null = viaFallback.transport;
  console.log(t);
});
const fallbackOptions: xenring.FallbackSocketOptions = { port: 'pg', fallback: { timeout: 500 } };
const unconnected = new xenring.FallbackSocket(fallbackOptions);
const connected: xenring.FallbackSocket = unconnected.connect(5432, 'db.example', () => unconnected.end());
connected.destroy();
const withoutNew: xenring.FallbackSocket = xenring.FallbackSocket({ port: 7000 });
withoutNew.destroy();
server.listen({ port: 7001, tcp: { host: '0.0.0.0', port: 7001 } });
