'use strict';
// How much of this process's pool region mappings is resident: what a side
// has touched of its own region and the peer's (a lazy receiver touches
// nothing of the peer's before its first payload).
const fs = require('node:fs');

/** Address ranges of this process's pool region mappings now ("start-end"). */
function poolMappings() {
  return new Set(
    fs
      .readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((l) => l.includes('xenring-pool'))
      .map((l) => l.split(' ')[0]),
  );
}

/**
 * Rss of this process's mappings of pool regions (both directions), in kB;
 * mappings in `except` (from poolMappings(): an earlier test's, still held by
 * its views) are not counted.
 */
function poolRss(except = new Set()) {
  let kb = 0;
  let inPool = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inPool = line.includes('xenring-pool') && !except.has(line.split(' ')[0]);
    else if (inPool && line.startsWith('Rss:')) kb += Number(line.split(/\s+/)[1]);
  }
  return kb;
}

module.exports = { poolRss, poolMappings };
