/**
 * The Xen transport: libxenvchan-compatible vchan endpoints and
 * `transport: 'xen'` for connect/listen. See docs/xen.md.
 */
export { vchanServer, vchanClient, xenAvailable, waitForClient, XenLink, chooseOrders, validateOrders } from './handshake';
export type { VchanServerOptions, VchanClientOptions } from './handshake';
export { xenTransport, createXenTransport, XEN_DEFAULT_RING_SIZE, listenPath, vchanPath, normalizeXenPort } from './transport';
export { addonBindings } from './bindings';
export { xenStore } from './xenstore';
export type { XenBindings } from './bindings';
export type { XenConnectRequest, XenListenRequest } from './transport';
