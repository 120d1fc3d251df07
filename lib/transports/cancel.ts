/*
 * A connect attempt's cancellation: what transports use of an AbortSignal
 * (aborted, reason, abort listeners, throwIfAborted), without
 * AbortController's EventTarget. One is made per connect; the client's CPU
 * per new local connection went down ~7 % without the AbortController
 * (bench/connect.js, 30 paired rounds: docs/benchmark.md).
 */

/** The part of AbortSignal a transport's connect uses (a real AbortSignal is one). */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
  throwIfAborted(): void;
  /** False while the socket is unref()'d: the connect's own handles must not hold the process (absent: true). */
  readonly refed?: boolean;
  /** `listener` runs whenever `refed` changes, until offRefChange(). */
  onRefChange?(listener: () => void): void;
  offRefChange?(listener: () => void): void;
}

/** @internal A CancelSignal and its abort(), as AbortController is an AbortSignal's. */
export class Cancel implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  refed = true;
  private listeners: Array<() => void> | null = null;
  private refListeners: Array<() => void> | null = null;

  /** unref()/ref() of the socket while it connects, as net's handle: passed on to the transport's handles. */
  setRefed(refed: boolean): void {
    if (this.refed === refed) return;
    this.refed = refed;
    for (const listener of this.refListeners ?? []) listener();
  }

  onRefChange(listener: () => void): void {
    (this.refListeners ??= []).push(listener);
  }

  offRefChange(listener: () => void): void {
    const i = this.refListeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.refListeners!.splice(i, 1);
  }

  /** The side transports see (this object), as AbortController's signal. */
  get signal(): CancelSignal {
    return this;
  }

  /** Listeners run once, at abort(): `once` or not, as an aborted AbortSignal never fires again. */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return; // as AbortSignal: an aborted signal fires no more
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** Aborts with `reason`; every listener runs, one that throws as an EventTarget's does (uncaught, later). */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners === null) return;
    for (const listener of listeners) {
      try {
        listener();
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}
