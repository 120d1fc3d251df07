/**
 * Who may be on the other end of a local connection: our own uid, plus the
 * uids the application named (`allowUid`). Checked on both sides with the
 * kernel's SO_PEERCRED, which a peer cannot forge.
 * @internal
 */
import { invalidArgType, systemError } from '../errors';
import { native } from '../native';

export const ownUid = (): number => (process.getuid ? process.getuid() : 0);

/** Validates an `allowUid` option: a uid or an array of uids. */
export function allowedUids(value: unknown, name = 'options.allowUid'): number[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  for (const uid of list) {
    if (typeof uid !== 'number' || !Number.isInteger(uid) || uid < 0 || uid > 0xfffffffe) {
      throw invalidArgType(name, 'a uid (integer) or an array of uids', value);
    }
  }
  return list as number[];
}

/** The peer of `conn` if its uid is ours or allowed; else throws EACCES. */
export function trustedPeer(conn: number, allowed: readonly number[], syscall: string): { pid: number; uid: number } {
  const cred = native.socketPeerCred(conn);
  if (cred.uid !== ownUid() && !allowed.includes(cred.uid)) {
    throw systemError('EACCES', syscall, `peer runs as uid ${cred.uid}, not allowed (see the allowUid option)`);
  }
  return cred;
}
