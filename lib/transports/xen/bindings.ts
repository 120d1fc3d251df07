/**
 * What the Xen transport needs from below, as one injectable object: the
 * device calls (grants, event channels, xenbus), the ring endpoint and the fd
 * watcher. The default is the addon; tests pass fakes (test/xen-fake/) so the
 * handshake, the accept protocol and the xenstore client run without Xen.
 * @internal
 */
import { readFileSync } from 'node:fs';
import { native, type FdWatcher, type RingEndpoint, type RingEndpointOptions } from '../../native';
import { xen, type NativeXen } from './native_xen';
import { readOwnDomidSync } from './own_domid';
import type { XenStoreOptions } from './xenstore';

export interface XenBindings {
  readonly xen: NativeXen;
  readonly RingEndpoint: new (options: RingEndpointOptions) => RingEndpoint;
  readonly FdWatcher: new (fd: number, callback: (events: number) => void) => FdWatcher;
  closeFd(fd: number): void;
  /** Pool grants this process may hold at once (default: half of gntalloc's limit). */
  readonly poolGrantBudget?: number;
  /** Options of this bindings' xenstore client (request timeout, requests in flight). */
  readonly storeOptions?: XenStoreOptions;
  /** This domain's id, told synchronously (dom0 from /proc/xen; a guest by one bounded xenstore read), else null. */
  knownDomid?(): number | null;
}

/**
 * dom0 knows it is domain 0: Linux's /proc/xen/capabilities says
 * `control_d` in the initial domain only. A guest reads its `domid` key from
 * xenstore once, synchronously and bounded (own_domid.ts); the answer, or
 * the failure, is kept for the process (a failure is not retried: the
 * asynchronous client learns the id at the first listen anyway).
 */
let ownDomid: number | null | undefined;
function knownDomid(): number | null {
  if (ownDomid !== undefined) return ownDomid;
  try {
    if (/\bcontrol_d\b/.test(readFileSync('/proc/xen/capabilities', 'latin1'))) return (ownDomid = 0);
  } catch {
    /* no /proc/xen: not dom0, maybe no Xen at all */
  }
  return (ownDomid = readOwnDomidSync(addonBindings));
}

/** The real devices, through the addon (looked up at each use, so the addon object stays the one source). */
export const addonBindings: XenBindings = {
  xen,
  get RingEndpoint() {
    return native.RingEndpoint;
  },
  get FdWatcher() {
    return native.FdWatcher;
  },
  closeFd: (fd) => native.closeFd(fd),
  knownDomid,
};
