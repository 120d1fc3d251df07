/**
 * The page-reference pool on the `xen` transport (docs/pool.md, "Xen"): each
 * side grants its sending region once per connection (gntalloc, writable:
 * the receiver writes the completion queue) and maps the peer's once
 * (gntdev). No map/unmap per payload.
 *
 * Negotiation, only between two xenring peers (the accept protocol,
 * transport.ts), in xenring-only nodes that a libxenvchan peer never sees:
 *
 *   request/pool-size  client's pool size (the most it takes in either direction)
 *   request/pool-ref   client's region (client→server), when it could grant one
 *   vchan/pool-size    server→client bytes (0: none); its region in vchan/pool-ref
 *   vchan/pool-peer-size  client→server bytes the server mapped (0: none)
 *
 * A `pool-ref` value names grant-list pages (space-separated refs), as
 * libxenvchan's control page lists its ring pages: a 1 MiB pool is 257
 * region pages, too many refs for one xenstore value (the store's node size
 * limit is 2 KiB by default). A list page holds 1024 refs (u32 LE); the
 * list is granted read-only and dropped once the peer has mapped the region.
 *
 * gntalloc's grant limit (1024 per domain by default) is shared with the
 * rings: ENOSPC, or this process' grants (rings and pools) reaching half the
 * limit, means that direction goes without a pool (size 0), never a failed
 * connect.
 * @internal
 */
import { readFileSync } from 'node:fs';
import { PAGE_SIZE } from '../../constants';
import { systemError } from '../../errors';
import type { SharedMapping } from '../../native';
import {
  DEFAULT_COPY_MAX,
  DEFAULT_COPY_THRESHOLD,
  DEFAULT_COPY_WINDOW,
  DEFAULT_XEN_POOL,
  MAX_POOL,
  regionBytes,
  type PoolOptions,
} from '../../pool/layout';
import type { PoolMapping } from '../../pool/native_pool';
import { agreePoolSize, PoolLink, viewsAllowed } from '../../pool/pool_link';
import type { XenBindings } from './bindings';
import { parseDecimal } from './xenstore';

export const POOL_SIZE_NODE = 'pool-size';
export const POOL_REF_NODE = 'pool-ref';
export const POOL_PEER_SIZE_NODE = 'pool-peer-size';

/** Refs one grant-list page holds. */
const REFS_PER_LIST_PAGE = PAGE_SIZE / 4;
/** Grant refs 0..7 are reserved by Xen (GNTTAB_NR_RESERVED_ENTRIES). */
const FIRST_GRANT_REF = 8;
/** gntalloc's default `limit` module parameter. */
const GNTALLOC_DEFAULT_LIMIT = 1024;

/** The pool asked for on Xen when `options.pool` is not given. */
export function xenPoolOptions(pool: PoolOptions | undefined): PoolOptions {
  return pool ?? { size: DEFAULT_XEN_POOL, views: undefined };
}

/** Grants a region of `poolBytes` takes: queue page + pool pages + grant-list pages. */
export function poolGrants(poolBytes: number): number {
  const pages = regionBytes(poolBytes) / PAGE_SIZE;
  return pages + Math.ceil(pages / REFS_PER_LIST_PAGE);
}

/**
 * Grants this process may hold, rings and pools together, for a new pool to
 * be granted: half of gntalloc's limit. Rings are never refused by this
 * budget (only by gntalloc), so pools cannot starve the rings of new
 * connections: at most half the limit, minus the rings, is ever in pools.
 */
function defaultBudget(): number {
  let limit = GNTALLOC_DEFAULT_LIMIT;
  try {
    const n = parseDecimal(readFileSync('/sys/module/xen_gntalloc/parameters/limit', 'utf8').trim(), 1, 0x7fffffff);
    if (n !== null) limit = n;
  } catch {
    /* not a Xen domain, or not readable: the default */
  }
  return Math.floor(limit / 2);
}

interface Budget {
  limit: number;
  /** Pool grants (regions and their lists). */
  used: number;
  /** Ring grants of the vchans this process serves. */
  rings: number;
}
const budgets = new WeakMap<XenBindings, Budget>();

function budgetOf(b: XenBindings): Budget {
  let budget = budgets.get(b);
  if (!budget) budgets.set(b, (budget = { limit: b.poolGrantBudget ?? defaultBudget(), used: 0, rings: 0 }));
  return budget;
}

