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
  /** Closes both queues and drops the mapping (views still held keep it mapped). */
  close(): void;
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
    descriptors,
    completions,
    close() {
      descriptors.close();
      completions.close();
      mapping.close();
    },
  };
}
