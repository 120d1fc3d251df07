/**
 * Errors shaped like Node's own: `code`, and for system errors `errno` and
 * `syscall`, so that code written for node:net recognises them.
 * @internal
 */
import * as os from 'node:os';
import { inspect } from 'node:util';

/** A system error like libuv's: message "<syscall> <CODE>[ <detail>]". */
export function systemError(code: string, syscall: string, detail?: string): NodeJS.ErrnoException {
  const errno = (os.constants.errno as Record<string, number>)[code];
  const err: NodeJS.ErrnoException = new Error(`${syscall} ${code}${detail ? ' ' + detail : ''}`);
  err.code = code;
  if (errno !== undefined) err.errno = -errno;
  err.syscall = syscall;
  return err;
}

/** An Error (or TypeError, ...) with a Node-style `code` (e.g. ERR_SERVER_NOT_RUNNING). */
export function codedError(code: string, message: string, Kind: ErrorConstructor = Error): Error & { code: string } {
  const err = new Kind(message) as Error & { code: string };
  err.code = code;
  return err;
}

/** TypeError with code ERR_INVALID_ARG_TYPE, worded like Node's validators. */
export function invalidArgType(name: string, expected: string, actual: unknown): TypeError & { code: string } {
  const err = new TypeError(`The "${name}" ${kind(name)} must be ${expected}. Received ${describe(actual)}`) as TypeError & {
    code: string;
  };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

/** RangeError with code ERR_OUT_OF_RANGE. */
export function outOfRange(name: string, range: string, actual: unknown): RangeError & { code: string } {
  const err = new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${typeof actual === 'number' ? String(actual) : describe(actual)}`) as RangeError & {
    code: string;
  };
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

/** RangeError with code ERR_SOCKET_BAD_PORT, worded like net's. */
export function socketBadPort(name: string, port: unknown, allowZero = true): RangeError & { code: string } {
  const op = allowZero ? '>=' : '>';
  const err = new RangeError(`${name} should be ${op} 0 and < 65536. Received ${describe(port)}.`) as RangeError & { code: string };
  err.code = 'ERR_SOCKET_BAD_PORT';
  return err;
}

/** TypeError with code ERR_INVALID_ARG_VALUE. */
export function invalidArgValue(name: string, actual: unknown, reason = 'is invalid'): TypeError & { code: string } {
  let shown = inspect(actual);
  if (shown.length > 128) shown = `${shown.slice(0, 128)}...`;
  const err = new TypeError(`The ${kind(name)} '${name}' ${reason}. Received ${shown}`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

/** Node says "property" for a dotted name (options.port), else "argument". */
const kind = (name: string): string => (name.includes('.') ? 'property' : 'argument');

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'function') return `function ${v.name || '<anonymous>'}`;
  if (typeof v === 'object') return v.constructor?.name ? `an instance of ${v.constructor.name}` : 'an object';
  const s = typeof v === 'string' ? `'${v.length > 28 ? v.slice(0, 25) + '...' : v}'` : String(v);
  return `type ${typeof v} (${s})`;
}
