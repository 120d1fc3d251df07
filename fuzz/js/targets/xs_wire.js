'use strict';
/**
 * Target `xs_wire`: the xenstore client (lib/transports/xen/xenstore.ts)
 * reading replies that xenstored, or whatever answers on the xenbus fd,
 * sends back. The device is a scripted fake passed through the client's
 * injectable bindings. The input interleaves requests (read, directory,
 * directory_part pieces, get_perms, transactions, watches, the domid), raw
 * reply bytes in arbitrary chunks, well-framed replies to the last request
 * (so mutations reach the payload parsers), watch events, short writes, poll
 * errors and EOF.
 *
 * Invariants: every promise settles with the documented shape (strings,
 * string lists, perms with domid 0..65535 and n|r|w|b, a domid 0..0x7fef) or
 * a plain Error with an E* code; never a TypeError/RangeError or a throw out
 * of the fd callback; after close() no request is left pending (no hang).
 */
const { XenStore } = require('../../../dist/transports/xen/xenstore');
const { check, expectCoded } = require('../runner');

const FAKE_FD = 0x3ffffff0;
const HEADER = 16;
/** A real errno name: xenstored answers with those (xsd_errors), anything else must map to one. */
const E_CODE = (c) => /^E[A-Z0-9]+$/.test(c) && c in require('node:os').constants.errno;

/** The fake xenbus device behind one XenStore. */
const dev = {
  replies: [], // chunks fdRead hands out, in order
  written: [], // request messages the client wrote
  shortWrite: false,
  onEvent: null,
};
/** The client's bindings (lib/transports/xen/bindings.ts): the fake device, no addon. */
const bindings = {
  xen: {
    xenbusOpen: () => FAKE_FD,
    fdWrite: (fd, msg) => {
      dev.written.push(Buffer.from(msg));
      return dev.shortWrite ? msg.length - 1 : msg.length;
    },
    fdRead: () => (dev.replies.length ? dev.replies.shift() : null),
  },
  FdWatcher: class {
    constructor(fd, cb) {
      dev.onEvent = cb;
    }
    start() {}
    stop() {}
    ref() {}
    unref() {}
    close() {}
  },
  RingEndpoint: null,
  closeFd: () => {},
};

function frame(type, req, payload) {
  const b = Buffer.alloc(HEADER + payload.length);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(req, 4);
  b.writeUInt32LE(payload.length, 12);
  payload.copy(b, HEADER);
  return b;
}

const isStr = (s) => typeof s === 'string';
const CHECKS = {
  read: (v) => check(isStr(v), `read resolved ${typeof v}`),
  readOptional: (v) => check(v === null || isStr(v), `readOptional resolved ${typeof v}`),
  directory: (v) => check(Array.isArray(v) && v.every(isStr), 'directory resolved a non-string list'),
  getPerms: (v) =>
    check(
      Array.isArray(v) && v.every((p) => Number.isInteger(p.domid) && p.domid >= 0 && p.domid <= 0xffff && 'nrwb'.includes(p.perm) && p.perm.length === 1),
      `getPerms resolved ${JSON.stringify(v)}`,
    ),
  ownDomid: (v) => check(Number.isInteger(v) && v >= 0 && v <= 0x7fef, `ownDomid resolved ${v}`),
  transaction: (v) => check(isStr(v), `transaction resolved ${typeof v}`),
  write: (v) => check(v === undefined, 'write resolved a value'),
  watch: (v) => check(v && typeof v.close === 'function', 'watch resolved no handle'),
};

async function run(input) {
  dev.replies = [];
  dev.written = [];
  dev.shortWrite = false;
  // One fd: the scripted device answers whichever request went last (the pool is xenstore-pool.test.js's).
  const xs = new XenStore(bindings, { maxConnections: 1 });
  const settled = [];
  const watchPaths = [];
  const track = (kind, p) => {
    const entry = { kind, done: false, failure: null };
    settled.push(entry);
    p.then(
      (v) => {
        entry.done = true;
        try {
          CHECKS[kind](v);
          if (kind === 'watch') v.close();
        } catch (err) {
          entry.failure = err;
        }
      },
      (err) => {
        entry.done = true;
        try {
          expectCoded(err, E_CODE, kind);
        } catch (e) {
          entry.failure = e;
        }
      },
    );
  };
  // The last request written (a short write leaves its tail to a later write: skip tails).
  const lastReq = () => {
    const m = [...dev.written].reverse().find((w) => w.length >= HEADER);
    return m ? { op: m.readUInt32LE(0), req: m.readUInt32LE(4) } : { op: 2, req: 1 };
  };
  let i = 0;
  const byte = () => (i < input.length ? input[i++] : 0);
  const bytes = (n) => {
    const b = input.subarray(i, i + n);
    i += b.length;
    return Buffer.from(b);
  };
  const fire = (ev) => {
    dev.onEvent(ev); // a throw here would escape into libuv: the runner fails on it
  };
  while (i < input.length) {
    const b = byte();
    if (b < 0x30) {
      switch (b % 9) {
        case 0: track('read', xs.read(`/p/${b}`)); break;
        case 1: track('readOptional', xs.readOptional('/p')); break;
        case 2: track('directory', b & 0x10 ? xs.directoryAll('/d') : xs.directory('/d')); break;
        case 3: track('getPerms', xs.getPerms('/g')); break;
        case 4: track('ownDomid', xs.ownDomid()); break;
        case 5: track('transaction', xs.transaction((tx) => xs.read('/t', tx), 2)); break;
        case 6: track('write', xs.write('/w', 'v')); break;
        case 7: track('watch', xs.watch('/w', (p) => watchPaths.push(p))); break;
        default: dev.shortWrite = !dev.shortWrite;
      }
    } else if (b < 0x70) {
      // Raw bytes in one chunk.
      dev.replies.push(bytes(byte()));
      fire(1);
    } else if (b < 0xc0) {
      // A framed reply to the request in flight: its own type, an error, or a watch event.
      const { op, req } = lastReq();
      const t = byte();
      const type = t < 0xa0 ? op : t < 0xd0 ? 16 : t < 0xf0 ? 15 : t;
      const reqId = t & 1 && t >= 0xf0 ? req + 1 : req;
      const payload = bytes(byte());
      const f = frame(type, reqId, payload);
      // Split it to test reassembly.
      const cut = byte() % (f.length + 1);
      dev.replies.push(f.subarray(0, cut), f.subarray(cut));
      fire(1);
    } else if (b < 0xf8) {
      // A watch event for a token the client might have used.
      const { req } = lastReq();
      const payload = Buffer.concat([bytes(byte() % 32), Buffer.from(`\0xr${process.pid}_${byte() % 4}\0`)]);
      dev.replies.push(frame(15, req, payload));
      fire(1);
    } else if (b === 0xf8) {
      fire(-1); // poll error: every pending request fails
    } else {
      dev.replies.push(Buffer.alloc(0)); // EOF
      fire(1);
    }
    await null;
  }
  for (let k = 0; k < 4; k++) await new Promise(setImmediate);
  xs.close();
  for (let k = 0; k < 4; k++) await new Promise(setImmediate);
  for (const e of settled) {
    if (e.failure) throw e.failure;
    // The transaction body may still be waiting to start its next attempt.
    if (!e.done && e.kind !== 'transaction') throw new Error(`${e.kind} still pending after close()`);
  }
  check(watchPaths.every(isStr), 'watch callback got a non-string path');
}

module.exports = { name: 'xs_wire', maxLen: 1024, run };
