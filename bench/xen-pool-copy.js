'use strict';
// Xen lab only: how a receiver should make the private copy of a pool
// payload (docs/pool.md, "Trust"). Three ways to copy `size` bytes of a peer's
// granted pages into private memory, same run, medians and ranges:
//   map     memcpy from the region mapped once per connection (gntdev; the pool's way)
//   copy    IOCTL_GNTDEV_GRANT_COPY from the grant refs (one hypercall per 64 pages, nothing mapped)
//   remap   map + memcpy + unmap per payload (what persistent mapping avoids)
// dom0 grants the pages to itself (the lab allows it). The lab's CPU is
// emulated (TCG): the numbers are relative only.
//
//   ../shared/xen-lab/run.sh -- node bench/xen-pool-copy.js [--iterations 30] [--sizes 64k,1m,4m]
const path = require('node:path');
const { xen } = require(path.join(__dirname, '..', 'dist', 'transports', 'xen', 'native_xen.js'));
const { native } = require(path.join(__dirname, '..', 'dist', 'native.js'));
const { xenStore } = require(path.join(__dirname, '..', 'dist', 'transports', 'xen', 'xenstore.js'));

const PAGE = 4096;
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const parseSize = (s) => Number.parseInt(s, 10) * ({ k: 1024, m: 1 << 20 }[s.slice(-1).toLowerCase()] ?? 1);
const iterations = Number(arg('iterations', '30'));
const sizes = arg('sizes', '64k,1m,2m').split(',').map(parseSize);

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[s.length >> 1], min: s[0], max: s[s.length - 1] };
}

function time(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1000; // µs
}

async function main() {
  const xs = xenStore();
  const self = await xs.ownDomid();
  const maxPages = Math.max(...sizes) / PAGE;
  const share = xen.gntSharePool(self, maxPages);
  const region = Buffer.alloc(maxPages * PAGE);
  for (let i = 0; i < region.length; i++) region[i] = (i * 7) & 0xff;
  share.mapping.write(0, region);
  const mapped = xen.gntMapPool(self, share.refs);
  const fd = xen.gntdevOpen();
  const rows = [];
  try {
    for (const size of sizes) {
      const pages = size / PAGE;
      const refs = share.refs.slice(0, pages);
      const target = Buffer.alloc(size);
      const check = (how) => {
        if (target.compare(region, 0, size) !== 0) throw new Error(`${how}: copied bytes differ`);
        target.fill(0);
      };
      const ways = {
        map: () => mapped.read(0, target, 0, size),
        copy: () => xen.gntCopy(fd, self, refs, target),
        remap: () => {
          const m = xen.gntMapPool(self, refs);
          m.read(0, target, 0, size);
          m.close();
        },
      };
      const samples = { map: [], copy: [], remap: [] };
      for (let i = -2; i < iterations; i++) {
        for (const [how, fn] of Object.entries(ways)) {
          const us = time(fn);
          check(how);
          if (i >= 0) samples[how].push(us);
        }
      }
      const r = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
      rows.push({ size, ...r });
    }
  } finally {
    native.closeFd(fd);
    mapped.close();
    share.mapping.close();
  }
  const fmt = (s) => `${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
  console.log(`xen-pool-copy: ${iterations} iterations, µs median (min–max); emulated CPU, relative only`);
  console.log('| size | map (memcpy from mapping) | grant copy | map+copy+unmap | grant copy / map |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.size >= 1 << 20 ? `${r.size >> 20} MiB` : `${r.size >> 10} KiB`} | ${fmt(r.map)} | ${fmt(r.copy)} | ${fmt(r.remap)} | ${(r.copy.median / r.map.median).toFixed(2)}× |`);
  }
  console.log(JSON.stringify(rows));
  process.exit(0); // the xenstore connection stays open otherwise
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