/** Counts `n` ring grants against the pool budget until the returned function is called (once). */
export function holdRingGrants(b: XenBindings, n: number): () => void {
  const budget = budgetOf(b);
  budget.rings += n;
  let held = true;
  return () => {
    if (held) budget.rings -= n;
    held = false;
  };
}

/** Pool grants this process holds through `b` (tests). */
export function poolGrantsHeld(b: XenBindings): number {
  return budgetOf(b).used;
}

const isNoSpace = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOSPC';

/**
 * Our sending region, granted to the peer, with its grant list. close()
 * drops our reference: the grants go back when the last holder of the
 * mapping (the sender's queues, a loaned Buffer) is gone.
 */
export class GrantedRegion {
  private list: SharedMapping | null;
  private held: number;
  private mapped = true;

  constructor(
    readonly mapping: PoolMapping,
    readonly poolBytes: number,
    readonly listRefs: number[],
    list: SharedMapping,
    private readonly b: XenBindings,
  ) {
    this.list = list;
    this.held = poolGrants(poolBytes);
  }

  /** The peer has mapped the region: the grant list is not needed any more. */
  dropList(): void {
    if (!this.list) return;
    const pages = this.listRefs.length;
    try {
      this.list.unmap();
    } catch {
      /* never pinned */
    }
    this.list = null;
    this.held -= pages;
    budgetOf(this.b).used -= pages;
  }

  /** Drops the region without handing it to a PoolLink (no pool this way, or an error). */
  close(): void {
    this.dropList();
    if (this.mapped) this.mapping.close();
    this.forget();
  }

  /** The mapping now belongs to a PoolLink (which closes it); the budget is ours to give back. */
  handOver(): PoolMapping {
    this.mapped = false;
    return this.mapping;
  }

  /** Gives the region's grants back to the budget (the link closed). */
  forget(): void {
    this.mapped = false;
    budgetOf(this.b).used -= this.held;
    this.held = 0;
  }
}

/**
 * Grants a region for `poolBytes` of pool to `domid`. Null when gntalloc
 * is out of grants (ENOSPC) or this process' pool budget is spent: that
 * direction then has no pool. Other errors are thrown (nothing is left held).
 */
export function grantRegion(b: XenBindings, domid: number, poolBytes: number): GrantedRegion | null {
  if (poolBytes <= 0) return null;
  const budget = budgetOf(b);
  const grants = poolGrants(poolBytes);
  if (budget.used + budget.rings + grants > budget.limit) return null;
  const pages = regionBytes(poolBytes) / PAGE_SIZE;
  let region: { mapping: PoolMapping; refs: number[] };
  try {
    region = b.xen.gntSharePool(domid, pages);
  } catch (err) {
    if (isNoSpace(err)) return null;
    throw err;
  }
  let list: SharedMapping | null = null;
  try {
    const listPages = Math.ceil(pages / REFS_PER_LIST_PAGE);
    const share = b.xen.gntShare(domid, listPages, false, -1, -1);
    list = share.mapping;
    const refs = Buffer.alloc(4 * pages);
    region.refs.forEach((r, i) => refs.writeUInt32LE(r, 4 * i));
    b.xen.poke(list, 0, refs);
    budget.used += grants;
    return new GrantedRegion(region.mapping, poolBytes, share.refs, list, b);
  } catch (err) {
    if (list) list.unmap();
    region.mapping.close();
    if (isNoSpace(err)) return null;
    throw err;
  }
}

/** The value of a `pool-ref` node. */
export const formatRefs = (refs: readonly number[]) => refs.join(' ');

const bad = (why: string) => systemError('EPROTO', 'vchan connect', why);

/** Parses a pool size published by the peer: whole pages, at most MAX_POOL (else EPROTO). */
export function parsePoolSize(s: string, what: string): number {
  const n = parseDecimal(s, 0, MAX_POOL);
  if (n === null || n % PAGE_SIZE !== 0) throw bad(`invalid ${what} '${s}'`);
  return n;
}

/** Parses a `pool-ref` value: 1..n grant-list refs for a region of `poolBytes` (else EPROTO). */
export function parseListRefs(s: string, poolBytes: number): number[] {
  const want = Math.ceil(regionBytes(poolBytes) / PAGE_SIZE / REFS_PER_LIST_PAGE);
  const parts = s.split(' ');
  const refs = parts.map((p) => parseDecimal(p, FIRST_GRANT_REF, 0xffffffff));
  if (parts.length !== want || refs.some((r) => r === null)) throw bad(`invalid ${POOL_REF_NODE} '${s.slice(0, 64)}'`);
  return refs as number[];
}

