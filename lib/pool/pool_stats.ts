/**
 * What socket.poolStats() reports: one connection's pool, both directions.
 */
export interface PoolStats {
  /** Bytes of pool per direction (0: the pool is off for this connection). */
  size: number;
  /** Bytes of our sending pool loaned out or in flight (not yet returned). */
  inUse: number;
  /** Bytes of the peer's pool we hold as received views (not yet released). */
  held: number;
  /** Payloads sent as references. */
  sentByRef: number;
  /** Payloads received as references. */
  receivedByRef: number;
  /** Bytes sent / received as references. */
  bytesSentByRef: number;
  bytesReceivedByRef: number;
  /** allocBuffer() calls the pool could not serve, and pool Buffers written
   * through the ring (pool full or out of order): the ring path took them. */
  fallbacks: number;
  /** Received extents handed back by release(), by the garbage collector,
   * and all at once at close. */
  released: number;
  releasedByGC: number;
  releasedAtClose: number;
  /** Extents the peer handed back to us (completions). */
  returned: number;
}

/** A zeroed stats record. @internal */
export function emptyPoolStats(size: number): PoolStats {
  return {
    size,
    inUse: 0,
    held: 0,
    sentByRef: 0,
    receivedByRef: 0,
    bytesSentByRef: 0,
    bytesReceivedByRef: 0,
    fallbacks: 0,
    released: 0,
    releasedByGC: 0,
    releasedAtClose: 0,
    returned: 0,
  };
}

/**
 * One connection's poolStats(): the sending half's counters (inUse, sentByRef,
 * fallbacks, returned) with the receiving half's (held, receivedByRef,
 * released...). Either half may be absent (no pool in that direction).
 * @internal
 */
export function connectionPoolStats(sent: PoolStats | null, received: PoolStats | null): PoolStats {
  const s = sent ?? emptyPoolStats(0);
  const r = received ?? emptyPoolStats(0);
  return {
    size: s.size,
    inUse: s.inUse,
    held: r.held,
    sentByRef: s.sentByRef,
    receivedByRef: r.receivedByRef,
    bytesSentByRef: s.bytesSentByRef,
    bytesReceivedByRef: r.bytesReceivedByRef,
    fallbacks: s.fallbacks,
    released: r.released,
    releasedByGC: r.releasedByGC,
    releasedAtClose: r.releasedAtClose,
    returned: s.returned,
  };
}
