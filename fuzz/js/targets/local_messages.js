'use strict';
/**
 * Target `local_messages`: the local handshake's message parsers as pure
 * functions (lib/transports/local_handshake.ts), each against an oracle:
 *   - parseHello(data, fdCount): accepted iff 16 bytes (or 20 with a pool
 *     size: whole pages up to 1 GiB; or 24 with flags too: bits 1 and 2
 *     only, at least one), magic "XRH1", HANDSHAKE_VERSION, HELLO_FDS fds
 *     (+1 for a non-zero pool without flag 1), asked order 0 or 12..26;
 *     fields as sent;
 *   - parseReopen(data, fdCount): accepted iff 16 bytes, "XRO1",
 *     HANDSHAKE_VERSION, a word 0 (asks) or 1 (claimed: what it returns),
 *     a zero word, no fd;
 *   - parseAccept(data, fdCount, asked, offered): accepted iff 16 bytes (or 24
 *     when a pool was offered: two sizes, whole pages, none above the offer),
 *     "XRA1", HANDSHAKE_VERSION, ACCEPT_FDS fds (+1 for a pool to the client),
 *     both orders 12..26 and none above `asked`;
 *   - grantOrder(asked, ceiling): never above the server's ceiling;
 *   - buildHello/buildAccept round-trip through the parsers.
 * Anything refused is a plain Error coded EPROTO.
 */
const { check, expectCoded } = require('../runner');
const hs = require('../../../dist/transports/local_handshake');

const HELLO = 0x31485258;
const REOPEN = 0x314f5258;
const ACCEPT = 0x31415258;
const EPROTO = new Set(['EPROTO']);
const orderOk = (o) => o >= 12 && o <= 26;
const poolOk = (size, max) => size >= 0 && size <= max && size % 4096 === 0;
const MAX_POOL = 1 << 30;

function attempt(fn, what) {
  try {
    return { value: fn() };
  } catch (err) {
    expectCoded(err, EPROTO, what);
    return { err };
  }
}

function run(input) {
  if (!hs) return;
  const kind = input.length ? input[0] % 4 : 0;
  const fdCount = input.length > 1 ? input[1] % 5 : 0;
  const asked = input.length > 2 ? (input[2] < 0xc0 ? input[2] % 32 : 0) : 0;
  const data = Buffer.from(input.subarray(3));
  const u32 = (at) => (data.length >= at + 4 ? data.readUInt32LE(at) : -1);
  if (kind === 0) {
    const r = attempt(() => hs.parseHello(data, fdCount), 'parseHello');
    const pool = data.length === 20 || data.length === 24 ? u32(16) : null;
    const flags = data.length === 24 ? u32(20) : 0;
    const flagsOk = data.length !== 24 || (flags !== 0 && (flags & ~3) === 0);
    const shape = (data.length === 16 && fdCount === hs.HELLO_FDS) ||
      (pool !== null && flagsOk && poolOk(pool, MAX_POOL) && fdCount === hs.HELLO_FDS + (pool > 0 && !(flags & 1) ? 1 : 0));
    const valid = shape && u32(0) === HELLO && u32(4) === hs.HANDSHAKE_VERSION && (u32(8) === 0 || orderOk(u32(8)));
    check(valid === !r.err, `parseHello(${data.toString('hex')}, ${fdCount}) ${r.err ? 'refused' : 'accepted'} it`);
    if (valid) {
      check(r.value.order === u32(8) && r.value.pid === u32(12), 'parseHello fields differ from the message');
      check(Boolean(r.value.lazyRegions) === Boolean(flags & 1) && Boolean(r.value.reusable) === Boolean(flags & 2), 'parseHello flags differ from the message');
    }
    const ro = attempt(() => hs.parseReopen(data, fdCount), 'parseReopen');
    const reopenValid = data.length === 16 && u32(0) === REOPEN && u32(4) === hs.HANDSHAKE_VERSION && (u32(8) === 0 || u32(8) === 1) && u32(12) === 0 && fdCount === 0;
    check(reopenValid === !ro.err, `parseReopen(${data.toString('hex')}, ${fdCount}) ${ro.err ? 'refused' : 'accepted'} it`);
    if (!ro.err) check(ro.value === (u32(8) === 1), `parseReopen(${data.toString('hex')}) says claimed ${ro.value}`);
  } else if (kind === 1) {
    const offered = input.length > 1 && input[1] >= 0x80 ? 1 << 26 : null;
    const r = attempt(() => hs.parseAccept(data, fdCount, asked, offered), 'parseAccept');
    const lo = u32(8);
    const ro = u32(12);
    const shape = (data.length === 16 && fdCount === hs.ACCEPT_FDS) ||
      (offered !== null && data.length === 24 && poolOk(u32(16), offered) && poolOk(u32(20), offered) && fdCount === hs.ACCEPT_FDS + (u32(20) > 0 ? 1 : 0));
    const valid = shape && u32(0) === ACCEPT && u32(4) === hs.HANDSHAKE_VERSION && orderOk(lo) && orderOk(ro) &&
      (asked === 0 || (lo <= asked && ro <= asked));
    check(valid === !r.err, `parseAccept(${data.toString('hex')}, ${fdCount}, ${asked}) ${r.err ? 'refused' : 'accepted'} it`);
    if (valid) check(r.value.leftOrder === lo && r.value.rightOrder === ro, 'parseAccept fields differ from the message');
  } else if (kind === 2) {
    const a = data.length ? data[0] % 32 : 0;
    const ceiling = 12 + (data.length > 1 ? data[1] % 15 : 0);
    if (a !== 0 && !orderOk(a)) return; // parseHello refuses those first
    const g = hs.grantOrder(a, ceiling);
    check(Number.isInteger(g) && g >= 12 && g <= ceiling && (a === 0 || g <= a), `grantOrder(${a}, ${ceiling}) = ${g}`);
  } else {
    const order = data.length ? data[0] % 32 : 12;
    const pid = u32(1) >>> 0;
    if (order === 0 || orderOk(order)) {
      const h = hs.parseHello(hs.buildHello({ order, pid }), hs.HELLO_FDS);
      check(h.order === order && h.pid === pid, 'HELLO does not round-trip');
      const poolSize = (pid & 0x3ffff) * 4096;
      const hp = hs.parseHello(hs.buildHello({ order, pid, poolSize }), hs.HELLO_FDS + (poolSize > 0 ? 1 : 0));
      check(hp.order === order && hp.pid === pid && hp.poolSize === poolSize, 'HELLO with a pool does not round-trip');
    }
    const ro = data.length > 1 ? data[1] % 32 : 12;
    if (orderOk(order) && orderOk(ro)) {
      const a = hs.parseAccept(hs.buildAccept({ leftOrder: order, rightOrder: ro }), hs.ACCEPT_FDS, 0);
      check(a.leftOrder === order && a.rightOrder === ro, 'ACCEPT does not round-trip');
      const pool = { toServer: (pid & 0xff) * 4096, toClient: ((pid >>> 8) & 0xff) * 4096 };
      const ap = hs.parseAccept(hs.buildAccept({ leftOrder: order, rightOrder: ro, pool }), hs.ACCEPT_FDS + (pool.toClient > 0 ? 1 : 0), 0, 1 << 20);
      check(ap.pool.toServer === pool.toServer && ap.pool.toClient === pool.toClient, 'ACCEPT with a pool does not round-trip');
    }
  }
}

module.exports = { name: 'local_messages', maxLen: 64, run };
