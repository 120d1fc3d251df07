/**
 * The local transport's handshake messages, built and parsed without I/O so
 * that they can be tested and fuzzed alone. Every parser treats its input as
 * hostile: exact lengths, known magic and version, orders in range, and the
 * exact number of fds the message carries (the caller closes any fd of a
 * message that a parser refused).
 *
 * HELLO  (client -> server, HELLO_FDS fds: the write end of the client's
 *        wake-up pipe): magic "XRH1", version, asked
 *        order (0 = the server's size), client pid.
 * ACCEPT (server -> client, ACCEPT_FDS fds: the ring memfd, and the end of
 *        the server's wake-up pipe, its write end): magic
 *        "XRA1", version, left order, right order.
 * Version 2: wake-ups moved from shared eventfds to a datagram socketpair
 * per direction (a peer could block our eventfd reads and writes).
 * Version 3: a pipe per direction instead (same safety, a third of the cost).
 * @internal
 */
import { systemError } from '../errors';
import { MAX_LOCAL_RING_SIZE, MIN_RING_SIZE } from '../ring/ring_size';

const HELLO_MAGIC = 0x31485258; // "XRH1"
const ACCEPT_MAGIC = 0x31415258; // "XRA1"
export const HANDSHAKE_VERSION = 3;
const MESSAGE_SIZE = 16;
export const MIN_ORDER = Math.log2(MIN_RING_SIZE);
export const MAX_ORDER = Math.log2(MAX_LOCAL_RING_SIZE);
/** Fds each message must carry, no more and no fewer. */
export const HELLO_FDS = 1;
export const ACCEPT_FDS = 2;

export interface Hello {
  /** Ring order the client asks for; 0 leaves the choice to the server. */
  order: number;
  pid: number;
}

export interface Accept {
  leftOrder: number;
  rightOrder: number;
}

function protocolError(syscall: string, detail: string): NodeJS.ErrnoException {
  return systemError('EPROTO', syscall, detail);
}

function validOrder(order: number): boolean {
  return Number.isInteger(order) && order >= MIN_ORDER && order <= MAX_ORDER;
}

function header(magic: number, a: number, b: number): Buffer {
  const msg = Buffer.alloc(MESSAGE_SIZE);
  msg.writeUInt32LE(magic, 0);
  msg.writeUInt32LE(HANDSHAKE_VERSION, 4);
  msg.writeUInt32LE(a, 8);
  msg.writeUInt32LE(b, 12);
  return msg;
}

function checkHeader(data: Buffer, magic: number, fds: number, wantFds: number, syscall: string, what: string): void {
  if (data.length !== MESSAGE_SIZE || data.readUInt32LE(0) !== magic) throw protocolError(syscall, `bad ${what}`);
  if (data.readUInt32LE(4) !== HANDSHAKE_VERSION) throw protocolError(syscall, `${what} of unsupported version ${data.readUInt32LE(4)}`);
  if (fds !== wantFds) throw protocolError(syscall, `${what} carried ${fds} fds, expected ${wantFds}`);
}

export function buildHello(hello: Hello): Buffer {
  if (hello.order !== 0 && !validOrder(hello.order)) throw new RangeError(`bad ring order ${hello.order}`);
  return header(HELLO_MAGIC, hello.order, hello.pid >>> 0);
}

/** Parses a client's HELLO that arrived with `fdCount` fds; throws EPROTO. */
export function parseHello(data: Buffer, fdCount: number): Hello {
  checkHeader(data, HELLO_MAGIC, fdCount, HELLO_FDS, 'accept', 'hello from client');
  const order = data.readUInt32LE(8);
  if (order !== 0 && !validOrder(order)) throw protocolError('accept', `client asked for ring order ${order}`);
  return { order, pid: data.readUInt32LE(12) };
}

/**
 * The order the server grants: its own size is the ceiling, a client may ask
 * for less (down to the minimum) but never more.
 */
export function grantOrder(asked: number, ceiling: number): number {
  return asked === 0 ? ceiling : Math.min(asked, ceiling);
}

export function buildAccept(accept: Accept): Buffer {
  if (!validOrder(accept.leftOrder) || !validOrder(accept.rightOrder)) throw new RangeError('bad ring order');
  return header(ACCEPT_MAGIC, accept.leftOrder, accept.rightOrder);
}

/**
 * Parses the server's ACCEPT that arrived with `fdCount` fds; throws EPROTO.
 * `asked` is the order the client sent (0: any); a server may grant less,
 * never more.
 */
export function parseAccept(data: Buffer, fdCount: number, asked: number): Accept {
  checkHeader(data, ACCEPT_MAGIC, fdCount, ACCEPT_FDS, 'connect', 'handshake reply');
  const leftOrder = data.readUInt32LE(8);
  const rightOrder = data.readUInt32LE(12);
  if (!validOrder(leftOrder) || !validOrder(rightOrder)) throw protocolError('connect', 'bad ring order');
  if (asked !== 0 && (leftOrder > asked || rightOrder > asked)) {
    throw protocolError('connect', `server granted ring order ${Math.max(leftOrder, rightOrder)}, more than the ${asked} asked`);
  }
  return { leftOrder, rightOrder };
}
