/**
 * `transport: 'xen'`: connect/listen between domains by domid and port, one
 * fresh vchan per connection. The accept protocol on xenstore (docs/xen.md):
 *
 *   listener  /local/domain/<S>/data/xenring/<port>          = "<pid>"
 *   request   /local/domain/<S>/data/xenring/<port>/<C>-<nonce> = "<ringSize>"
 *   vchan     /local/domain/<S>/data/vchan/<C>/xenring-<port>-<nonce>/{ring-ref,event-channel}
 *   refusal   /local/domain/<S>/data/vchan/<C>/xenring-<port>-<nonce>/error = "ECONNREFUSED"
 *
 * The client C writes a request node (xenstore makes C its owner, which is how
 * the server authenticates the claimed domid), then watches the vchan path.
 * The server consumes the request, publishes a vchan granted to C only, waits
 * for C to map it (with a timeout: a domain that dies first sends nothing),
 * deletes the vchan nodes and hands the link to the stream layer.
 */
import { randomBytes } from 'node:crypto';
import { MAX_DOMID, MAX_PORT } from '../../constants';
import { codedError, outOfRange, systemError } from '../../errors';
import { MAX_XEN_RING_SIZE, ringOrder } from '../../ring/ring_size';
import type { ConnectRequest, ListenRequest, Listener, RingLink, Transport, TransportAddress } from '../transport';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  vchanClient,
  vchanServer,
  waitForClient,
  type XenLink,
} from './vchan';
import { validateDomid, validatePort } from '../../validators';
import { parseDecimal, xenStore, type XenStore, type XsWatch } from './xenstore';

/**
 * Bytes per direction when none is asked for. 64 KiB = 33 grants per
 * connection (as Qubes' qrexec): the kernel's gntalloc allows 1024 grants per
 * domain by default, so 1 MiB rings (513 grants) would allow one connection.
 */
export const XEN_DEFAULT_RING_SIZE = 1 << 16;
const EPHEMERAL_LO = 49152;

export interface XenConnectRequest extends ConnectRequest {
  /** ms to wait for the server to publish the vchan. Default 10 s. */
  timeout?: number;
}

export interface XenListenRequest extends ListenRequest {
  /** ms an accepted client has to map its vchan. Default 10 s. */
  timeout?: number;
}

/** A port: integer 0..65535 (1.. to connect) or a name (one alphabet for every transport). */
export function normalizeXenPort(port: unknown, allowZero: boolean): number | string {
  return validatePort(port, 'options.port', allowZero);
}

function checkDomid(domid: unknown): number {
  return domid === undefined ? 0 : validateDomid(domid);
}

function checkTimeout(t: unknown): number {
  if (t === undefined) return DEFAULT_CONNECT_TIMEOUT_MS;
  if (typeof t !== 'number' || !(t >= 0) || !Number.isFinite(t)) throw outOfRange('options.timeout', 'a finite number >= 0', t);
  return t;
}

export const listenPath = (server: number, port: number | string) => `/local/domain/${server}/data/xenring/${port}`;
export const vchanPath = (server: number, client: number, port: number | string, nonce: string) =>
  `/local/domain/${server}/data/vchan/${client}/xenring-${port}-${nonce}`;

function refusal(code: string): Error {
  return systemError(code === 'EACCES' || code === 'ENOENT' || code === 'EPERM' ? 'ECONNREFUSED' : code, 'connect');
}

