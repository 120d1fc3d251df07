/**
 * This domain's id, known synchronously, so `server.address()` has it right
 * after `listen()` (net has bound by then). Linux exposes no domid to a guest
 * outside xenstore (nothing under /sys/hypervisor or /proc/xen), so a guest
 * asks xenstore for its relative key `domid` on a xenbus fd of its own and
 * waits for the reply at most `timeoutMs`: a stuck store costs that once,
 * and the address then comes from the ordinary asynchronous client.
 * @internal
 */
import { MAX_DOMID } from '../../constants';
import type { XenBindings } from './bindings';
import { encodeMessage, HEADER, PAYLOAD_MAX, parseDecimal } from './xenbus_connection';

const OP_READ = 2;
/** Longest the loop thread waits for the reply (once per process at most, see knownDomid()). */
export const OWN_DOMID_WAIT_MS = 100;

/** The domid from xenstore's `domid` key, or null (no device, no reply in time, an error or a malformed reply). */
export function readOwnDomidSync(b: Pick<XenBindings, 'xen' | 'closeFd'>, timeoutMs = OWN_DOMID_WAIT_MS): number | null {
  let fd: number;
  try {
    fd = b.xen.xenbusOpen();
  } catch {
    return null;
  }
  try {
    const body = Buffer.from('domid\0', 'latin1');
    const msg = encodeMessage(OP_READ, 0, body);
    msg.writeUInt32LE(1, 4); // req_id: the only request on this fd
    if (b.xen.fdWrite(fd, msg) !== msg.length) return null;
    const end = Date.now() + timeoutMs;
    let got = Buffer.alloc(0);
    for (;;) {
      if (got.length >= HEADER) {
        const len = got.readUInt32LE(12);
        if (len > PAYLOAD_MAX) return null;
        if (got.length >= HEADER + len) {
          if (got.readUInt32LE(0) !== OP_READ || got.readUInt32LE(4) !== 1) return null; // an error reply, or not ours
          return parseDecimal(got.toString('latin1', HEADER, HEADER + len), 0, MAX_DOMID);
        }
      }
      const left = end - Date.now();
      if (left <= 0 || !b.xen.fdWaitReadable(fd, left)) return null;
      const chunk = b.xen.fdRead(fd, 4096);
      if (chunk === null) continue;
      if (chunk.length === 0) return null;
      got = Buffer.concat([got, chunk]);
    }
  } catch {
    return null;
  } finally {
    b.closeFd(fd);
  }
}
