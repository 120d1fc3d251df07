/**
 * The `onread` option of net.Socket: received bytes go into a buffer the user
 * owns (one static buffer, or one returned by a function before each read)
 * and are announced through a callback instead of 'data' events. Nothing is
 * allocated per read, which is what lets a receiver run at ring speed.
 */
import { codedError, invalidArgType } from './errors';

/** `options.onread`, as in net.connect(). */
export interface OnReadOptions {
  /** The buffer to read into, or a function returning the next one (called once
   * before the first read and once after every callback, as net does). */
  buffer: Uint8Array | (() => Uint8Array);
  /** Called with the bytes read and the buffer holding them (`this` is the
   * socket). Returning false stops reading until socket.resume(). */
  callback: (this: unknown, bytesRead: number, buffer: Uint8Array) => boolean | void;
}

/** @internal The state of one socket's onread option. */
export class UserBuffer {
  private current: Uint8Array | null;
  /** Set when the buffer function broke its contract (the socket fails with it). */
  error: Error | null = null;

  private constructor(
    private readonly generate: (() => Uint8Array) | null,
    fixed: Uint8Array | null,
    private readonly callback: OnReadOptions['callback'],
  ) {
    this.current = fixed;
  }

  /** Validates `options.onread`; null when it is absent. */
  static from(onread: unknown): UserBuffer | null {
    if (onread === undefined || onread === null) return null;
    if (typeof onread !== 'object') throw invalidArgType('options.onread', 'of type object', onread);
    const { buffer, callback } = onread as Partial<OnReadOptions>;
    if (typeof callback !== 'function') throw invalidArgType('options.onread.callback', 'of type function', callback);
    if (typeof buffer === 'function') return new UserBuffer(buffer, null, callback);
    if (!(buffer instanceof Uint8Array)) {
      throw invalidArgType('options.onread.buffer', 'an instance of Buffer, Uint8Array or a function', buffer);
    }
    if (buffer.length === 0) throw invalidArgType('options.onread.buffer', 'a non-empty Uint8Array', buffer);
    return new UserBuffer(null, buffer, callback);
  }

  /** Asks the generator for the first buffer (net does so when the socket gets its handle). */
  start(): void {
    if (this.generate && this.current === null) this.current = this.next();
  }

  /** Where the next read goes. Throws once the buffer is gone: the reader fails the socket with it. */
  target(): Uint8Array {
    if (this.current === null) this.current = this.next();
    // Checked at every read: the user may transfer (detach) or shrink it at
    // any time, and an empty buffer would have the reader retry for ever.
    if (this.current.length === 0) throw codedError('ERR_INVALID_STATE', 'Invalid state: the onread buffer was detached or shrunk to nothing');
    return this.current;
  }

  /** Hands `n` bytes to the callback; false when it asked to stop reading. */
  deliver(socket: unknown, n: number): boolean {
    const buf = this.target();
    const more = this.callback.call(socket, n, buf) !== false;
    if (this.generate) {
      try {
        this.current = this.next();
      } catch (err) {
        this.current = null;
        this.error = err as Error;
        return false;
      }
    }
    return more;
  }

  private next(): Uint8Array {
    const b = this.generate!();
    if (!(b instanceof Uint8Array) || b.length === 0) {
      const err = new TypeError('Expected options.onread.buffer() to return a non-empty Buffer or Uint8Array');
      (err as TypeError & { code: string }).code = 'ERR_INVALID_RETURN_VALUE';
      throw err;
    }
    return b;
  }
}
