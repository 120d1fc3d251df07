'use strict';
// The position pattern used by every data test: byte i of a stream is i % 251
// (251 is prime, so a shifted, lost or duplicated chunk never lines up again).
const PERIOD = 251;
const MAX_SLICE = 8 << 20;
const pattern = Buffer.alloc(MAX_SLICE + PERIOD);
for (let i = 0; i < pattern.length; i++) pattern[i] = i % PERIOD;

/** The pattern bytes for stream positions [pos, pos + len). */
function slice(pos, len) {
  if (len > MAX_SLICE) throw new RangeError('slice too long');
  const start = pos % PERIOD;
  return pattern.subarray(start, start + len);
}

/** Checks a received stream against the pattern, chunk by chunk. */
class PatternChecker {
  constructor() {
    this.received = 0;
    this.badOffset = -1;
  }
  update(chunk) {
    for (let off = 0; off < chunk.length && this.badOffset < 0; off += MAX_SLICE) {
      const part = chunk.subarray(off, Math.min(chunk.length, off + MAX_SLICE));
      if (!part.equals(slice(this.received + off, part.length))) {
        const want = slice(this.received + off, part.length);
        let i = 0;
        while (part[i] === want[i]) i++;
        this.badOffset = this.received + off + i;
      }
    }
    this.received += chunk.length;
  }
  get ok() {
    return this.badOffset < 0;
  }
}

/**
 * Writes `total` pattern bytes in `chunk`-sized writes, honouring backpressure.
 * Each write gets its own copy so the stream may keep the buffer.
 */
function writePattern(stream, total, chunk, done) {
  let pos = 0;
  const pump = () => {
    while (pos < total) {
      const n = Math.min(chunk, total - pos);
      const buf = Buffer.from(slice(pos, n));
      pos += n;
      if (!stream.write(buf)) {
        stream.once('drain', pump);
        return;
      }
    }
    if (done) done();
  };
  pump();
}

module.exports = { PERIOD, slice, PatternChecker, writePattern };
