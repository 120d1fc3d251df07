/**
 * The Xen transport's module, loaded on first use: a process that never
 * touches Xen (every process where the devices are missing) does not load
 * its handshake, xenstore client and node:crypto, about a quarter of
 * `require('xenring')` (6 of 26 ms here).
 * @internal
 */
import type * as XenModule from './xen';

let loaded: typeof XenModule | null = null;

/** lib/transports/xen, required the first time it is asked for. @internal */
export function xenModule(): typeof XenModule {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (loaded ??= require('./xen') as typeof XenModule);
}