/**
 * Retries `fn` while it throws EAGAIN (gntdev's mmap while the granting
 * domain pages its memory in), on timers with a growing delay, within
 * `budgetMs`; then the EAGAIN is the caller's.
 */
export async function retryEagain<T>(fn: () => T, budgetMs: number): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      return fn();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() + delay > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** How long mapping a peer's region keeps retrying EAGAIN. */
const MAP_RETRY_MS = 1000;

/**
 * Maps the first `poolBytes` of pool of the peer's region: its grant list
 * read-only (each page copied once into private memory, then unmapped),
 * every ref checked (reserved or repeated: EPROTO), then the region pages
 * read/write.
 */
export async function mapPeerRegion(b: XenBindings, domid: number, listRefs: number[], poolBytes: number): Promise<PoolMapping> {
  const pages = regionBytes(poolBytes) / PAGE_SIZE;
  const listPages = Math.ceil(pages / REFS_PER_LIST_PAGE);
  if (listPages > listRefs.length) throw bad('grant list too short for the pool size');
  const list = await retryEagain(() => b.xen.gntMap(domid, listRefs.slice(0, listPages), false, -1, -1), MAP_RETRY_MS);
  const refs: number[] = [];
  try {
    for (let p = 0; p < listPages; p++) {
      const n = Math.min(REFS_PER_LIST_PAGE, pages - p * REFS_PER_LIST_PAGE);
      const page = b.xen.peek(list, p * PAGE_SIZE, 4 * n);
      for (let i = 0; i < n; i++) refs.push(page.readUInt32LE(4 * i));
    }
  } finally {
    list.unmap();
  }
  const seen = new Set<number>();
  for (const r of refs) {
    // A repeated ref would alias two pages of the pool (or the queue page).
    if (r < FIRST_GRANT_REF || seen.has(r)) throw bad(`invalid pool grant ref ${r}`);
    seen.add(r);
  }
  return retryEagain(() => b.xen.gntMapPool(domid, refs), MAP_RETRY_MS);
}

/**
 * One connection's two pool directions while the handshake runs: what we
 * granted (own) and what we mapped of the peer's (peer). link() hands both
 * to a PoolLink; close() frees what was not handed over.
 */
export class XenPoolSetup {
  private linked: PoolLink | null = null;

  constructor(
    private own: GrantedRegion | null,
    readonly ownBytes: number,
    private peer: PoolMapping | null,
    readonly peerBytes: number,
    private readonly views: boolean,
  ) {}

  /** The grant-list refs of our region, to publish (null: no pool this way). */
  get ownListRefs(): number[] | null {
    return this.own && this.ownBytes > 0 ? this.own.listRefs : null;
  }

  /** The peer mapped our region: drop the grant list. */
  dropList(): void {
    this.own?.dropList();
  }

  /**
   * The connection's PoolLink (null when neither direction has a pool).
   * Ordinary writes are copied into the pool on the same terms as on local.
   */
  link(): PoolLink | null {
    if (this.linked || (this.ownBytes === 0 && this.peerBytes === 0)) return this.linked;
    const own = this.own && this.ownBytes > 0 ? { mapping: this.own.handOver(), poolBytes: this.ownBytes } : null;
    const peer = this.peer && this.peerBytes > 0 ? { mapping: this.peer, poolBytes: this.peerBytes } : null;
    this.peer = null;
    try {
      this.linked = new PoolLink({
        own,
        peer,
        createdOwn: true,
        createdPeer: false,
        views: this.views,
        copyThreshold: DEFAULT_COPY_THRESHOLD,
        copyMax: DEFAULT_COPY_MAX,
        copyWindow: DEFAULT_COPY_WINDOW,
      });
    } catch (err) {
      // Handed over to a link that never was: ours to free (close() is idempotent).
      own?.mapping.close();
      peer?.mapping.close();
      throw err;
    }
    return this.linked;
  }

  /** Frees everything: the link (views the user holds stay readable), or what was never linked. */
  close(): void {
    this.linked?.close();
    this.own?.close();
    this.own = null;
    this.peer?.close();
    this.peer = null;
  }
}

/** What a client asks for, written under its request node. */
export interface PoolOffer {
  size: number;
  region: GrantedRegion | null;
}

