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
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > MAX_PORT) throw socketBadPort(name, port, allowZero);
    return port;
  }
  if (typeof port === 'string') {
    if (PORT_NAME.test(port)) return port;
    // Not a name, but what net reads as a number ('-1', '1.5', ' 80', ''):
    // net's answer, a port or ERR_SOCKET_BAD_PORT.
    const n = Number(port);
    if (port.trim() === '' || !Number.isNaN(n)) {
      if (port.trim() !== '' && Number.isInteger(n) && n >= (allowZero ? 0 : 1) && n <= MAX_PORT) return n;
      throw socketBadPort(name, port, allowZero);
    }
    throw invalidArgValue(name, port, 'must be a port number or a service name (a letter or digit, then letters, digits, "_" or "-"; up to 64 characters)');
  }
  throw invalidArgType(name, 'of type number or string', port);
}

/** A Xen domain id: an integer 0..MAX_DOMID. */
export function validateDomid(domid: unknown, name = 'options.domid'): number {
  if (typeof domid !== 'number') throw invalidArgType(name, 'of type number', domid);
  if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) throw outOfRange(name, `>= 0 and <= ${MAX_DOMID}`, domid);
  return domid;
}
