/**
 * Where things live in one direction's pool region, and the pool's sizes.
 *
 * A region is one memfd (local) or one set of granted pages (Xen), written by
 * the sending side: page 0 holds the descriptor queue (sender -> receiver)
 * and the completion queue (receiver -> sender); the pool proper follows.
 * Extents are whole pages, so a release never shares a page with another
 * payload and a Xen grant-copy works page by page.
 * @internal
 */
import { invalidArgType, outOfRange } from '../errors';

export const POOL_PAGE = 4096;
/** Entries per queue: also the most payloads one direction has in flight. */
export const QUEUE_SLOTS = 128;
/** Descriptor: stream position (lo, hi), extent offset, extent length. */
export const DESCRIPTOR_WORDS = 4;
/** Completion: extent offset, extent length. */
export const COMPLETION_WORDS = 2;
/** Queue headers: prod and cons on their own cache lines. */
const QUEUE_HEADER = 128;
export const DESCRIPTOR_QUEUE_OFFSET = 0;
export const COMPLETION_QUEUE_OFFSET = DESCRIPTOR_QUEUE_OFFSET + QUEUE_HEADER + QUEUE_SLOTS * DESCRIPTOR_WORDS * 4;
/**
 * One word the receiver writes for the sender, after the queues. Bit 0
 * (READER_TAKES_VIEWS): payloads reach a 'data' listener as views, so runs
 * (RUN_BYTES) save the reader its copy; an `onread` reader, or one given
 * private copies, copies a payload anyway, and from pages colder than the
 * ring's, so the sender gathers no runs for it. A hint only: a peer that lies
 * costs itself speed, nothing else.
 */
export const READER_FLAGS_OFFSET = COMPLETION_QUEUE_OFFSET + QUEUE_HEADER + QUEUE_SLOTS * COMPLETION_WORDS * 4;
export const READER_TAKES_VIEWS = 1;
/**
 * Bit 1: the receiver has written the word. A lazy receiver (lazy_open.ts)
 * writes it only when it opens, after the first descriptor; until then a
 * sender whose peer announces lazy opening reads "not yet known", not "copies".
 * An older receiver writes only bit 0, at once.
 */
export const READER_FLAGS_SET = 2;
/** The pool starts on the page after the queues. */
export const POOL_DATA_OFFSET = POOL_PAGE;

/** Default pool per direction on `local`: untouched pages cost nothing. Provisional until measured in bench. */
export const DEFAULT_LOCAL_POOL = 64 << 20;
/**
 * Default pool per direction on `xen`: 256 grants + 1 queue page. With a
 * 64 KiB ring pair (33 grants) a domain spends 290 of gntalloc's default 1024
 * grants per connection it grants for.
 */
export const DEFAULT_XEN_POOL = 1 << 20;
/**
 * Ordinary Buffers written of at least this many bytes are copied into the
 * pool and sent by reference (one copy, and the reader gets pages already
 * faulted in) instead of through the ring (two copies). Measured
 * (docs/pool.md): at 64 KiB the per-payload cost eats the saved copy, at
 * 1 MiB a releasing reader gets ~1.8× the ring's rate.
 */
export const DEFAULT_COPY_THRESHOLD = 256 * 1024;
/** Larger ordinary Buffers take the ring: it paces a writer whose reader is slow (see copyWindow). */
export const DEFAULT_COPY_MAX = 4 << 20;
/** Bytes copied in and not yet taken by the reader beyond which ordinary Buffers take the ring. */
export const DEFAULT_COPY_WINDOW = 8 << 20;
/**
 * Ordinary writes that find the reader behind are gathered into one pool extent
 * of this size and sent as one reference (see RingWriter's runs): the reader
 * gets one view instead of copying each write out of the ring.
 */
export const RUN_BYTES = 1 << 20;
/** Runs only in pools of at least this size (a small pool, e.g. Xen's default, keeps its room for large payloads). */
export const RUN_MIN_POOL = 16 << 20;
/**
 * Runs in flight (sent, not yet returned) at most, and never more than half
 * the pool. A 'data' reader returns views only at its minor GCs, which V8
 * runs every ~32 MiB of young buffers: a smaller window runs dry between two
 * and sends the rest through the ring (16 MiB: about half the bytes).
 */
export const RUN_WINDOW = 32 << 20;
/** Largest pool accepted (extent offsets are u32 on the wire). */
export const MAX_POOL = 1 << 30;

/** Bytes of one direction's region for a pool of `poolSize` bytes. */
export function regionBytes(poolSize: number): number {
  return POOL_DATA_OFFSET + poolSize;
}

/** Validated `pool` option: size 0 disables; `views` opts into views on Xen. */
export interface PoolOptions {
  size: number;
  views: boolean | undefined;
}

/** Parses `options.pool` ({ size?, views? } | false | undefined) for a transport's default size. */
export function parsePoolOptions(value: unknown, defaultSize: number): PoolOptions {
  if (value === undefined) return { size: defaultSize, views: undefined };
  if (value === false) return { size: 0, views: undefined };
  if (value === null || typeof value !== 'object') throw invalidArgType('options.pool', 'of type object', value);
  const { size = defaultSize, views } = value as { size?: unknown; views?: unknown };
  if (typeof size !== 'number') throw invalidArgType('options.pool.size', 'of type number', size);
  if (!Number.isInteger(size) || size < 0 || size > MAX_POOL || size % POOL_PAGE !== 0)
    throw outOfRange('options.pool.size', `a multiple of ${POOL_PAGE} from 0 to ${MAX_POOL}`, size);
  if (views !== undefined && typeof views !== 'boolean') throw invalidArgType('options.pool.views', 'of type boolean', views);
  return { size, views };
}
