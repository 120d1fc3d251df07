/**
 * The two pieces every Xen handshake wait is made of, so that each wait is
 * straight-line async code cancelled by one AbortSignal (the idiom of
 * Transport.connect/listen): a deadline folded into the caller's signal, and
 * a wake-up that an event source (a xenstore watch, an event channel) sets.
 * @internal
 */
import type { CancelSignal } from '../cancel';

/** A signal aborted by `parent` (an AbortSignal or a connect's CancelSignal) or, after `ms` (0 = never), with `onTimeout()`. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Ends the wait early with `reason` (e.g. the event source died). */
  abort(reason: Error): void;
  /** Stops the timer and forgets the parent (call once the wait is over). */
  dispose(): void;
}

export function deadline(parent: CancelSignal | undefined, ms: number, onTimeout: () => Error): Deadline {
  const ac = new AbortController();
  const onParent = () => ac.abort(parent!.reason);
  if (parent?.aborted) onParent();
  else parent?.addEventListener('abort', onParent, { once: true });
  // Not unref'd: a handshake in progress keeps the process alive, as a
  // pending connect does; unless the socket was unref()'d (then as net's
  // connecting handle), which the parent's ref state says.
  const timer = ms > 0 ? setTimeout(() => ac.abort(onTimeout()), ms) : null;
  const applyRef = () => {
    if (parent?.refed === false) timer?.unref();
    else timer?.ref();
  };
  if (timer) {
    applyRef();
    parent?.onRefChange?.(applyRef);
  }
  return {
    signal: ac.signal,
    abort: (reason) => ac.abort(reason),
    dispose: () => {
      if (timer) clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
      parent?.offRefChange?.(applyRef);
    },
  };
}

/**
 * Remembers that something happened until the waiter looks: set() before
 * wait() is not lost, and several set()s in between count once (the waiter
 * re-reads the whole state each time).
 */
export class Wakeup {
  private signalled = false;
  /** An object holding the callback, not the callback: a closure assigned where it was made outlives young GCs (docs/benchmark.md, "Young garbage"). */
  private waiter: { wake(): void } | null = null;

  set(): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w.wake();
    else this.signalled = true;
  }

  /** Resolves at the next set() (at once if one came since the last wait), rejects with the reason when `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.signalled) {
      this.signalled = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiter = null;
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        wake: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
    });
  }
}
