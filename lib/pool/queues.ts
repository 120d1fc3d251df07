/**
 * Opens one direction's two queues on its region mapping, from either side;
 * closing them also drops the mapping.
 * @internal
 */
import {
  COMPLETION_QUEUE_OFFSET,
  COMPLETION_WORDS,
  DESCRIPTOR_QUEUE_OFFSET,
  DESCRIPTOR_WORDS,
  QUEUE_SLOTS,
} from './layout';
import { poolNative, PoolMapping, PoolQueue } from './native_pool';

export interface DirectionQueues {
  descriptors: PoolQueue;
  completions: PoolQueue;
  /** Closes both queues and drops the mapping (views still held keep it mapped); `keepMapping`: the caller keeps it open. */
  close(keepMapping?: boolean): void;
}

/**
 * The sender produces descriptors and consumes completions; the receiver the
 * reverse. `init`: zero the indices (whoever created the region, before the
 * peer maps it).
 */
export function openQueues(mapping: PoolMapping, poolBytes: number, side: 'sender' | 'receiver', init: boolean): DirectionQueues {
  const sender = side === 'sender';
  const common = { mapping, slots: QUEUE_SLOTS, init, limit: poolBytes };
  const descriptors = new poolNative.PoolQueue({
    ...common,
    offset: DESCRIPTOR_QUEUE_OFFSET,
    words: DESCRIPTOR_WORDS,
    role: sender ? 'producer' : 'consumer',
  });
  const completions = new poolNative.PoolQueue({
    ...common,
    offset: COMPLETION_QUEUE_OFFSET,
    words: COMPLETION_WORDS,
    role: sender ? 'consumer' : 'producer',
  });
  return {
    descriptors: sender ? descriptors : popWhenMoved(descriptors),
    completions: sender ? popWhenMoved(completions) : completions,
    close(keepMapping = false) {
      descriptors.close();
      completions.close();
      if (!keepMapping) mapping.close();
    },
  };
}

/**
 * The consumer's side of `queue`, whose pop() makes no native call while the
 * producer's index still equals what we popped up to: a small message on a
 * pool connection looks for payloads on every pump (and a sender for
 * completions on every send), ~0.2-0.45 µs per native call (issue 10 item 7).
 * The look is only a hint: a peer that writes its index can at most cause a
 * pop that finds nothing or fails with EPROTO, or hide its own entries (its
 * own stream to us). After close the view is detached and reads
 * `undefined`, so pop() goes native and throws as on any closed queue.
 * Without external buffers every pop is native.
 */
function popWhenMoved(queue: PoolQueue): PoolQueue {
  let look: Uint32Array;
  try {
    look = queue.peerIndex();
  } catch {
    return queue;
  }
  let taken = queue.index;
  return {
    push: (entries, count) => queue.push(entries, count),
    pop(out, max) {
      if (look[0] === taken) return 0;
      const n = queue.pop(out, max);
      taken = (taken + n) >>> 0;
      return n;
    },
    pending: () => queue.pending(),
    get index() {
      return queue.index;
    },
    peerIndex: () => queue.peerIndex(),
    close: () => queue.close(),
  };
}
