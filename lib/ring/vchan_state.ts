/**
 * The vchan protocol state, in one place: the control-page layout, the live
 * bytes, the fin flags (xenring's extension), the notify bits, the lifecycle
 * verbs that change them and the peer's state as a type. Every other file
 * (channel, transports, server) goes through here instead of reading bytes.
 *
 * The constants restate native/vchan_layout.h; the addon exports its own copy
 * and {@link checkLayout} compares the two when this module loads, so they
 * cannot drift apart silently.
 * @internal
 */
import { native, type NativeLayout, type RingEndpoint } from '../native';

/** Byte offsets in the shared control page (libxenvchan's layout + extension). */
export const CONTROL = Object.freeze({
  leftCons: 0,
  leftProd: 4,
  rightCons: 8,
  rightProd: 12,
  leftOrder: 16,
  rightOrder: 18,
  cliLive: 20,
  srvLive: 21,
  cliNotify: 22,
  srvNotify: 23,
  grants: 24,
  extMagic: 3072,
  extCliFin: 3076,
  extSrvFin: 3077,
  extCliPool: 3078,
  extSrvPool: 3079,
});

/** Values of a live byte. */
export enum Live {
  /** Closed its side, died, or (client) was never there. */
  Gone = 0,
  Connected = 1,
  /** Client only: the server is waiting for it to connect. */
  Waiting = 2,
}

/** Bits of a notify byte: what a side asked to be woken for. */
export const NOTIFY = Object.freeze({ write: 1, read: 2 });

/** What the peer's control bytes say, decoded. */
export interface PeerState {
  readonly live: Live;
  /** It wrote its last byte (xenring extension; always false for plain vchan). */
  readonly fin: boolean;
}

/** Throws unless `layout` (the addon's) agrees with the constants above. */
export function checkLayout(layout: NativeLayout): void {
  const expected: Record<string, number> = {
    ...CONTROL,
    liveGone: Live.Gone,
    liveConnected: Live.Connected,
    liveWaiting: Live.Waiting,
    notifyWrite: NOTIFY.write,
    notifyRead: NOTIFY.read,
  };
  const wrong = Object.keys(expected).filter((k) => layout[k] !== expected[k]);
  if (wrong.length > 0) {
    throw new Error(`xenring: the addon's vchan layout differs from lib/ring/vchan_state.ts in: ${wrong.join(', ')}`);
  }
}
checkLayout(native.layout);

/** Decodes the addon's packed peer state (live | fin << 8). */
export function decodePeerState(packed: number): PeerState {
  return { live: (packed & 0xff) as Live, fin: (packed & 0x100) !== 0 };
}

/** The peer's state now (one call; EPROTO if the peer wrote a bad byte). */
export function readPeerState(endpoint: RingEndpoint): PeerState {
  return decodePeerState(endpoint.peerState());
}

/** Positions in the state array the endpoint fills (native StateWord). */
const enum Word {
  Readable = 0,
  Writable = 1,
  PeerLive = 2,
  PeerFin = 3,
  Count = 4,
}

/** Reader and writer passes after which the endpoint's per-message methods are bound (see VchanState.used()). */
export const BIND_AFTER_PASSES = 128;

/**
 * One endpoint's protocol state as the stream layers see it. The addon
 * leaves the ring's state in a JS-owned array after each read, write, wait,
 * request and service() (never a view of the shared page: the peer cannot
 * change it under us), so the hot path reads it without extra calls.
 */
export class VchanState {
  private readonly words = new Uint32Array(Word.Count);
  private passes = 0;

  constructor(
    readonly endpoint: RingEndpoint,
    /** Both sides speak the extension (half-close). */
    readonly ext: boolean,
  ) {
    endpoint.bindState(this.words);
  }

  /**
   * One pass of the reader or the writer (a native call or more). After
   * BIND_AFTER_PASSES the per-message calls are bound to this endpoint and
   * skip napi_unwrap (~1/3 of a small call); binding costs ~15-20 µs (four
   * new native functions), so a short connection never pays it.
   */
  used(): void {
    if (++this.passes === BIND_AFTER_PASSES) native.bindRingMethods(this.endpoint);
  }

  /** Readable bytes as of the last call. */
  get readable(): number {
    return this.words[Word.Readable];
  }

  /** Free ring bytes as of the last call. */
  get writable(): number {
    return this.words[Word.Writable];
  }

  /** The peer's state as of the last call. */
  get peer(): PeerState {
    return { live: this.words[Word.PeerLive] as Live, fin: this.words[Word.PeerFin] === 1 };
  }

  /** The peer's live byte is 0: it reads no more. */
  get peerGone(): boolean {
    return this.words[Word.PeerLive] === Live.Gone;
  }

  /** The peer will write no more: it set fin, or (plain vchan) left. */
  get peerDoneWriting(): boolean {
    return this.words[Word.PeerFin] === 1 || this.words[Word.PeerLive] === Live.Gone;
  }

  /** The peer left without fin: on a xenring peer that is a reset (ECONNRESET). */
  get peerReset(): boolean {
    return this.ext && this.words[Word.PeerFin] === 0 && this.words[Word.PeerLive] === Live.Gone;
  }

  /** Refreshes the array (consumes pending wake-ups too). */
  service(): void {
    this.endpoint.service();
  }
}

// Lifecycle verbs. Each changes our own control bytes in the order the peer
// relies on, then wakes the peer if it may be asleep waiting for them: a
// xenring peer asks for a wake-up and then re-checks our bytes before it
// sleeps (so only one that asked is woken), a plain vchan peer always (a
// local client's connect need not: see clientConnect).

/**
 * Client: announce the connection and ask to hear about the server's data.
 * `wake`: kick the server too (a vchan server waits for the connection; a
 * local xenring server serves from the HELLO on and looks at the live byte
 * when it next looks at the ring: the kick only cost it a wake-up).
 */
export function clientConnect(endpoint: RingEndpoint, wake = true): void {
  endpoint.setLive(Live.Connected);
  endpoint.requestData();
  if (wake) endpoint.kick();
}

/**
 * Our last byte is in the ring (half-close). Returns false when the
 * extension is off: plain vchan has no half-close.
 */
export function finish(endpoint: RingEndpoint): boolean {
  if (!endpoint.setFin()) return false;
  // Only the peer's reader waits for our fin, and it re-checks fin after
  // asking for a wake-up: one that did not ask is awake and will see it.
  endpoint.signalWrite();
  return true;
}

/** Orderly close: the peer reads what we wrote, then sees end of data. */
export function closeOrderly(endpoint: RingEndpoint): void {
  endpoint.setFin();
  endpoint.setLive(Live.Gone);
  endpoint.signalGone();
}

/** Reset: gone without fin, so a xenring peer sees ECONNRESET (a TCP RST). */
export function reset(endpoint: RingEndpoint): void {
  endpoint.setLive(Live.Gone);
  endpoint.signalGone();
}

/** A server turning away an accepted link (e.g. maxConnections): an orderly close. */
export const refuse = closeOrderly;
