/**
 * The page-reference path's building blocks (issue 13). Wired into the
 * channel and the transports' handshakes separately; see docs/pool.md.
 * @internal
 */
export { ExtentAllocator } from './extent_allocator';
export * from './layout';
export { poolNative } from './native_pool';
export type { PoolMapping, PoolQueue } from './native_pool';
export { PoolReceiver } from './pool_receiver';
export { PoolSender } from './pool_sender';
export { connectionPoolStats, emptyPoolStats } from './pool_stats';
export type { PoolStats } from './pool_stats';
export { ReceiveTable } from './receive_table';
export { SendTable } from './send_table';
export { agreePoolSize, createLocalRegion, mapPeerRegion, PoolLink, viewsAllowed } from './pool_link';
