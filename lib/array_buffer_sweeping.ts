/**
 * Works around a race in Node's own bookkeeping of external Buffers (the
 * kind every pool view and receive slab is), which crashed worker threads
 * terminated while holding them, and can crash any process at exit.
 *
 * Node frees an external Buffer's tracking record from whichever thread V8
 * frees the Buffer's memory on. With concurrent array-buffer sweeping (V8's
 * default) that is a background thread, and when an environment is torn down
 * (worker.terminate(), process exit) Node's cleanup of the same record runs on
 * the environment's thread: it marks the record done, releases its lock, then
 * still unlinks and reads the record, which the background thread may free in
 * between (node_buffer.cc, CallbackInfo::CallAndResetCallback against
 * OnBackingStoreFree). Seen as a segmentation fault inside
 * CallbackInfo::Clean() during a worker's teardown, about once in 15 runs of
 * test/process/worker-construct.test.js.
 *
 * Without concurrent sweeping V8 frees that memory on the isolate's own thread
 * (checked in gdb: BackingStore deleters then run from ArrayBufferSweeper::DoSweep
 * on the main thread, not from a platform worker), so the two never overlap.
 * The cost is that sweep, done in the GC's pause instead of beside it.
 * `XENRING_CONCURRENT_AB_SWEEPING=1` leaves V8's default alone.
 * @internal
 */
import * as v8 from 'node:v8';

let applied = false;

/** Turns concurrent array-buffer sweeping off once per process (flags are process-wide, workers included). */
export function avoidExternalBufferRace(): void {
  if (applied || process.env.XENRING_CONCURRENT_AB_SWEEPING === '1') return;
  applied = true;
  v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping');
}
