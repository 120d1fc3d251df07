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
