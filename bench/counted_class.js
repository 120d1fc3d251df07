'use strict';
// Wraps an addon class so every method call on its instances goes through
// `around(name, call)`, where call() runs the real method. The addon's
// methods are read-only on the prototype: the wrappers are own properties of
// each instance (defineProperty passes over the inherited read-only ones).
// Accessors (e.g. PoolQueue's index) are read, not called, and stay as they are.
function countedClass(Class, around) {
  const methods = Object.getOwnPropertyNames(Class.prototype).filter(
    (k) => k !== 'constructor' && typeof Object.getOwnPropertyDescriptor(Class.prototype, k).value === 'function',
  );
  return function Counted(...a) {
    const obj = new Class(...a);
    for (const k of methods) {
      const f = Class.prototype[k];
      // Configurable: a later wrapper (crossings.js's, over bindRingMethods) may replace it.
      Object.defineProperty(obj, k, { value: (...x) => around(k, () => f.apply(obj, x)), configurable: true });
    }
    return obj;
  };
}

module.exports = { countedClass };
