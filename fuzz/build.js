'use strict';
/**
 * Builds the native fuzz targets (fuzz/native/*.cc against native/*.cc, with
 * the fake N-API in fuzz/native/shim) under AddressSanitizer + UBSan:
 *   - 'smoke': g++ (or any C++17 compiler) with the standalone driver, for `npm test`;
 *   - 'libfuzzer': clang++ -fsanitize=fuzzer, for `npm run fuzz`.
 * Objects are cached under build/fuzz/<mode>/ by a hash of their sources,
 * every header and the flags, so only the first build pays.
 */
const { execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const rel = (...p) => path.join(ROOT, ...p);

/** Each target: its harness file; all link the ring code below. */
const NATIVE_TARGETS = ['ring_ops', 'ring_setup', 'fast_copy'];
const RING_SOURCES = ['native/ring_endpoint.cc', 'native/notifier.cc', 'native/errors.cc', 'native/fast_copy.cc',
  'fuzz/native/shim/shim.cc'];

const SANITIZE = '-fsanitize=address,undefined,float-cast-overflow';
const COMMON = ['-std=c++17', '-g', '-fno-omit-frame-pointer', '-fno-sanitize-recover=all', '-DNAPI_CPP_EXCEPTIONS',
  '-Wall', '-Wno-unused-parameter', `-I${rel('fuzz/native/shim')}`];

const MODES = {
  // -O0: the harness compiles in seconds instead of tens of seconds; the smoke runs few inputs.
  smoke: { cxx: process.env.CXX || 'g++', cflags: [...COMMON, '-O0', SANITIZE], ldflags: [SANITIZE], driver: true },
  libfuzzer: {
    cxx: null, // found by findClang()
    cflags: [...COMMON, '-O1', `${SANITIZE},fuzzer-no-link`],
    ldflags: [`${SANITIZE},fuzzer`],
    driver: false,
  },
};

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${cmd} ${args.join(' ')}\n${stderr || stdout || err.message}`;
        reject(err);
      } else resolve(stdout);
    });
  });
}

/** clang++ that can link -fsanitize=fuzzer, or null. */
async function findClang() {
  for (const cxx of [process.env.FUZZ_CXX, 'clang++', 'clang++-16', 'clang++-15', 'clang++-14'].filter(Boolean)) {
    try {
      const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'xenring-clang-'));
      const src = path.join(dir, 't.cc');
      fs.writeFileSync(src, 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n');
      await run(cxx, ['-fsanitize=fuzzer,address', src, '-o', path.join(dir, 't')]);
      fs.rmSync(dir, { recursive: true, force: true });
      return cxx;
    } catch {
      /* not this one */
    }
  }
  return null;
}

function headersHash() {
  const h = crypto.createHash('sha256');
  for (const dir of ['native', 'fuzz/native', 'fuzz/native/shim']) {
    for (const f of fs.readdirSync(rel(dir)).sort()) if (f.endsWith('.h')) h.update(f).update(fs.readFileSync(rel(dir, f)));
  }
  return h.digest('hex');
}

/** Runs `jobs` (functions returning promises) two at a time (the machine has few cores). */
async function parallel(jobs, width = 2) {
  const queue = [...jobs];
  const workers = Array.from({ length: width }, async () => {
    while (queue.length) await queue.shift()();
  });
  await Promise.all(workers);
}

/**
 * Builds the targets for `mode` and returns { name: binaryPath }.
 * @param {'smoke'|'libfuzzer'} mode
 */
async function buildNative(mode, targets = NATIVE_TARGETS, log = () => {}) {
  const m = { ...MODES[mode] };
  if (!m.cxx) {
    m.cxx = await findClang();
    if (!m.cxx) {
      const err = new Error('no clang++ with libFuzzer found: run `apt-get install -y clang` (Debian 12: clang-14 ships libFuzzer in libclang-rt-14-dev), or set FUZZ_CXX');
      err.code = 'ENOCLANG';
      throw err;
    }
  }
  const out = rel('build', 'fuzz', mode);
  fs.mkdirSync(path.join(out, 'obj'), { recursive: true });
  const hdr = headersHash();
  const objectOf = (src) => {
    const h = crypto.createHash('sha256').update(m.cxx).update(m.cflags.join(' ')).update(hdr)
      .update(fs.readFileSync(rel(src))).digest('hex').slice(0, 16);
    return path.join(out, 'obj', `${path.basename(src, '.cc')}-${h}.o`);
  };
  const sources = [...RING_SOURCES, ...targets.map((t) => `fuzz/native/${t}.cc`)];
  if (m.driver) sources.push('fuzz/native/standalone_driver.cc');
  const objects = new Map(sources.map((s) => [s, objectOf(s)]));
  const missing = sources.filter((s) => !fs.existsSync(objects.get(s)));
  await parallel(missing.map((s) => async () => {
    log(`compile ${s}`);
    const tmp = `${objects.get(s)}.${process.pid}.tmp`;
    await run(m.cxx, [...m.cflags, '-c', rel(s), '-o', tmp]);
    fs.renameSync(tmp, objects.get(s));
  }));
  const bins = {};
  for (const t of targets) {
    const objs = [...RING_SOURCES, `fuzz/native/${t}.cc`].map((s) => objects.get(s));
    if (m.driver) objs.push(objects.get('fuzz/native/standalone_driver.cc'));
    const bin = path.join(out, t);
    const stamp = `${bin}.stamp`;
    const key = objs.join('\n');
    if (!fs.existsSync(bin) || !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== key) {
      log(`link ${t}`);
      await run(m.cxx, [...objs, ...m.ldflags, '-o', bin]);
      fs.writeFileSync(stamp, key);
    }
    bins[t] = bin;
  }
  return bins;
}

module.exports = { buildNative, findClang, NATIVE_TARGETS, ROOT };
