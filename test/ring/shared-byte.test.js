'use strict';
// SharedMapping.readByte / casByte: the two ways JS touches a kept ring's
// control page (lib/transports/local_reuse.ts). The swap is seen by a second
// mapping of the same pages (as the peer process sees it), and every bad
// argument is an error, never a write outside the mapping.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { native } = require('../../dist/native');

describe('ring: SharedMapping.readByte and casByte', () => {
  const opened = [];
  const mapping = (size, writable = true) => {
    const fd = native.memfdCreate('byte-test', size);
    opened.push(fd);
    return { fd, m: new native.SharedMapping(fd, size, writable) };
  };
  afterEach(() => {
    for (const fd of opened.splice(0)) fs.closeSync(fd);
  });

  it('swaps only from the expected value, returns the byte before, and the other mapping of the pages sees it', () => {
    const { fd, m } = mapping(4096);
    const other = new native.SharedMapping(fd, 4096, true);
    assert.equal(m.casByte(3080, 0, 1), 0); // swapped
    assert.equal(other.readByte(3080), 1);
    assert.equal(m.casByte(3080, 0, 2), 1); // not: it was 1
    assert.equal(other.readByte(3080), 1);
    assert.equal(other.casByte(3080, 1, 255), 1);
    assert.equal(m.readByte(3080), 255);
    assert.equal(m.readByte(3081), 0, 'its neighbour untouched');
    m.unmap();
    other.unmap();
  });

  it('refuses an offset outside the mapping, a value outside a byte, a read-only or unmapped mapping', () => {
    const { m } = mapping(4096);
    assert.throws(() => m.casByte(4096, 0, 1), { name: 'RangeError' });
    assert.throws(() => m.casByte(-1, 0, 1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => m.casByte(0, 0, 256), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => m.casByte(0, -1, 1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => m.casByte('0', 0, 1), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => m.readByte(4096), { name: 'RangeError' });
    const ro = mapping(4096, false).m;
    assert.throws(() => ro.casByte(0, 0, 1), { code: 'ERR_INVALID_STATE' });
    assert.equal(ro.readByte(0), 0);
    m.unmap();
    assert.throws(() => m.casByte(0, 0, 1), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => m.readByte(0), { code: 'ERR_INVALID_STATE' });
    ro.unmap();
  });
});
