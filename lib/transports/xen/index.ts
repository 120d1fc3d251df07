/**
 * The Xen transport: libxenvchan-compatible vchan endpoints and
 * `transport: 'xen'` for connect/listen. See docs/xen.md.
 */
export { vchanServer, vchanClient, xenAvailable, waitForClient, XenLink, chooseOrders, validateOrders } from './vchan';
export type { VchanServerOptions, VchanClientOptions } from './vchan';
export { xenTransport, XEN_DEFAULT_RING_SIZE, listenPath, vchanPath, normalizeXenPort } from './transport';
export type { XenConnectRequest, XenListenRequest } from './transport';
