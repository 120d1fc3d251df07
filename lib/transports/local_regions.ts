/**
 * Regions on demand (local_handshake.ts, issue 14): a connection's pool
 * regions cross its rendezvous socket in REGION messages, each when its
 * sender first needs it, instead of in the handshake. Most connections never
 * send by reference; making, passing, checking and mapping two 64 MiB
 * regions was a fifth of a new connection's CPU (docs/benchmark.md).
 *
 * The peer is hostile: its REGION must name exactly the agreed size, carry
 * one fd, a sealed memfd of that size (mapPeerRegion), and come once. A peer
 * that marks its sender opened (lib/pool/lazy_open.ts) without having sent
 * it fails the connection (EPROTO) when our receiver opens; an honest one
 * sends it first, so it is queued by then.
 * @internal
 */
import { systemError } from '../errors';
import { closeQuietly, native } from '../native';
import type { PoolMapping } from '../pool/native_pool';
import { mapPeerRegion } from '../pool/pool_link';
import { buildRegion, parseRegion } from './local_handshake';

/** A message read from a rendezvous socket. */
export interface RendezvousMessage {
  data: Buffer;
  fds: number[];
  truncated?: boolean;
}

/**
 * Reads what the peer sent on rendezvous socket `conn`, to the end of what
 * is queued, each message (not end of file) to `onMessage`, which owns its
 * fds. True once the peer hung up (end of file, an empty record, or an
 * error twice: the ring's live and fin bytes then say how it left).
 */
export function readRendezvous(conn: number, onMessage: (msg: RendezvousMessage) => void): boolean {
  let errors = 0;
  for (;;) {
    let msg;
    try {
      msg = native.recvMessage(conn);
    } catch {
      // A peer that closed with our own messages unread leaves ECONNRESET
      // pending here, returned once before what it sent is: read on.
      if (++errors > 1) return true;
      continue;
    }
    if (msg === null) return false;
    if (msg.data.length === 0) {
      msg.fds.forEach(closeQuietly);
      return true;
    }
    onMessage(msg);
  }
}

export class RegionExchange {
  /** The peer's region, mapped when its message was read, until our receiver takes it. */
  private peerRegion: PoolMapping | null = null;
  private peerSent = false;
  private sent = false;
  private closed = false;

  /**
   * @param conn the rendezvous socket (the link owns it)
   * @param toUs agreed pool bytes the peer sends us (0: none)
   * @param toPeer agreed pool bytes we send (0: none)
   */
  constructor(
    private readonly conn: number,
    private readonly toUs: number,
    private readonly toPeer: number,
  ) {}

  /** Hands our region's memfd `fd` to the peer (once, before our first descriptor). */
  send(fd: number): void {
    if (this.closed || this.sent || this.toPeer === 0) throw new Error('pool region: nothing to send');
    const msg = buildRegion(this.toPeer);
    if (native.sendMessage(this.conn, msg, [fd]) !== msg.length) throw systemError('EAGAIN', 'sendmsg', 'pool region message did not fit');
    this.sent = true;
  }

  /**
   * Reads what the peer sent on the rendezvous socket (readRendezvous): true
   * once it hung up. Throws EPROTO for anything but its one good REGION
   * message, EMFILE for one whose fd we had no room for.
   */
  read(): boolean {
    return readRendezvous(this.conn, this.handle);
  }

  /** One message the peer sent on the rendezvous socket (not end of file): its REGION, or EPROTO. Closes its fds. */
  readonly handle = (msg: RendezvousMessage): void => {
    try {
      // The kernel drops a passed fd it cannot install (RLIMIT_NOFILE).
      if (msg.truncated && msg.fds.length === 0) throw systemError('EMFILE', 'recvmsg', 'no free fd for the peer\'s pool region (too many open files)');
      if (this.peerSent || this.closed) throw systemError('EPROTO', 'recvmsg', 'a second pool region from the peer');
      parseRegion(msg.data, msg.fds.length, this.toUs, 'recvmsg');
      this.peerRegion = mapPeerRegion(msg.fds[0], this.toUs);
      this.peerSent = true;
    } finally {
      msg.fds.forEach(closeQuietly); // mapped (or refused): the mapping keeps the pages
    }
  };

  /** No region crossed either way (a link kept for another connection must not carry one: local_reuse.ts). */
  get untouched(): boolean {
    return !this.sent && !this.peerSent;
  }

  /** The peer's region, for our receiver as it opens: read now if still queued; EPROTO if the peer never sent it. */
  takePeer(): PoolMapping {
    if (this.peerRegion === null && !this.peerSent && !this.closed) this.read();
    const region = this.peerRegion;
    if (region === null) throw systemError('EPROTO', 'recvmsg', this.peerSent ? 'pool region taken twice' : 'the peer opened its pool without its region');
    this.peerRegion = null;
    return region;
  }

  /**
   * Takes what is still queued without mapping it (its fds closed), up to the
   * end of file: a region that came as we closed neither stays in flight on a
   * socket kept for recycling (which would read it as the peer still there)
   * nor pins the peer's pages.
   */
  drain(): void {
    for (let i = 0; i < 4; i++) {
      let msg;
      try {
        msg = native.recvMessage(this.conn);
      } catch {
        continue; // a pending ECONNRESET: what is queued follows
      }
      if (msg === null) return;
      msg.fds.forEach(closeQuietly);
      if (msg.data.length === 0) return;
    }
  }

  /** The connection is gone: a region read and never taken is unmapped. */
  close(): void {
    this.closed = true;
    this.peerRegion?.close();
    this.peerRegion = null;
  }
}
