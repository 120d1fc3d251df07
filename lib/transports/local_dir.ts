/**
 * Where local rendezvous sockets live: `options.dir`, else $XENRING_DIR, else
 * $XDG_RUNTIME_DIR/xenring, else <tmpdir>/xenring-<uid>. Created 0700 so that
 * only this user can connect.
 * @internal
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { invalidArgType, invalidArgValue, outOfRange } from '../errors';

export function rendezvousDir(dir: unknown): string {
  if (dir !== undefined && typeof dir !== 'string') throw invalidArgType('options.dir', 'of type string', dir);
  const chosen =
    (dir as string | undefined) ||
    process.env.XENRING_DIR ||
    (process.env.XDG_RUNTIME_DIR ? path.join(process.env.XDG_RUNTIME_DIR, 'xenring') : '') ||
    path.join(os.tmpdir(), `xenring-${process.getuid ? process.getuid() : 0}`);
  fs.mkdirSync(chosen, { recursive: true, mode: 0o700 });
  return path.resolve(chosen);
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A port is an integer 0..65535 or a service name; returns its canonical form. */
export function normalizePort(port: unknown, name = 'options.port'): number | string {
  if (typeof port === 'string' && /^[0-9]+$/.test(port)) port = Number(port);
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw outOfRange(name, '>= 0 and <= 65535', port);
    return port;
  }
  if (typeof port === 'string') {
    if (!NAME_RE.test(port)) throw invalidArgValue(name, port, 'must be a port number or a service name of letters, digits, ".", "_" or "-"');
    return port;
  }
  throw invalidArgType(name, 'of type number or string', port);
}

export function socketPath(dir: string, port: number | string): string {
  return path.join(dir, `${port}.sock`);
}
