/**
 * Where local rendezvous sockets live: `options.dir`, else $XENRING_DIR, else
 * $XDG_RUNTIME_DIR/xenring, else <tmpdir>/xenring-<uid>. Created 0700 so that
 * only this user can connect.
 * @internal
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { invalidArgType } from '../errors';
import { validatePort } from '../validators';

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

/** A port is an integer 0..65535 or a service name; returns its canonical form. */
export const normalizePort = (port: unknown): number | string => validatePort(port);

export function socketPath(dir: string, port: number | string): string {
  return path.join(dir, `${port}.sock`);
}
