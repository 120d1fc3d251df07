'use strict';
// What a process holds, read from /proc: open fds, mappings, xenring memfds
// (mapped or open) and RSS. Used before and after each fault and load to show
// the process came back to where it started.
const fs = require('node:fs');

function snapshot() {
  const fdDir = '/proc/self/fd';
  let fds = 0;
  let memfdFds = 0;
  for (const fd of fs.readdirSync(fdDir)) {
    fds++;
    try {
      if (fs.readlinkSync(`${fdDir}/${fd}`).startsWith('/memfd:xenring')) memfdFds++;
    } catch {
      /* closed while listing (the readdir fd itself) */
    }
  }
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean);
  const memfdMaps = maps.filter((l) => l.includes('/memfd:xenring')).length;
  // Anonymous mappings come and go with the JS heap and malloc arenas (RSS
  // covers them); anything we map (memfds, Xen devices) has a path.
  const named = maps.filter((l) => l.split(/\s+/)[5]?.startsWith('/')).length;
  const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
  // Where RSS growth comes from, when it does: the JS heap, or Buffers and
  // other memory V8 is told of (external), or neither (malloc, pages).
  const mem = process.memoryUsage();
  return { fds, maps: named, anonMaps: maps.length - named, memfds: memfdFds + memfdMaps, rss, heap: mem.heapTotal, external: mem.external };
}

/**
 * Lets closes, finalizers and the GC settle, then snapshots. Rings and pool
 * regions a server keeps for a client's next connection
 * (lib/transports/local_recycle.ts) and the ring mappings a client keeps
 * for the same (local_ring_cache.ts) are waited out: they must all be gone
 * once unused for their idle time. The links both sides keep
 * (local_reuse.ts, idle 10-12 s) are freed now (test/transports/kept-links
 * checks their idle time).
 */
async function settled() {
  const recycle = require('../../dist/transports/local_recycle');
  const reuse = require('../../dist/transports/local_reuse');
  const { ringCacheStats } = require('../../dist/transports/local_ring_cache');
  const kept = () => recycle.keptConnections() > 0 || ringCacheStats().keys.length > 0 || reuse.keptClientLinks() > 0 || reuse.parkedLinks() > 0;
  const longest = recycle.RECYCLE_IDLE_MS;
  // In the loop: a link kept by a close that completes meanwhile goes too.
  for (let i = 0; i < (longest + 1000) / 10 && (reuse.dropKeptLinks(), kept()); i++) await new Promise((r) => setTimeout(r, 10));
  reuse.dropKeptLinks();
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 30));
    if (global.gc) global.gc();
  }
  return snapshot();
}

const MiB = 1 << 20;
/**
 * RSS may grow by this much: the JS heap and the allocator keep what a burst
 * of 200 connections made them grow to. A leaked ring would also show up as
 * a memfd; the soak (thousands of connections) shows a leak as steady growth.
 */
const RSS_TOLERANCE = 64 * MiB;
/** File-backed mappings: only a lazily loaded library or data file may add one. */
const MAPS_TOLERANCE = 2;

/** Compares two snapshots: { ok, text, problems }. No fd or memfd may be added. */
function compare(before, after) {
  const problems = [];
  // Fewer is fine: in a full test run another test's leftovers may close meanwhile.
  if (after.fds > before.fds) problems.push(`fds ${before.fds} -> ${after.fds}`);
  if (after.memfds > before.memfds) problems.push(`memfds ${before.memfds} -> ${after.memfds}`);
  if (after.maps - before.maps > MAPS_TOLERANCE) problems.push(`mappings ${before.maps} -> ${after.maps}`);
  if (after.rss - before.rss > RSS_TOLERANCE) problems.push(`RSS ${fmt(before.rss)} -> ${fmt(after.rss)}`);
  const text =
    `fds ${before.fds}->${after.fds}, memfds ${before.memfds}->${after.memfds}, ` +
    `file maps ${before.maps}->${after.maps}, anon maps ${before.anonMaps}->${after.anonMaps}, RSS ${fmt(before.rss)}->${fmt(after.rss)} ` +
    `(JS heap ${fmt(before.heap)}->${fmt(after.heap)}, external ${fmt(before.external)}->${fmt(after.external)})`;
  return { ok: problems.length === 0, text, problems };
}

function fmt(bytes) {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

module.exports = { snapshot, settled, compare, RSS_TOLERANCE, MAPS_TOLERANCE };
