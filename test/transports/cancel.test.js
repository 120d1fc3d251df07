'use strict';
// transports/cancel.ts: a connect's cancellation, AbortSignal's subset
// without an EventTarget. It must behave as the AbortSignal the transports
// were written against: listeners run once, at abort, with the reason set;
// an aborted signal takes no more; a listener that throws does not stop the
// others and surfaces as an uncaught exception, as an EventTarget's does.
const assert = require('node:assert/strict');
const { Cancel } = require('../../dist/transports/cancel');
const { deadline } = require('../../dist/transports/xen/wait');

describe('transports: a connect\'s Cancel', () => {
  it('runs each listener once at abort(), with aborted and reason set; removed ones do not run', () => {
    const c = new Cancel();
    const seen = [];
    const removed = () => seen.push('removed');
    c.signal.addEventListener('abort', () => seen.push(['a', c.aborted, c.reason.message]));
    c.signal.addEventListener('abort', removed);
    c.signal.addEventListener('abort', () => seen.push('b'), { once: true });
    c.signal.removeEventListener('abort', removed);
    assert.equal(c.aborted, false);
    c.signal.throwIfAborted();
    const reason = new Error('given up');
    c.abort(reason);
    c.abort(new Error('again'));
    assert.deepEqual(seen, [['a', true, 'given up'], 'b']);
    assert.equal(c.reason, reason);
    assert.throws(() => c.signal.throwIfAborted(), reason);
    c.signal.addEventListener('abort', () => seen.push('late'));
    c.abort(new Error('once more'));
    assert.equal(seen.length, 2, 'a listener added after the abort ran');
  });

  it('a listener that throws: the others still run, the error is uncaught on a later tick', async () => {
    const c = new Cancel();
    const ran = [];
    const mochaHandlers = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const uncaught = new Promise((resolve) => process.once('uncaughtException', resolve));
    try {
      c.signal.addEventListener('abort', () => {
        throw new Error('listener bug');
      });
      c.signal.addEventListener('abort', () => ran.push('second'));
      assert.doesNotThrow(() => c.abort(new Error('stop')));
      assert.deepEqual(ran, ['second']);
      assert.equal((await uncaught).message, 'listener bug');
    } finally {
      for (const h of mochaHandlers) process.on('uncaughtException', h);
    }
  });

  it('folds into a Xen deadline as an AbortSignal does', () => {
    const c = new Cancel();
    const d = deadline(c.signal, 0, () => new Error('timeout'));
    assert.equal(d.signal.aborted, false);
    c.abort(new Error('destroyed'));
    assert.equal(d.signal.aborted, true);
    assert.equal(d.signal.reason.message, 'destroyed');
    d.dispose();
    const c2 = new Cancel();
    const d2 = deadline(c2.signal, 0, () => new Error('timeout'));
    d2.dispose(); // forgets the parent
    c2.abort(new Error('later'));
    assert.equal(d2.signal.aborted, false);
  });
});