/** The client's offer: grants its region to the server (none if 0, out of grants or out of budget). */
export function offerPool(b: XenBindings, server: number, pool: PoolOptions): PoolOffer {
  return { size: pool.size, region: grantRegion(b, server, pool.size) };
}

/** The request's child nodes for an offer ([] when the client wants no pool). */
export function offerNodes(offer: PoolOffer): [string, string][] {
  if (offer.size === 0) return [];
  const nodes: [string, string][] = [[POOL_SIZE_NODE, String(offer.size)]];
  if (offer.region) nodes.push([POOL_REF_NODE, formatRefs(offer.region.listRefs)]);
  return nodes;
}

/** An offer as the server read it from the request: size 0 when the client sent none (plain or older xenring). */
export interface PeerPoolOffer {
  size: number;
  listRefs: number[] | null;
}

/** Parses the request's pool nodes (null values: absent). Malformed: EPROTO. */
export function parseOffer(size: string | null, ref: string | null): PeerPoolOffer {
  if (size === null) return { size: 0, listRefs: null };
  const n = parsePoolSize(size, POOL_SIZE_NODE);
  return { size: n, listRefs: n > 0 && ref !== null ? parseListRefs(ref, n) : null };
}

/**
 * The server's side: maps the client's region (client→server) for the
 * agreed size and grants its own (server→client). A mapping failure other
 * than a malformed grant list only turns that direction off. Returns the
 * setup and the nodes to publish beside ring-ref.
 */
export async function answerPool(
  b: XenBindings,
  client: number,
  ours: PoolOptions,
  offer: PeerPoolOffer,
): Promise<{ setup: XenPoolSetup; nodes: [string, string][] }> {
  const size = agreePoolSize(ours.size, offer.size);
  let peerBytes = offer.listRefs ? size : 0;
  let peer: PoolMapping | null = null;
  if (peerBytes > 0) {
    try {
      peer = await mapPeerRegion(b, client, offer.listRefs!, peerBytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPROTO') throw err;
      peerBytes = 0;
    }
  }
  let own: GrantedRegion | null = null;
  try {
    own = grantRegion(b, client, size);
  } catch (err) {
    peer?.close();
    throw err;
  }
  const ownBytes = own ? size : 0;
  const setup = new XenPoolSetup(own, ownBytes, peer, peerBytes, viewsAllowed('xen', false, ours.views));
  const nodes: [string, string][] = [];
  if (offer.size > 0) {
    nodes.push([POOL_SIZE_NODE, String(ownBytes)], [POOL_PEER_SIZE_NODE, String(peerBytes)]);
    if (own) nodes.push([POOL_REF_NODE, formatRefs(own.listRefs)]);
  }
  return { setup, nodes };
}

/**
 * The client's side, from the server's answer (null values: absent, i.e.
 * a server without pool support: no pool either way). Checks the answer
 * against what we offered (EPROTO otherwise) and maps the server's region.
 * On success the offer's region is the setup's (or closed, if unused); on
 * error it stays the caller's to close.
 */
export async function acceptPool(
  b: XenBindings,
  server: number,
  pool: PoolOptions,
  offer: PoolOffer,
  answer: { size: string | null; peerSize: string | null; ref: string | null },
): Promise<XenPoolSetup> {
  const views = viewsAllowed('xen', false, pool.views);
  const s2c = answer.size === null ? 0 : parsePoolSize(answer.size, POOL_SIZE_NODE);
  const c2s = answer.peerSize === null ? 0 : parsePoolSize(answer.peerSize, POOL_PEER_SIZE_NODE);
  if (s2c > offer.size) throw bad(`${POOL_SIZE_NODE} ${s2c} is more than we offered`);
  if (c2s > (offer.region ? offer.size : 0)) throw bad(`${POOL_PEER_SIZE_NODE} ${c2s} is more than we granted`);
  let peer: PoolMapping | null = null;
  if (s2c > 0) {
    if (answer.ref === null) throw bad(`${POOL_SIZE_NODE} without ${POOL_REF_NODE}`);
    peer = await mapPeerRegion(b, server, parseListRefs(answer.ref, s2c), s2c);
  }
  // The server mapped our region before it published: our grant list is done,
  // and the whole region if the server took none of it.
  if (c2s > 0) offer.region!.dropList();
  else offer.region?.close();
  return new XenPoolSetup(c2s > 0 ? offer.region : null, c2s, peer, s2c, views);
}
