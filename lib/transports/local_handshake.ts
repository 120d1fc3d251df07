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
 *
 * Page-reference pool (issue 13, still version 3: the fields are appended,
 * so a peer that does not send them is an older xenring and gets no pool):
 * HELLO + u32 pool bytes the client offers (HELLO_POOL_SIZE bytes in all);
 * when non-zero, one more fd: the client's region (a sealed memfd of exactly
 * that pool size, see lib/pool). ACCEPT (only to a HELLO that had the
 * field) + u32 pool bytes client->server, u32 pool bytes server->client (0:
 * none that way; neither above the offer); when server->client is
 * non-zero, one more fd: the server's region.
 *
 * Regions on demand (issue 14, still version 3, appended again): HELLO +
 * u32 flags (HELLO_LAZY_SIZE bytes), bit REGIONS_ON_DEMAND: no region fd in
 * the HELLO. The ACCEPT to it + u32 flags (ACCEPT_LAZY_SIZE bytes), the same
 * bit: no region fd in it either. Each side then makes its region only when
 * its sender first needs it, and sends it over the rendezvous socket in a
 * REGION message (magic "XRR1", version, pool bytes, 0; one fd: a sealed
 * memfd for exactly the agreed pool bytes that way), before its first
 * descriptor (lib/pool/lazy_open.ts: before it marks its sender opened). A
 * connection that never sends by reference makes, passes and maps no
 * region: most of what a pool added to a new connection (docs/benchmark.md).
 * A server of this version still serves the older HELLOs (regions in the
 * handshake); a client of this version needs a server that knows the flag.
 *
 * Kept links (issue 14, still version 3): flags bit REUSABLE in the HELLO
 * (the flags field then comes whatever the pool size, 0 included) asks to
 * keep the link (rendezvous socket, wake-up pipes, ring) after an orderly
 * close for the client's next connection to the same port; the same bit in
 * the ACCEPT agrees (never unasked). Then, instead of a new rendezvous
 * connection, the client sends REOPEN (magic "XRO1", version, 0, 0; no fd)
 * on the kept socket, and the server, once its side of the last connection
 * is closed, initialises the control page again and answers REOPENED ("XRK1", version, left order, right order; no fd):
 * local_reuse.ts. When the side that closed last already initialised the
 * ring and the client claimed it (the reuse byte, local_reuse.ts), the
 * REOPEN says so (magic, version, 1, 0): the client is on the ring already,
 * the server attaches to it as it is and answers nothing.
 * @internal
 */
import { systemError } from '../errors';
import { MAX_POOL, POOL_PAGE } from '../pool/layout';
import { MAX_LOCAL_RING_SIZE, MIN_RING_SIZE } from '../ring/ring_size';

const HELLO_MAGIC = 0x31485258; // "XRH1"
const ACCEPT_MAGIC = 0x31415258; // "XRA1"
const REGION_MAGIC = 0x31525258; // "XRR1"
const REOPEN_MAGIC = 0x314f5258; // "XRO1"
const REOPENED_MAGIC = 0x314b5258; // "XRK1"
export const HANDSHAKE_VERSION = 3;
const MESSAGE_SIZE = 16;
/** HELLO with the pool field; ACCEPT with the two pool fields. */
export const HELLO_POOL_SIZE = MESSAGE_SIZE + 4;
export const ACCEPT_POOL_SIZE = MESSAGE_SIZE + 8;
/** ...and with the flags field. */
export const HELLO_LAZY_SIZE = HELLO_POOL_SIZE + 4;
export const ACCEPT_LAZY_SIZE = ACCEPT_POOL_SIZE + 4;
/** Flags bit: regions come later, in REGION messages. */
export const REGIONS_ON_DEMAND = 1;
/** Flags bit: the link is kept after an orderly close, for a REOPEN. */
export const REUSABLE = 2;
const KNOWN_FLAGS = REGIONS_ON_DEMAND | REUSABLE;
/** REOPEN's flag: the client claimed a ring prepared for it. */
const REOPEN_CLAIMED = 1;
/** REOPEN's and REOPENED's size; they carry no fd. */
export const REOPEN_SIZE = MESSAGE_SIZE;
/** A REGION message's size; it carries one fd. */
export const REGION_SIZE = MESSAGE_SIZE;
export const MIN_ORDER = Math.log2(MIN_RING_SIZE);
export const MAX_ORDER = Math.log2(MAX_LOCAL_RING_SIZE);
/** Fds each message must carry, no more and no fewer. */
export const HELLO_FDS = 1;
export const ACCEPT_FDS = 2;

