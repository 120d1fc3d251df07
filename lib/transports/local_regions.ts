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
   * Reads what the peer sent on the rendezvous socket. True once it hung up
   * (end of file, an empty record, or an error: as before regions came this
   * way, the ring's live and fin bytes then say how it left). Throws EPROTO
   * for anything but its one good REGION message.
   */
  read(): boolean {
    for (;;) {
      let msg;
      try {
        msg = native.recvMessage(this.conn);
      } catch {
        return true;
      }
      if (msg === null) return false;
      if (msg.data.length === 0) {
        msg.fds.forEach(closeQuietly);
        return true;
      }
      try {
        if (this.peerSent || this.closed) throw systemError('EPROTO', 'recvmsg', 'a second pool region from the peer');
        parseRegion(msg.data, msg.fds.length, this.toUs, 'recvmsg');
        this.peerRegion = mapPeerRegion(msg.fds[0], this.toUs);
        this.peerSent = true;
      } finally {
        msg.fds.forEach(closeQuietly); // mapped (or refused): the mapping keeps the pages
      }
    }
  }

  /** The peer's region, for our receiver as it opens: read now if still queued; EPROTO if the peer never sent it. */
  takePeer(): PoolMapping {
    if (this.peerRegion === null && !this.peerSent && !this.closed) this.read();
    const region = this.peerRegion;
    if (region === null) throw systemError('EPROTO', 'recvmsg', this.peerSent ? 'pool region taken twice' : 'the peer opened its pool without its region');
    this.peerRegion = null;
    return region;
  }

  /** The connection is gone: a region read and never taken is unmapped. */
  close(): void {
    this.closed = true;
    this.peerRegion?.close();
    this.peerRegion = null;
  }
}
