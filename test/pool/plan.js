'use strict';
// Writes a pattern stream as a plan of writes through the public socket API:
// [size, 'alloc'] fills socket.allocBuffer(size) (a reference when the pool
// can serve it), [size, 'buf'] an ordinary Buffer (the ring below the copy
// threshold, 256 KiB, copied into the pool above it). Byte i of the stream is i % 251,
// so a payload delivered out of order, lost or duplicated shows at its first byte.
const { slice } = require('../helpers/pattern');

/** Resolves once every write of `plan` was accepted (honours 'drain'); `pos`: the stream position it starts at. */
function writePlan(socket, plan, pos = 0) {
  let i = 0;
  return new Promise((resolve, reject) => {
    const onError = (err) => reject(err);
    socket.once('error', onError);
    const go = () => {
      while (i < plan.length) {
        const [size, kind] = plan[i++];
        const buf = kind === 'alloc' ? socket.allocBuffer(size) : Buffer.allocUnsafe(size);
        // allocBuffer may hand back an ordinary Buffer (a fallback); either way it is filled here.
        for (let off = 0; off < size; off += 8 << 20) {
          const n = Math.min(8 << 20, size - off);
          buf.set(slice(pos + off, n), off);
        }
        pos += size;
        if (!socket.write(buf)) {
          socket.once('drain', go);
          return;
        }
      }
      socket.off('error', onError);
      resolve(pos);
    };
    go();
  });
}

/** A plan mixing small ring writes with pool payloads of both kinds. */
function mixedPlan(rounds) {
  const plan = [];
  for (let r = 0; r < rounds; r++) {
    plan.push([13 + r, 'buf'], [100003, 'alloc'], [5, 'buf'], [70001, 'buf'], [3001, 'alloc'], [1 + (r % 7), 'buf']);
    plan.push([(1 << 20) + 17, 'alloc'], [40009, 'buf'], [300007, 'buf'], [200, 'buf'], [33000, 'alloc']);
  }
  return plan;
}

module.exports = { writePlan, mixedPlan };
