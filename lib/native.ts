/**
 * The native addon, typed. Loaded once with node-gyp-build (prebuilds/ first,
 * then build/Release). Nothing here holds policy: see ring/ and transports/.
 * @internal
 */
import * as path from 'node:path';

/** Pages mapped MAP_SHARED; never readable from JS. */
export interface SharedMapping {
  readonly length: number;
  /** Throws ERR_INVALID_STATE while a ring endpoint still uses it. */
  unmap(): void;
}

/** Placement of one ring inside a mapping. */
export interface RingPlacement {
  mapping: SharedMapping;
  offset: number;
  /** log2 of the ring size in bytes (10..26). */
  order: number;
}

export interface RingEndpointOptions {
  role: 'server' | 'client';
  /** The server initialises the control page (orders, live bytes, notify bits). */
  init: boolean;
  /** Use xenring's extension area (half-close flags); both peers must be xenring. */
  ext: boolean;
  control: SharedMapping;
  controlOffset: number;
  left: RingPlacement;
  right: RingPlacement;
}

/** One side of a vchan ring pair. Every peer-written index is validated (EPROTO). */
export interface RingEndpoint {
  /** Copies as much of `chunks` (from byte `offset` on) as fits; returns bytes copied. */
  write(chunks: Uint8Array | Uint8Array[], offset?: number): number;
  /** Copies up to `max` readable bytes into `target` at `offset`; returns bytes copied. */
  read(target: Uint8Array, offset: number, max: number): number;
  readable(): number;
  writable(): number;
  /** Sets the "wake me on data" bit in the peer's notify byte, then re-checks. */
  requestData(): number;
  /** Sets the "wake me on space" bit in the peer's notify byte, then re-checks. */
  requestSpace(): number;
  /** Spins up to `micros` µs for data; returns readable bytes. */
  waitData(micros: number): number;
  /** Spins up to `micros` µs until `want` bytes are free; returns writable bytes. */
  waitSpace(micros: number, want: number): number;
  /** live | (fin << 8) */
  peerState(): number;
  setLive(live: 0 | 1 | 2): void;
  /** Returns false when the extension is off (plain vchan has no half-close). */
  setFin(): boolean;
  setNotifier(kind: 'eventfd', kickFd: number, waitFd: number): void;
  setNotifier(kind: 'evtchn', fd: number, port: number): void;
  kick(): void;
  ack(): number;
  close(): void;
  info(): { role: string; rxSize: number; txSize: number; ext: boolean; closed: boolean };
}

export interface FdWatcher {
  start(events: number): void;
  stop(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface ReceivedMessage {
  data: Buffer;
  fds: number[];
  truncated: boolean;
}

export interface NativeBinding {
  SharedMapping: new (fd: number, length: number, writable: boolean, offset?: number) => SharedMapping;
  RingEndpoint: new (options: RingEndpointOptions) => RingEndpoint;
  FdWatcher: new (fd: number, callback: (events: number) => void) => FdWatcher;
  memfdCreate(name: string, size: number): number;
  memfdCheck(fd: number, size: number): void;
  eventfdCreate(): number;
  /** Throws EPROTO unless an eventfd in counter mode; returns its kernel id (-1: unknown). */
  eventfdCheck(fd: number): number;
  unixListen(path: string, backlog: number): number;
  unixAccept(fd: number): number;
  unixConnect(path: string): number;
  sendMessage(fd: number, data: Buffer, fds?: number[]): number;
  recvMessage(fd: number): ReceivedMessage | null;
  closeFd(fd: number): void;
  /** The connected peer's credentials (SO_PEERCRED). */
  socketPeerCred(fd: number): { pid: number; uid: number; gid: number };
  layout: { pageSize: number; minOrder: number; maxXenOrder: number; maxOrder: number };
  /** Xen device bindings (see transports/xen). */
  xen: Record<string, unknown>;
}

/** uv_poll event bits. */
export const UV_READABLE = 1;
export const UV_WRITABLE = 2;
export const UV_DISCONNECT = 4;

// eslint-disable-next-line @typescript-eslint/no-var-requires
const load: (dir: string) => unknown = require('node-gyp-build');

/** The loaded addon. */
export const native = load(path.join(__dirname, '..')) as NativeBinding;