function connect(req: ConnectRequest, signal: AbortSignal): Promise<RingLink> {
  const run = async () => {
    const server = checkDomid(req.domid);
    const port = normalizeXenPort(req.port, false);
    const size = req.ringSize === undefined ? XEN_DEFAULT_RING_SIZE : 2 ** ringOrder(req.ringSize, MAX_XEN_RING_SIZE);
    const timeout = checkTimeout((req as XenConnectRequest).timeout);
    const xs = xenStore();
    const self = await xs.ownDomid();
    const lpath = listenPath(server, port);
    // No listener (or not allowed to see it) is a refusal, as with TCP.
    try {
      if ((await xs.readOptional(lpath)) === null) throw systemError('ECONNREFUSED', 'connect');
    } catch (err) {
      throw refusal((err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED');
    }
    const nonce = randomBytes(8).toString('hex');
    const request = `${lpath}/${self}-${nonce}`;
    try {
      await xs.write(request, String(size));
    } catch (err) {
      throw refusal((err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED');
    }
    try {
      signal.throwIfAborted();
      return await vchanClient({
        domid: server,
        path: vchanPath(server, self, port, nonce),
        timeout,
        ext: true,
        port,
        onCancelable: (cancel) => signal.addEventListener('abort', () => cancel(signal.reason as Error), { once: true }),
      });
    } finally {
      // Consumed by the server on success; ours to delete on failure.
      void xs.rmQuiet(request);
    }
  };
  return run().then((link: XenLink) => {
    if (!signal.aborted) return link;
    link.release(); // made while we were giving up
    throw signal.reason;
  });
}

/** Ports this process listens on (the pid in the node cannot tell two of ours apart). */
const activePorts = new Set<string>();

class XenListener implements Listener {
  private watch: XsWatch | null = null;
  private owned = false;
  private published = false;
  private closed = false;
  private refed = true;
  private busy = false;
  private again = false;
  private readonly seen = new Set<string>();
  /** Accepted requests whose client has not mapped its vchan yet. */
  private readonly pending = new Set<{ link: XenLink | null; cancel: ((e: Error) => void) | null }>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly xs: XenStore,
    readonly self: number,
    readonly port: number | string,
    private readonly only: number | undefined,
    private readonly ringSize: number,
    private readonly backlog: number,
    private readonly timeout: number,
    private readonly onLink: (link: RingLink) => void,
  ) {}

  get path(): string {
    return listenPath(this.self, this.port);
  }

  async start(): Promise<void> {
    const key = String(this.port);
    if (activePorts.has(key)) throw systemError('EADDRINUSE', 'listen', key);
    activePorts.add(key);
    this.owned = true;
    const existing = await this.xs.readOptional(this.path);
    if (existing !== null) {
      // A live listener in this domain owns it; a dead one (crash) left a stale node.
      const pid = parseDecimal(existing, 1, 0x7fffffff);
      if (pid !== null && pid !== process.pid && pidAlive(pid)) throw systemError('EADDRINUSE', 'listen', key);
      await this.xs.rmQuiet(this.path);
    }
    if (this.closed) throw systemError('ECANCELED', 'listen');
    this.published = true;
    await this.publish();
    this.watch = await this.xs.watch(this.path, () => void this.scan(), true);
    if (!this.refed) this.xs.release();
  }

  private async publish(): Promise<void> {
    // Clients must create children here; xenstore makes each child's creator its
    // owner and copies the rest of these perms, so an explicit entry for us keeps
    // the children readable by the server.
    const perms =
      this.only === undefined
        ? [{ domid: this.self, perm: 'b' as const }]
        : [
            { domid: this.self, perm: 'n' as const },
            { domid: this.only, perm: 'b' as const },
            { domid: this.self, perm: 'b' as const },
          ];
    await this.xs.transaction(async (tx) => {
      await this.xs.write(this.path, String(process.pid), tx);
      await this.xs.setPerms(this.path, perms, tx);
    });
  }

  address(): TransportAddress {
    return { address: String(this.self), family: 'xen', port: this.port };
  }

  private async scan(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        if (this.closed) return;
        let names: string[];
        try {
          names = await this.xs.directory(this.path);
        } catch (err) {
          // Someone removed our node (any domain may write here): put it back.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !this.closed) await this.publish().catch(() => undefined);
          continue;
        }
        for (const name of names) {
          if (this.closed || this.seen.has(name)) continue;
          this.seen.add(name);
          void this.accept(name).finally(() => this.seen.delete(name));
        }
      } while (this.again);
    } finally {
      this.busy = false;
    }
  }

  private async accept(name: string): Promise<void> {
    const request = `${this.path}/${name}`;
    const m = /^([0-9]{1,5})-([0-9a-f]{16})$/.exec(name);
    const client = m ? parseDecimal(m[1], 0, MAX_DOMID) : null;
    if (!m || client === null) {
      await this.xs.rmQuiet(request);
      return;
    }
    const nonce = m[2];
    let hint: string | null;
    let owner: number | undefined;
    try {
      owner = (await this.xs.getPerms(request))[0]?.domid;
      hint = await this.xs.read(request);
    } catch {
      return; // withdrawn meanwhile
    }
    await this.xs.rmQuiet(request);
    // An unprivileged creator owns its node; only a privileged one (or we) leaves us as owner.
    if (owner !== client && owner !== this.self) return;
    const vpath = vchanPath(this.self, client, this.port, nonce);
    let size = this.ringSize;
    if (hint !== '') {
      const n = parseDecimal(hint, 0, MAX_XEN_RING_SIZE);
      try {
        if (n === null) throw new Error('bad ring size');
        size = 2 ** ringOrder(n, MAX_XEN_RING_SIZE);
      } catch {
        await this.refuse(client, vpath, 'EINVAL');
        return;
      }
    }
    if (this.closed || (this.only !== undefined && client !== this.only) || this.pending.size >= this.backlog) {
      await this.refuse(client, vpath, 'ECONNREFUSED');
      return;
    }
    const entry: { link: XenLink | null; cancel: ((e: Error) => void) | null } = { link: null, cancel: null };
    this.pending.add(entry);
    try {
      entry.link = await vchanServer({ domid: client, path: vpath, readSize: size, writeSize: size, ext: true, port: this.port });
      if (this.closed) throw systemError('ECANCELED', 'accept');
      await waitForClient(entry.link, this.timeout, (c) => (entry.cancel = c));
      await entry.link.unpublish();
      this.pending.delete(entry);
      if (this.closed) throw systemError('ECANCELED', 'accept');
      this.onLink(entry.link);
    } catch (err) {
      this.pending.delete(entry);
      entry.link?.release();
      if (!entry.link && !this.closed) await this.refuse(client, vpath, (err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED');
    }
  }

  private async refuse(client: number, vpath: string, code: string): Promise<void> {
    try {
      await this.xs.write(`${vpath}/error`, /^E[A-Z]+$/.test(code) ? code : 'ECONNREFUSED');
      await this.xs.setPerms(`${vpath}/error`, [
        { domid: this.self, perm: 'n' },
        { domid: client, perm: 'r' },
      ]);
    } catch {
      return;
    }
    // The client reads it at once; remove it after its connect timeout at the latest.
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.xs.rmQuiet(vpath);
    }, this.timeout || DEFAULT_CONNECT_TIMEOUT_MS);
    t.unref();
    this.timers.add(t);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) activePorts.delete(String(this.port));
    if (!this.published) return; // the node (if any) is someone else's
    if (this.watch && !this.refed) this.xs.hold(); // watch.close() drops the hold it took
    this.watch?.close();
    this.watch = null;
    void this.xs.rmQuiet(this.path);
    for (const e of this.pending) {
      e.cancel?.(systemError('ECANCELED', 'accept'));
    }
    for (const t of this.timers) {
      clearTimeout(t);
    }
    this.timers.clear();
  }

  ref(): void {
    if (this.refed) return;
    this.refed = true;
    if (this.watch) this.xs.hold();
  }

  unref(): void {
    if (!this.refed) return;
    this.refed = false;
    if (this.watch) this.xs.release();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listen(req: ListenRequest, onLink: (link: RingLink) => void, signal: AbortSignal): Promise<Listener> {
  const run = async (): Promise<XenListener> => {
    const only = req.domid === undefined ? undefined : checkDomid(req.domid);
    let port = normalizeXenPort(req.port, true);
    const size = req.ringSize === undefined ? XEN_DEFAULT_RING_SIZE : 2 ** ringOrder(req.ringSize, MAX_XEN_RING_SIZE);
    const backlog = req.backlog === undefined ? 511 : Math.max(1, Math.floor(req.backlog));
    const timeout = checkTimeout((req as XenListenRequest).timeout);
    const xs = xenStore();
    const self = await xs.ownDomid();
    for (let attempt = 0; ; attempt++) {
      if (port === 0 || attempt > 0) {
        if (attempt > 64) throw systemError('EADDRINUSE', 'listen', 'no free port');
        port = EPHEMERAL_LO + Math.floor(Math.random() * (MAX_PORT - EPHEMERAL_LO + 1));
        if ((await xs.readOptional(listenPath(self, port))) !== null) continue;
      }
      const l = new XenListener(xs, self, port, only, size, backlog, timeout, onLink);
      try {
        await l.start();
        return l;
      } catch (err) {
        l.close();
        if (req.port !== 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
  };
  return run().then((l) => {
    if (!signal.aborted) return l;
    l.close(); // came up after the server was closed
    throw signal.reason;
  });
}

/** The Xen transport (grants + event channels + xenstore). */
export const xenTransport: Transport = { name: 'xen', connect, listen };
