/**
 * Typed view of the addon's `xen` object (native/xen_devices.cc). Thin device
 * bindings only; the protocol lives in the other files of this folder.
 * @internal
 */
import { native, type Notifier, type SharedMapping } from '../../native';
import type { PoolMapping } from '../../pool/native_pool';

export interface GrantShare {
  /** All pages, mapped read/write, contiguous. */
  mapping: SharedMapping;
  /** One grant ref per page, in page order. */
  refs: number[];
}

export interface NativeXen {
  /** Share `count` fresh zeroed pages with `domid` (gntalloc). notifyOffset/notifyPort: -1 = none. */
  gntShare(domid: number, count: number, writable: boolean, notifyOffset: number, notifyPort: number): GrantShare;
  /** Map a peer's grant refs (gntdev); read-only maps may only notify by event. */
  gntMap(domid: number, refs: number[], writable: boolean, notifyOffset: number, notifyPort: number): SharedMapping;
  /** A pool region: `count` fresh pages granted writable to `domid`, as a PoolMapping (munmap frees them). */
  gntSharePool(domid: number, count: number): { mapping: PoolMapping; refs: number[] };
  /** Maps a peer's pool region read/write, as a PoolMapping (munmap unmaps it). */
  gntMapPool(domid: number, refs: number[]): PoolMapping;
  /** /dev/xen/gntdev for gntCopy (closed with closeFd). */
  gntdevOpen(): number;
  /** Copies the granted pages `refs` of `domid` into `target` (IOCTL_GNTDEV_GRANT_COPY). */
  gntCopy(fd: number, domid: number, refs: number[], target: Uint8Array): void;
  /** /dev/xen/evtchn, O_CLOEXEC | O_NONBLOCK. */
  evtchnOpen(): number;
  evtchnBindUnbound(fd: number, remoteDomid: number): number;
  evtchnBindInterdomain(fd: number, remoteDomid: number, remotePort: number): number;
  evtchnUnbind(fd: number, port: number): void;
  evtchnNotify(fd: number, port: number): void;
  evtchnUnmask(fd: number, port: number): void;
  evtchnPending(fd: number): number[];
  /** Wakes the peer through `port` bound on `fd`, and is woken by it. */
  evtchnNotifier(fd: number, port: number): Notifier;
  /** /dev/xen/xenbus, O_CLOEXEC | O_NONBLOCK. */
  xenbusOpen(): number;
  /** Bytes written, 0 on EAGAIN. */
  fdWrite(fd: number, data: Uint8Array): number;
  /** Bytes read (empty at EOF) or null when nothing is ready. */
  fdRead(fd: number, max: number): Buffer | null;
  /** Blocks until `fd` is readable or `timeoutMs` (at most 10 s) pass; true if readable. */
  fdWaitReadable(fd: number, timeoutMs: number): boolean;
  /** A private copy of up to one page of a mapping (to parse the peer's control page). */
  peek(mapping: SharedMapping, offset: number, length: number): Buffer;
  /** Copies `data` into a writable mapping (the server's grant list). */
  poke(mapping: SharedMapping, offset: number, data: Uint8Array): void;
  devicesAccessible(): { gntalloc: boolean; gntdev: boolean; evtchn: boolean; xenbus: boolean };
  readonly pageSize: number;
}

export const xen = native.xen as unknown as NativeXen;

/** True when the four Xen devices exist and are usable by this process (never throws). */
export function devicesUsable(x: Pick<NativeXen, 'devicesAccessible'> = xen): boolean {
  try {
    const d = x.devicesAccessible();
    return d.gntalloc && d.gntdev && d.evtchn && d.xenbus;
  } catch {
    return false;
  }
}
