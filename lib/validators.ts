/**
 * Argument checks shared by the API and every transport, so that a port or a
 * domid means the same thing whichever transport carries it.
 * @internal
 */
import { MAX_DOMID, MAX_PORT } from './constants';
import { invalidArgType, invalidArgValue, outOfRange, socketBadPort } from './errors';

/**
 * Port names: a letter or digit, then letters, digits, '_' or '-', up to 64
 * characters. Every transport accepts exactly these: they are valid file
 * names (local rendezvous sockets) and xenstore path elements (Xen), whose
 * alphabet has no '.'.
 */
const PORT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * A port is an integer 0..65535 (a string of digits counts as that number)
 * or a service name; returns its canonical form. Numbers out of range throw
 * net's ERR_SOCKET_BAD_PORT; `allowZero` false also refuses 0.
 */
export function validatePort(port: unknown, name = 'options.port', allowZero = true): number | string {
  if (typeof port === 'string' && /^[0-9]+$/.test(port)) port = Number(port);
  /** What an ERR_SOCKET_BAD_PORT shows as received. */
  let received = port;
  // Not a name, but what net reads as a number ('-1', '1.5', ' 80', ''):
  // checked as that number, and shown as given, as net does.
  if (typeof port === 'string' && !PORT_NAME.test(port) && (port.trim() === '' || !Number.isNaN(Number(port)))) {
    received = port;
    port = port.trim() === '' ? NaN : Number(port);
  }
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > MAX_PORT) throw socketBadPort(name, received, allowZero);
    return port;
  }
  if (typeof port === 'string') {
    if (!PORT_NAME.test(port)) {
      throw invalidArgValue(name, port, 'must be a port number or a service name (a letter or digit, then letters, digits, "_" or "-"; up to 64 characters)');
    }
    return port;
  }
  throw invalidArgType(name, 'of type number or string', port);
}

/** A Xen domain id: an integer 0..MAX_DOMID. */
export function validateDomid(domid: unknown, name = 'options.domid'): number {
  if (typeof domid !== 'number') throw invalidArgType(name, 'of type number', domid);
  if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) throw outOfRange(name, `>= 0 and <= ${MAX_DOMID}`, domid);
  return domid;
}

/**
 * A TCP port as net takes one: a number or a string of digits, 0..65535
 * (ERR_SOCKET_BAD_PORT otherwise, a non-numeric string included); another
 * type is ERR_INVALID_ARG_TYPE. `required` (a connect's): undefined is
 * ERR_MISSING_ARGS; otherwise (a listen's) undefined and null mean 0.
 */
export function validateTcpPort(port: unknown, name: string, required: boolean): number {
  if (port === undefined || port === null) {
    if (!required) return 0;
    if (port === undefined) return missingArgs(name);
  }
  if (typeof port === 'string') {
    if (!/^[0-9]+$/.test(port)) throw socketBadPort(name, port);
    port = Number(port);
  }
  if (typeof port !== 'number') throw invalidArgType(name, 'of type number or string', port);
  if (!Number.isInteger(port) || port < 0 || port > MAX_PORT) throw socketBadPort(name, port);
  return port;
}

function missingArgs(name: string): never {
  const err = new TypeError(`The "${name}" argument must be specified`) as TypeError & { code: string };
  err.code = 'ERR_MISSING_ARGS';
  throw err;
}

/** A timeout in ms, as net checks one: a finite number >= 0 (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE). */
export function validateMsecs(msecs: unknown, name: string): asserts msecs is number {
  if (typeof msecs !== 'number') throw invalidArgType(name, 'of type number', msecs);
  if (!Number.isFinite(msecs) || msecs < 0) throw outOfRange(name, 'a non-negative finite number', msecs);
}
