/**
 * Which transports exist and which one is the default: 'xen' where the Xen
 * devices are usable, 'local' elsewhere.
 * @internal
 */
import { invalidArgValue } from '../errors';
import { localTransport } from './local';
import type { Transport } from './transport';
import { devicesUsable } from './xen/native_xen';
import { xenModule } from './xen_module';

const transports = new Map<string, Transport>([['local', localTransport]]);
const defaultProbes: Array<() => string | null> = [];

/** Adds a transport; `isDefault` says whether it should be picked when none is named. */
export function registerTransport(t: Transport, isDefault?: () => boolean): void {
  transports.set(t.name, t);
  if (isDefault) defaultProbes.push(() => (isDefault() ? t.name : null));
}

// 'xen' is the default where its devices are usable (probed once per
// process, without loading the transport: see xen_module.ts).
let xenUsable: boolean | undefined;
const xenOnDemand: Transport = {
  name: 'xen',
  connect: (req, signal) => xenModule().xenTransport.connect(req, signal),
  listen: (req, onLink, signal, onError) => xenModule().xenTransport.listen(req, onLink, signal, onError),
};
registerTransport(xenOnDemand, () => (xenUsable ??= devicesUsable()));

export function resolveTransport(name: unknown): Transport {
  if (name === undefined || name === null) {
    for (const probe of defaultProbes) {
      const n = probe();
      if (n) return transports.get(n)!;
    }
    return localTransport;
  }
  const t = typeof name === 'string' ? transports.get(name) : undefined;
  if (!t) throw invalidArgValue('options.transport', name, `must be one of ${[...transports.keys()].map((k) => `'${k}'`).join(', ')}`);
  return t;
}
