/**
 * The native addon, typed. Loaded once with node-gyp-build (build/Release when
 * present, else the prebuild in prebuilds/). Nothing here holds policy: see ring/ and transports/.
 * @internal
 */
import * as path from 'node:path';
import { avoidExternalBufferRace } from './array_buffer_sweeping';

/** Pages mapped MAP_SHARED; never readable from JS. */
export interface SharedMapping {
  readonly length: number;
  /** Throws ERR_INVALID_STATE while a ring endpoint still uses it. */
  unmap(): void;
  /** The byte at `offset`, read once (a kept ring's live bytes: lib/transports/local_reuse.ts). */
  readByte(offset: number): number;
  /** Compare-and-swap of the byte at `offset` (seq_cst): the byte before; swapped iff it was `expected` (local_reuse.ts). */
  casByte(offset: number, expected: number, desired: number): number;
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

/** Flags of RingEndpoint.read() (native/ring_endpoint.h ReadFlag). */
export const enum ReadFlag {
  Ack = 1,
}

/** Words of the wake-read array (native/ring_endpoint.h WakeWord). */
export const enum WakeWord {
  /** 1: the next wake-up reads (natively, before JS runs); cleared when it does. */
  Armed = 0,
  /** Where in the setWakeTarget() buffer the bytes go. */
  Offset = 1,
  /** At most this many bytes. */
  Max = 2,
  /** 1: read nothing if the bindWatch() word differs from Mark. */
  Watch = 3,
  Mark = 4,
  /** 1: once the watcher's callback returns, ask for a wake-up and re-check (natively: waitData(0, true)). */
  Sleep = 5,
  Count = 6,
}

/** One side of a vchan ring pair. Every peer-written index is validated (EPROTO). */
export interface RingEndpoint {
  /** Copies as much of `chunks` (from byte `offset` on) as fits; returns bytes copied. */
  write(chunks: Uint8Array | Uint8Array[], offset?: number): number;
  /**
   * Copies up to `max` readable bytes into `target` at `offset`; returns
   * bytes copied. `flags` (ReadFlag): Ack first consumes pending wake-ups
   * (as service()). `watched`: read nothing if the bindWatch() word differs from it.
   */
  read(target: Uint8Array, offset: number, max: number, flags?: number, watched?: number): number;
  readable(): number;
  writable(): number;
  /** Sets the "wake me on data" bit in the peer's notify byte, then re-checks. */
  requestData(): number;
  /** Sets the "wake me on space" bit in the peer's notify byte, then re-checks. */
  requestSpace(): number;
  /** Spins up to `micros` µs for data; `arm`: if still empty, asks for a wake-up (requestData); `watched`: the spin also ends once the bindWatch() word differs from it. Returns readable bytes. */
  waitData(micros: number, arm?: boolean, watched?: number): number;
  /** The peer-written word (its first element) that waitData()'s `watched` compares with; null unbinds. Dropped once its buffer is detached. */
  bindWatch?(word: Uint32Array | null): void;
  /**
   * A 1-word view of the extension's u32 holding both fin bytes and both
   * pool bytes (native/vchan_layout.h kExtPoolWord), for the pool's lazy
   * opening (lib/pool/lazy_open.ts); null without the extension. Detached
   * at close (then reads undefined). Absent on fakes.
   */
  poolWord?(): Uint32Array | null;
  /**
   * The wake-read words (WakeWord): once armed, the next wake-up of an
   * FdWatcher bound to this endpoint (bindRing) consumes the wake-ups and
   * reads up to Max bytes into the setWakeTarget() buffer at Offset before
   * calling JS. Absent on fakes.
   */
  bindWakeRead?(words: Uint32Array): void;
  /** The buffer an armed wake-up reads into (null: none). */
  setWakeTarget?(target: Uint8Array | null): void;
  /** Spins up to `micros` µs until `want` bytes are free; returns writable bytes. */
  waitSpace(micros: number, want: number): number;
  /** live | (fin << 8); decode with ring/vchan_state's decodePeerState. */
  peerState(): number;
  /** Every later read/write/wait/request/service() leaves the ring's state in `words`. */
  bindState(words: Uint32Array): void;
  /** A wake-up in one call: consumes pending wake-ups, publishes state; returns readable bytes. */
  service(): number;
  setLive(live: 0 | 1 | 2): void;
  /** Returns false when the extension is off (plain vchan has no half-close). */
  setFin(): boolean;
  /** How this endpoint wakes its peer and consumes its own wake-ups. */
  setNotifier(notifier: Notifier): void;
  /** Wakes the peer; throws the notifier's error (e.g. EBADF). */
  kick(): void;
  /** Wakes the peer only if it asked to hear of our writes (write()'s notify check, without bytes). */
  signalWrite(): void;
  /**
   * After our live byte changed (close, reset): wakes a xenring peer only if
   * it asked to hear of our writes or reads (it re-checks fin and live before
   * sleeping), a plain vchan peer always.
   */
  signalGone(): void;
  /** Consumes pending wake-ups; returns how many. */
  ack(): number;
  close(): void;
  info(): { role: string; rxSize: number; txSize: number; ext: boolean; closed: boolean };
}

/**
 * The seam through which a ring wakes its peer: made by a transport
 * (eventfdNotifier() locally, xen.evtchnNotifier() on Xen). The fds it uses
 * stay owned by the transport's link.
 */
export interface Notifier {
  /** Wakes the peer (a wake-up already pending counts as success). */
  kick(): void;
  /** Consumes pending wake-ups and re-arms them; returns how many. */
  ack(): number;
  /** Polls readable when we are woken. */
  readonly waitFd: number;
}

/**
 * An FdWatcher's callback: `events` (< 0: a libuv error). With a ring bound
 * (bindRing), a readable event also passes the armed wake-up read's result:
 * `read` bytes (-1: none was armed; the wake-ups are still pending) or the
 * `error` it threw, and its `round`: 0 for the wake-up; after a callback
 * that set WakeWord.Sleep, the watcher asks for the wake-up, and if bytes
 * (or the peer's fin, or a payload) came first, reads and calls again with
 * the next round instead of sleeping.
 */
export type FdWatcherCallback = (events: number, read?: number, error?: Error, round?: number) => void;

export interface FdWatcher {
  start(events: number): void;
  /** Readable events first do the wake-up read armed on `endpoint` (RingEndpoint.bindWakeRead). */
  bindRing(endpoint: RingEndpoint | null): void;
  stop(): void;
  ref(): void;
  unref(): void;
  close(): void;
  /** Later events go to `callback` (a watcher handed to its next owner keeps its poll handle). */
  setCallback(callback: FdWatcherCallback): void;
}

export interface ReceivedMessage {
  data: Buffer;
  fds: number[];
  truncated: boolean;
}

export interface NativeBinding {
  SharedMapping: new (fd: number, length: number, writable: boolean, offset?: number) => SharedMapping;
  RingEndpoint: {
    new (options: RingEndpointOptions): RingEndpoint;
    /** The same, positional (no named property read: the transports' own calls). */
    new (
      server: boolean,
      init: boolean,
      ext: boolean,
      control: SharedMapping,
      controlOffset: number,
      leftMapping: SharedMapping,
      leftOffset: number,
      leftOrder: number,
      rightMapping: SharedMapping,
      rightOffset: number,
      rightOrder: number,
    ): RingEndpoint;
  };
  /** Makes `endpoint`'s read, write, waitData and service own properties bound to it (no napi_unwrap per call); any own property already there is kept. False (nothing done) if it is not a native RingEndpoint. */
  bindRingMethods(endpoint: RingEndpoint): boolean;
  /** Not constructible with a use from JS: transports make Notifiers. */
  Notifier: new () => Notifier;
  FdWatcher: new (fd: number, callback: FdWatcherCallback) => FdWatcher;
  memfdCreate(name: string, size: number): number;
  /** Throws EPROTO unless a sealed memfd of `size` bytes; returns which file it is ("dev:ino:size"). */
  memfdCheck(fd: number, size: number): string;
  eventfdCreate(): number;
  /** Throws EPROTO unless an eventfd in counter mode; returns its kernel id (-1: unknown). */
  eventfdCheck(fd: number): number;
  /** Wakes the peer by writing `kickFd`, is woken through `waitFd`. */
  eventfdNotifier(kickFd: number, waitFd: number): Notifier;
  /** Wakes the peer through the pipe write end `kickFd` (vmsplice, SPLICE_F_NONBLOCK), is woken through `waitFd`. */
  pipeNotifier(kickFd: number, waitFd: number): Notifier;
  /** A non-blocking pipe: [our wait end (read), the end for the peer (write)]. */
  wakePair(): [number, number];
  /** Throws EPROTO unless `fd` is an anonymous pipe's write end; returns its creator's uid. */
  wakeEndCheck(fd: number): { uid: number };
  unixListen(path: string, backlog: number): number;
  unixAccept(fd: number): number;
  unixConnect(path: string): number;
  sendMessage(fd: number, data: Buffer, fds?: number[]): number;
  recvMessage(fd: number): ReceivedMessage | null;
  closeFd(fd: number): void;
  /** The connected peer's credentials (SO_PEERCRED). */
  socketPeerCred(fd: number): { pid: number; uid: number; gid: number };
  /** A pidfd of the connected peer's process (SO_PEERPIDFD), or -1 where the kernel lacks it; the caller closes it. */
  socketPeerPidfd(fd: number): number;
  /** The connected peer process's pidfs inode (unique for the system's life), or null where pidfds are not pidfs. */
  socketPeerProcessId(fd: number): string | null;
  /** Whether the pidfd's process still exists (zombies included). */
  pidfdAlive(pidfd: number): boolean;
  /** Constants of native/vchan_layout.h (checked by ring/vchan_state at load). */
  layout: NativeLayout;
  /** Xen device bindings (see transports/xen). */
  xen: Record<string, unknown>;
}

/** The addon's vchan constants (native/vchan_layout.h). */
export interface NativeLayout {
  pageSize: number;
  minOrder: number;
  maxXenOrder: number;
  maxOrder: number;
  [field: string]: number;
}

/** uv_poll event bits. */
export const UV_READABLE = 1;
export const UV_WRITABLE = 2;
export const UV_DISCONNECT = 4;

// eslint-disable-next-line @typescript-eslint/no-var-requires
const load: (dir: string) => unknown = require('node-gyp-build');

/** The loaded addon. */
avoidExternalBufferRace();
export const native = load(path.join(__dirname, '..')) as NativeBinding;

/** Closes an fd we own where an error is of no use (a cleanup path): -1 is nothing, an fd already closed is ignored. */
export function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    native.closeFd(fd);
  } catch {
    /* already closed */
  }
}
