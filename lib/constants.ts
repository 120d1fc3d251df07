/**
 * Numbers fixed by the platform or by Xen, defined once for every layer.
 * @internal
 */

/** Bytes per page: the unit of sharing (grants, memfd mappings, the vchan control page). */
export const PAGE_SIZE = 4096;
/** log2(PAGE_SIZE): ring orders below it live inside the control page. */
export const PAGE_SHIFT = 12;
/** The highest ordinary Xen domain id (DOMID_FIRST_RESERVED - 1). */
export const MAX_DOMID = 0x7fef;
/** The highest port number (as TCP, so that net code's ports carry over). */
export const MAX_PORT = 65535;
