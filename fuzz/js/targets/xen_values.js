'use strict';
/**
 * Target `xen_values`: what the Xen transport accepts from values a peer
 * publishes, each against an independent oracle:
 *   - validateOrders(left, right, ext), the two u16 orders a client reads off
 *     the server's control page: it returns the grant count if and only if
 *     the layout is safe (orders 10..20, in-page rings in distinct slots, the
 *     grant list ending before every in-page ring and before the extension
 *     area, out-of-page rings with ext), else throws EPROTO;
 *   - parsePeerNumber(s) (ring-ref, event-channel) and parseDecimal(s): a
 *     canonical decimal in range, or EPROTO / null; never a partial parse;
 *   - the listener's ring-size hint: parseDecimal then ringOrder, as accept()
 *     does, never above the limit it was given.
 */
const { validateOrders, parsePeerNumber } = require('../../../dist/transports/xen/handshake');
const { parseDecimal } = require('../../../dist/transports/xen/xenstore');
const { ringOrder, MAX_XEN_RING_SIZE } = require('../../../dist/ring/ring_size');
const { check, expectCoded } = require('../runner');

const PAGE = 4096;
const GRANTS = 24;
const EXT_AREA = 3072;
const EPROTO = new Set(['EPROTO']);

function ordersOracle(l, r, ext) {
  const inPage = (o) => (o === 10 ? [1024, 2048] : o === 11 ? [2048, 4096] : null);
  if (![l, r].every((o) => o >= 10 && o <= 20)) return null;
  if (ext && (l < 12 || r < 12)) return null;
  const a = inPage(l);
  const b = inPage(r);
  if (a && b && a[0] < b[1] && b[0] < a[1]) return null;
  const count = (l >= 12 ? 2 ** (l - 12) : 0) + (r >= 12 ? 2 ** (r - 12) : 0);
  const end = GRANTS + 4 * count;
  if (end > (ext ? EXT_AREA : PAGE)) return null;
  for (const p of [a, b]) if (p && end > p[0]) return null;
  return count;
}

function str(buf) {
  return buf.toString('latin1');
}

function run(input) {
  const kind = input.length ? input[0] % 4 : 0;
  const rest = input.subarray(1);
  if (kind === 0) {
    const l = rest.length >= 2 ? rest.readUInt16LE(0) : 10;
    const r = rest.length >= 4 ? rest.readUInt16LE(2) : 11;
    const ext = rest.length >= 5 && (rest[4] & 1) === 1;
    const want = ordersOracle(l, r, ext);
    let got;
    try {
      got = validateOrders(l, r, ext);
    } catch (err) {
      expectCoded(err, EPROTO, 'validateOrders');
      check(want === null, `validateOrders(${l}, ${r}, ${ext}) refused a safe layout`);
      return;
    }
    check(want !== null, `validateOrders(${l}, ${r}, ${ext}) accepted an unsafe layout`);
    check(got === want, `validateOrders(${l}, ${r}, ${ext}) = ${got}, want ${want} grants`);
  } else if (kind === 1) {
    const what = rest.length && rest[0] & 1 ? 'event-channel' : 'ring-ref';
    const s = rest.length > 1 && rest[1] === 0xff ? null : str(rest.subarray(1));
    let n;
    try {
      n = parsePeerNumber(s, what);
    } catch (err) {
      expectCoded(err, EPROTO, 'parsePeerNumber');
      return;
    }
    const lo = what === 'ring-ref' ? 8 : 1;
    check(Number.isInteger(n) && n >= lo && n <= 0xffffffff && String(n) === s, `parsePeerNumber(${JSON.stringify(s)}) = ${n}`);
  } else if (kind === 2) {
    const lo = rest.length >= 4 ? rest.readUInt32LE(0) : 0;
    const hi = rest.length >= 8 ? rest.readUInt32LE(4) : 0x7fef;
    const s = str(rest.subarray(8));
    const n = parseDecimal(s, lo, hi);
    if (n === null) {
      const canonical = /^(0|[1-9][0-9]*)$/.test(s) && s.length <= 10;
      check(!canonical || Number(s) < lo || Number(s) > hi, `parseDecimal(${JSON.stringify(s)}, ${lo}, ${hi}) refused a valid number`);
    } else {
      check(Number.isInteger(n) && n >= lo && n <= hi && String(n) === s, `parseDecimal(${JSON.stringify(s)}) = ${n}`);
    }
  } else {
    // A client's ring-size hint, as the listener reads it.
    const hint = str(rest);
    const n = parseDecimal(hint, 0, MAX_XEN_RING_SIZE);
    if (n === null) return;
    let order;
    try {
      order = ringOrder(n, MAX_XEN_RING_SIZE);
    } catch (err) {
      if (!(err instanceof RangeError) || err.code !== 'ERR_OUT_OF_RANGE') throw err;
      return;
    }
    check(Number.isInteger(order) && 2 ** order === n && order >= 12 && order <= 20, `ring-size hint ${hint} gave order ${order}`);
  }
}

module.exports = { name: 'xen_values', maxLen: 64, run };
