/**
 * A channel's connection lifecycle as one explicit state. Every change goes
 * through {@link Lifecycle.on}, whose table below is the whole state machine;
 * the reader and writer ask it questions instead of keeping flags.
 * @internal
 */

export enum Phase {
  /** Both directions flow. */
  Open,
  /** The peer reads no more (it left or died): writes fail with EPIPE; its last bytes may still be readable. */
  PeerGone,
  /** The peer's end of data was delivered; we may still write (half-open). */
  Ended,
  /** Ended and PeerGone both. */
  PeerClosed,
  /** Plain vchan finish(): no half-close exists, so we close once the peer has read everything (or left). */
  Draining,
  /** Draining, and the peer's end of data was already delivered. */
  DrainingEnded,
  /** The ring is closed: nothing more in or out. */
  Closed,
}

export type LifecycleEvent =
  /** The peer's live byte reads 0, or its process hung up. */
  | 'peerGone'
  /** End of the peer's data was delivered to the owner. */
  | 'ended'
  /** finish() on plain vchan. */
  | 'drain'
  /** close() or reset. */
  | 'close';

type Table = Record<Phase, Partial<Record<LifecycleEvent, Phase>>>;

/** Events missing from a row leave the phase as it is ('close' always closes). */
const NEXT: Table = {
  [Phase.Open]: { peerGone: Phase.PeerGone, ended: Phase.Ended, drain: Phase.Draining },
  [Phase.PeerGone]: { ended: Phase.PeerClosed, drain: Phase.Draining },
  [Phase.Ended]: { peerGone: Phase.PeerClosed, drain: Phase.DrainingEnded },
  [Phase.PeerClosed]: { drain: Phase.DrainingEnded },
  // While draining, the drain check reads the peer's live byte itself.
  [Phase.Draining]: { ended: Phase.DrainingEnded },
  [Phase.DrainingEnded]: {},
  [Phase.Closed]: {},
};

export class Lifecycle {
  private current = Phase.Open;

  get phase(): Phase {
    return this.current;
  }

  /** Applies one event; returns the new phase. */
  on(event: LifecycleEvent): Phase {
    if (this.current === Phase.Closed) return this.current;
    this.current = event === 'close' ? Phase.Closed : (NEXT[this.current][event] ?? this.current);
    return this.current;
  }

  get closed(): boolean {
    return this.current === Phase.Closed;
  }

  /** Writes must fail with EPIPE (the peer reads no more). */
  get peerGone(): boolean {
    return this.current === Phase.PeerGone || this.current === Phase.PeerClosed;
  }

  /** The owner was told about the end of the peer's data. */
  get ended(): boolean {
    return this.current === Phase.Ended || this.current === Phase.PeerClosed || this.current === Phase.DrainingEnded;
  }

  get draining(): boolean {
    return this.current === Phase.Draining || this.current === Phase.DrainingEnded;
  }
}
