'use strict';
// The native wake-up read as tests drive and observe it: the wake-read words'
// layout, arming them by plain stores (as the reader does), and counting the
// wake-ups whose read the fd watcher did natively.
const { native } = require('../../dist/native');

/** lib/native.ts WakeWord (a const enum: gone from dist). */
const W = { Armed: 0, Offset: 1, Max: 2, Watch: 3, Mark: 4, Sleep: 5, Count: 6 };

/** Arms `words` for up to `max` bytes at `offset` of the wake target; with `mark`, read nothing if the watched word moved from it. */
function arm(words, offset, max, mark) {
  words[W.Offset] = offset;
  words[W.Max] = max;
  words[W.Watch] = mark === undefined ? 0 : 1;
  words[W.Mark] = mark ?? 0;
  words[W.Armed] = 1;
}

/**
 * In the calling mocha suite, wraps every FdWatcher made so that wake-ups
 * whose read was done natively (read >= 0) or failed there (error) are
 * counted. Returns the counts, reset before each test.
 */
function countWokenReads() {
  const woken = { calls: 0, bytes: 0, errors: [] };
  let Real;
  before(function () {
    Real = native.FdWatcher;
    native.FdWatcher = function CountingWatcher(fd, callback) {
      // Every argument passes through (events, read, error, round, ...).
      return new Real(fd, (...args) => {
        const [, read, error] = args;
        if (read !== undefined && read >= 0) {
          woken.calls++;
          woken.bytes += read;
        }
        if (error !== undefined) woken.errors.push(error.code);
        return callback(...args);
      });
    };
  });
  after(function () {
    native.FdWatcher = Real;
  });
  beforeEach(function () {
    woken.calls = 0;
    woken.bytes = 0;
    woken.errors = [];
  });
  return woken;
}

module.exports = { W, arm, countWokenReads };