export interface Hello {
  /** Ring order the client asks for; 0 leaves the choice to the server. */
  order: number;
  pid: number;
  /** Pool bytes the client offers per direction (0: none); null: an older
   * client that sent no pool field. With a size, the HELLO carries the
   * client's region fd after the wake-up end. */
  poolSize?: number | null;
  /** Regions on demand (REGION messages, no region fd in the HELLO); needs a pool size. */
  lazyRegions?: boolean;
  /** Keep the link for a REOPEN after an orderly close; needs a pool size (0 is one). */
  reusable?: boolean;
}

export interface Accept {
  leftOrder: number;
  rightOrder: number;
  /** Agreed pool bytes per direction; null: an older server (no pool).
   * With toClient > 0 the ACCEPT carries the server's region fd last. */
  pool?: { toServer: number; toClient: number } | null;
  /** The reply to a HELLO with regions on demand: no region fd here either; needs `pool`. */
  lazyRegions?: boolean;
  /** Agreed to keep the link (only when asked); needs `pool`. */
  reusable?: boolean;
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

function checkHeader(data: Buffer, magic: number, sizes: readonly number[], syscall: string, what: string): void {
  if (!sizes.includes(data.length) || data.readUInt32LE(0) !== magic) throw protocolError(syscall, `bad ${what}`);
  if (data.readUInt32LE(4) !== HANDSHAKE_VERSION) throw protocolError(syscall, `${what} of unsupported version ${data.readUInt32LE(4)}`);
}

function checkFds(fds: number, wantFds: number, syscall: string, what: string): void {
  if (fds !== wantFds) throw protocolError(syscall, `${what} carried ${fds} fds, expected ${wantFds}`);
}

function validPoolSize(size: number): boolean {
  return Number.isInteger(size) && size >= 0 && size <= MAX_POOL && size % POOL_PAGE === 0;
}

export function buildHello(hello: Hello): Buffer {
  if (hello.order !== 0 && !validOrder(hello.order)) throw new RangeError(`bad ring order ${hello.order}`);
  const msg = header(HELLO_MAGIC, hello.order, hello.pid >>> 0);
  if (hello.poolSize === null || hello.poolSize === undefined) return msg;
  if (!validPoolSize(hello.poolSize)) throw new RangeError(`bad pool size ${hello.poolSize}`);
  const flags = (hello.lazyRegions ? REGIONS_ON_DEMAND : 0) | (hello.reusable ? REUSABLE : 0);
  const pool = Buffer.alloc(flags !== 0 ? 8 : 4);
  pool.writeUInt32LE(hello.poolSize, 0);
  if (flags !== 0) pool.writeUInt32LE(flags, 4);
  return Buffer.concat([msg, pool]);
}

/** Fds a HELLO carries: the wake-up end, and the client's region when it offers a pool in the handshake. */
export function helloFds(hello: Hello): number {
  return HELLO_FDS + (hello.poolSize && !hello.lazyRegions ? 1 : 0);
}

/** The flags field at `at`: known bits only, at least one (the field exists for them). */
function readFlags(data: Buffer, at: number, syscall: string, what: string): number {
  const flags = data.readUInt32LE(at);
  if (flags === 0 || (flags & ~KNOWN_FLAGS) !== 0) throw protocolError(syscall, `${what} with flags ${flags}`);
  return flags;
}

/** Parses a client's HELLO that arrived with `fdCount` fds; throws EPROTO. */
export function parseHello(data: Buffer, fdCount: number): Hello {
  checkHeader(data, HELLO_MAGIC, [MESSAGE_SIZE, HELLO_POOL_SIZE, HELLO_LAZY_SIZE], 'accept', 'hello from client');
  const order = data.readUInt32LE(8);
  if (order !== 0 && !validOrder(order)) throw protocolError('accept', `client asked for ring order ${order}`);
  const poolSize = data.length >= HELLO_POOL_SIZE ? data.readUInt32LE(MESSAGE_SIZE) : null;
  if (poolSize !== null && !validPoolSize(poolSize)) throw protocolError('accept', `client offered a pool of ${poolSize} bytes`);
  const flags = data.length === HELLO_LAZY_SIZE ? readFlags(data, HELLO_POOL_SIZE, 'accept', 'hello from client') : 0;
  const lazyRegions = (flags & REGIONS_ON_DEMAND) !== 0;
  const hello: Hello = { order, pid: data.readUInt32LE(12), poolSize, lazyRegions };
  if ((flags & REUSABLE) !== 0) hello.reusable = true;
  checkFds(fdCount, helloFds(hello), 'accept', 'hello from client');
  return hello;
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
  const msg = header(ACCEPT_MAGIC, accept.leftOrder, accept.rightOrder);
  if (!accept.pool) return msg;
  const { toServer, toClient } = accept.pool;
  if (!validPoolSize(toServer) || !validPoolSize(toClient)) throw new RangeError('bad pool size');
  const flags = (accept.lazyRegions ? REGIONS_ON_DEMAND : 0) | (accept.reusable ? REUSABLE : 0);
  const pool = Buffer.alloc(flags !== 0 ? 12 : 8);
  pool.writeUInt32LE(toServer, 0);
  pool.writeUInt32LE(toClient, 4);
  if (flags !== 0) pool.writeUInt32LE(flags, 8);
  return Buffer.concat([msg, pool]);
}

/** Fds an ACCEPT carries: the ring memfd, the wake-up end, and the server's region when it sends by reference and sends it in the handshake. */
export function acceptFds(accept: Accept): number {
  return ACCEPT_FDS + (accept.pool?.toClient && !accept.lazyRegions ? 1 : 0);
}

/** Fds an ACCEPT that reads as `data` should carry (before it is checked): to tell a truncated one (EMFILE) from a bad one. */
export function acceptFdsExpected(data: Buffer): number {
  return ACCEPT_FDS + (data.length === ACCEPT_POOL_SIZE && data.readUInt32LE(MESSAGE_SIZE + 4) > 0 ? 1 : 0);
}

/** A REGION message: our region for `poolBytes` of pool follows as its one fd. */
export function buildRegion(poolBytes: number): Buffer {
  if (!validPoolSize(poolBytes) || poolBytes === 0) throw new RangeError(`bad pool size ${poolBytes}`);
  return header(REGION_MAGIC, poolBytes, 0);
}

/**
 * Checks a REGION message from the peer that arrived with `fdCount` fds: it
 * must announce exactly the `agreed` pool bytes that way (the fd itself is
 * checked when mapped); throws EPROTO.
 */
export function parseRegion(data: Buffer, fdCount: number, agreed: number, syscall: string): void {
  checkHeader(data, REGION_MAGIC, [REGION_SIZE], syscall, 'pool region message');
  if (data.readUInt32LE(8) !== agreed || data.readUInt32LE(12) !== 0 || agreed === 0) {
    throw protocolError(syscall, `pool region of ${data.readUInt32LE(8)} bytes, agreed ${agreed}`);
  }
  checkFds(fdCount, 1, syscall, 'pool region message');
}

/**
 * Parses the server's ACCEPT that arrived with `fdCount` fds; throws EPROTO.
 * `asked` is the order the client sent (0: any); a server may grant less,
 * never more. `poolOffered`: the pool size the HELLO offered (null: none
 * sent, so the reply must not carry pool fields); no direction may get more.
 * `lazyAsked`, `reuseAsked`: the HELLO's flags; the reply may agree to
 * those, never to a flag not asked.
 */
export function parseAccept(data: Buffer, fdCount: number, asked: number, poolOffered: number | null = null, lazyAsked = false, reuseAsked = false): Accept {
  // A HELLO with regions on demand gets no pool (an ACCEPT without the
  // fields) or the reply with the flag; never regions in the handshake.
  // Reuse asked alone: a server that declines it has no flag to set, so its
  // reply has the pool fields only (a flags field is never 0).
  const sizes =
    poolOffered === null
      ? [MESSAGE_SIZE]
      : lazyAsked
        ? [MESSAGE_SIZE, ACCEPT_LAZY_SIZE]
        : reuseAsked
          ? [MESSAGE_SIZE, ACCEPT_POOL_SIZE, ACCEPT_LAZY_SIZE]
          : [MESSAGE_SIZE, ACCEPT_POOL_SIZE];
  checkHeader(data, ACCEPT_MAGIC, sizes, 'connect', 'handshake reply');
  const leftOrder = data.readUInt32LE(8);
  const rightOrder = data.readUInt32LE(12);
  if (!validOrder(leftOrder) || !validOrder(rightOrder)) throw protocolError('connect', 'bad ring order');
  if (asked !== 0 && (leftOrder > asked || rightOrder > asked)) {
    throw protocolError('connect', `server granted ring order ${Math.max(leftOrder, rightOrder)}, more than the ${asked} asked`);
  }
  let pool: Accept['pool'] = null;
  const flags = data.length === ACCEPT_LAZY_SIZE ? readFlags(data, ACCEPT_POOL_SIZE, 'connect', 'handshake reply') : 0;
  const lazyRegions = (flags & REGIONS_ON_DEMAND) !== 0;
  const reusable = (flags & REUSABLE) !== 0;
  if ((lazyRegions && !lazyAsked) || (reusable && !reuseAsked)) throw protocolError('connect', `handshake reply with flags ${flags}, not asked`);
  if (data.length >= ACCEPT_POOL_SIZE) {
    pool = { toServer: data.readUInt32LE(MESSAGE_SIZE), toClient: data.readUInt32LE(MESSAGE_SIZE + 4) };
    for (const size of [pool.toServer, pool.toClient]) {
      if (!validPoolSize(size) || size > (poolOffered ?? 0)) throw protocolError('connect', `server agreed to a pool of ${size} bytes, offered ${poolOffered}`);
    }
  }
  // Regions on demand asked and a pool agreed: without the flag the regions
  // would be in this reply, which a client of this version never takes.
  if (lazyAsked && !lazyRegions && pool !== null && (pool.toServer > 0 || pool.toClient > 0)) {
    throw protocolError('connect', 'handshake reply with regions in it, regions on demand asked');
  }
  const accept: Accept = { leftOrder, rightOrder, pool, lazyRegions };
  if (reusable) accept.reusable = true;
  checkFds(fdCount, acceptFds(accept), 'connect', 'handshake reply');
  return accept;
}

/**
 * REOPEN: the client asks for the kept link's next connection. `claimed`:
 * it took a ring prepared for it (local_reuse.ts, the reuse byte) and is
 * already on it: the server attaches and answers nothing.
 */
export function buildReopen(claimed = false): Buffer {
  return header(REOPEN_MAGIC, claimed ? REOPEN_CLAIMED : 0, 0);
}

/** Checks a REOPEN that arrived with `fdCount` fds (throws EPROTO): whether it is a claimed one. */
export function parseReopen(data: Buffer, fdCount: number): boolean {
  checkHeader(data, REOPEN_MAGIC, [REOPEN_SIZE], 'accept', 'reopen from client');
  const flags = data.readUInt32LE(8);
  if ((flags !== 0 && flags !== REOPEN_CLAIMED) || data.readUInt32LE(12) !== 0) throw protocolError('accept', 'bad reopen from client');
  checkFds(fdCount, 0, 'accept', 'reopen from client');
  return flags === REOPEN_CLAIMED;
}

/** True if `data` reads as a REOPEN (to tell it from other messages; parseReopen checks it). */
export function isReopen(data: Buffer): boolean {
  return data.length >= 4 && data.readUInt32LE(0) === REOPEN_MAGIC;
}

/** REOPENED: the server's ring is initialised again, with the kept link's orders. */
export function buildReopened(leftOrder: number, rightOrder: number): Buffer {
  if (!validOrder(leftOrder) || !validOrder(rightOrder)) throw new RangeError('bad ring order');
  return header(REOPENED_MAGIC, leftOrder, rightOrder);
}

/** Checks the server's REOPENED: the kept link's orders, no fd; throws EPROTO. */
export function parseReopened(data: Buffer, fdCount: number, leftOrder: number, rightOrder: number): void {
  checkHeader(data, REOPENED_MAGIC, [REOPEN_SIZE], 'connect', 'reopen reply');
  if (data.readUInt32LE(8) !== leftOrder || data.readUInt32LE(12) !== rightOrder) throw protocolError('connect', 'reopen reply with other ring orders');
  checkFds(fdCount, 0, 'connect', 'reopen reply');
}
