'use strict';
/**
 * A small coverage-free mutational fuzzer for the TypeScript parsers: replays
 * the corpus and regression inputs, then mutates them (bit flips, interesting
 * little-endian values, inserts, deletes, splices) for a bounded time or
 * count. A target is { name, maxLen, run(buf) }: run() throws (or rejects)
 * only when an invariant broke; the documented errors (EPROTO, ...) are the
 * target's to catch and check. The first failure is saved and ends the run.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

/** One input that takes longer than this is a failure: nothing a peer sends may hang us. */
const HANG_MS = 10_000;
const INTERESTING = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x1000, 0x7fff, 0xffff, 0x10000, 0x7fffffff,
  0x80000000, 0xfffffffe, 0xffffffff];

/** xorshift: deterministic for a given seed, so a smoke failure can be replayed. */
function makeRng(seed) {
  let s = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + 1n);
  return (n) => {
    s ^= s << 13n;
    s = BigInt.asUintN(64, s);
    s ^= s >> 7n;
    s ^= s << 17n;
    s = BigInt.asUintN(64, s);
    return n <= 0 ? 0 : Number(s % BigInt(n));
  };
}

function mutate(input, corpus, below, maxLen) {
  let v = Array.from(input);
  const steps = 1 + below(6);
  for (let i = 0; i < steps; i++) {
    switch (below(8)) {
      case 0:
        if (v.length) v[below(v.length)] ^= 1 << below(8);
        break;
      case 1:
        if (v.length) v[below(v.length)] = below(256);
        break;
      case 2: {
        const x = INTERESTING[below(INTERESTING.length)];
        const w = 1 << below(3);
        if (v.length >= w) {
          const at = below(v.length - w + 1);
          for (let k = 0; k < w; k++) v[at + k] = Number((BigInt(x) >> BigInt(8 * k)) & 0xffn);
        }
        break;
      }
      case 3: {
        const at = below(v.length + 1);
        const ins = Array.from({ length: 1 + below(16) }, () => below(256));
        v.splice(at, 0, ...ins);
        break;
      }
      case 4:
        if (v.length) v.splice(below(v.length), 1 + below(16));
        break;
      case 5:
        if (v.length) {
          const at = below(v.length);
          const part = v.slice(at, at + 1 + below(32));
          v.splice(below(v.length + 1), 0, ...part);
        }
        break;
      case 6:
        if (corpus.length) {
          const o = corpus[below(corpus.length)];
          v = v.slice(0, below(v.length + 1)).concat(Array.from(o.subarray(below(o.length + 1))));
        }
        break;
      default:
        for (let k = 1 + below(32); k > 0; k--) v.push(below(256));
    }
  }
  return Buffer.from(v.slice(0, maxLen));
}

function readInputs(dirs) {
  const out = [];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir).sort()) {
      if (f.startsWith('.')) continue;
      out.push({ file: path.join(dir, f), data: fs.readFileSync(path.join(dir, f)) });
    }
  }
  return out;
}

/**
 * Runs `target`. Resolves { replayed, mutations, ms } or rejects with the
 * failure (err.input, err.saved = where the input was written).
 * @param {{name: string, maxLen?: number, run: (b: Buffer) => unknown}} target
 * @param {{dirs: string[], timeMs: number, runs?: number, seed?: number, crashDir: string}} opts
 */
async function fuzz(target, opts) {
  const maxLen = target.maxLen ?? 4096;
  const inputs = readInputs(opts.dirs);
  const corpus = inputs.map((i) => i.data);
  const seed = opts.seed ?? Date.now() % 1e9;
  const below = makeRng(seed);
  const fail = (err, input) => {
    fs.mkdirSync(opts.crashDir, { recursive: true });
    const name = `crash-${crypto.createHash('sha1').update(input).digest('hex').slice(0, 16)}`;
    const saved = path.join(opts.crashDir, name);
    fs.writeFileSync(saved, input);
    const e = err instanceof Error ? err : new Error(String(err));
    e.message = `${target.name}: ${e.message}\n  input saved to ${saved} (seed ${seed})`;
    e.saved = saved;
    return e;
  };
  // A throw from a callback the target cannot catch (a timer, an emitter) is a failure too.
  let stray = null;
  const onStray = (err) => {
    stray = stray ?? err;
  };
  process.on('uncaughtException', onStray);
  process.on('unhandledRejection', onStray);
  const started = Date.now();
  let mutations = 0;
  try {
    const one = async (input) => {
      let timer;
      const hang = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new InvariantError(`the input did not finish within ${HANG_MS / 1000} s (a hang)`)), HANG_MS);
      });
      try {
        await Promise.race([target.run(input), hang]);
      } catch (err) {
        throw fail(err, input);
      } finally {
        clearTimeout(timer);
      }
      if (stray) throw fail(stray, input);
    };
    for (const input of corpus) await one(input);
    const runs = opts.runs ?? Infinity;
    while (mutations < runs && Date.now() - started < opts.timeMs) {
      const base = corpus.length ? corpus[below(corpus.length)] : Buffer.alloc(0);
      await one(mutate(base, corpus, below, maxLen));
      mutations++;
    }
  } finally {
    process.off('uncaughtException', onStray);
    process.off('unhandledRejection', onStray);
  }
  return { replayed: corpus.length, mutations, ms: Date.now() - started, seed };
}

/** A broken invariant (the runner saves the input). */
class InvariantError extends Error {}

/**
 * Checks an error a parser threw or rejected with: a plain Error carrying one
 * of `codes` (a Set of Node-style codes or a predicate), never a TypeError,
 * RangeError or an error without a code.
 */
function expectCoded(err, codes, what) {
  const ok = typeof codes === 'function' ? codes : (c) => codes.has(c);
  if (!(err instanceof Error) || err.constructor !== Error || typeof err.code !== 'string' || !ok(err.code)) {
    const desc = err instanceof Error ? `${err.constructor.name} ${err.code ?? ''} ${err.stack}` : String(err);
    throw new InvariantError(`${what}: unexpected error ${desc}`);
  }
}

function check(cond, msg) {
  if (!cond) throw new InvariantError(msg);
}

module.exports = { fuzz, mutate, makeRng, expectCoded, check, InvariantError };
