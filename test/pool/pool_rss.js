'use strict';
// How much of this process's pool region mappings is resident: what a side
// has touched of its own region and the peer's (a lazy receiver touches
// nothing of the peer's before its first payload).
const fs = require('node:fs');

/**
 * Rss of this process's mappings of pool regions (both directions), in kB;
 * regions whose inode is in `except` (test/helpers/fixtures.js poolInodes():
 * an earlier test's, still held by its views) are not counted.
 */
function poolRss(except = new Set()) {
  let kb = 0;
  let inPool = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inPool = line.includes('xenring-pool') && !except.has(line.split(/\s+/)[4]);
    else if (inPool && line.startsWith('Rss:')) kb += Number(line.split(/\s+/)[1]);
  }
  return kb;
}

module.exports = { poolRss };
