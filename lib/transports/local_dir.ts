/**
 * Where local rendezvous sockets live: `options.dir`, else $XENRING_DIR, else
 * $XDG_RUNTIME_DIR/xenring, else <tmpdir>/xenring-<uid>.
 *
 * The directory decides who can reach a server and who could impersonate one
 * (anyone who can create entries in it), so it is trusted only when it is a
 * real directory (never a symlink), owned by us (or, for a client told to
 * trust another uid, by that uid or root) and not group- or world-writable.
 * One we create is owner-only (0700).
 * @internal
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { invalidArgType, systemError } from '../errors';
import { validatePort } from '../validators';
import { ownUid } from './local_trust';

/** Throws ERR_INVALID_ARG_TYPE for a `dir` option that is not a string. */
export function checkDirOption(dir: unknown): void {
  if (dir !== undefined && typeof dir !== 'string') throw invalidArgType('options.dir', 'of type string', dir);
}

let pathKey: string | null = null;
let pathValue = '';
/**
 * The rendezvous directory's path for a `dir` option (no file-system access).
 * Recomputed only when what it depends on changed (the option, the variables,
 * the uid, the working directory): path.resolve() and path.join() cost a
 * client ~15 µs per connect while its code is not yet optimized, and V8
 * ~25 ms of compiling to optimize them once they are hot.
 */
export function rendezvousPath(dir: unknown): string {
  checkDirOption(dir);
  const { XENRING_DIR, XDG_RUNTIME_DIR } = process.env;
  const uid = ownUid();
  // Unset and '' choose alike; none of these but `dir` can hold a NUL, so it goes last.
  const key = `${XENRING_DIR ?? ''}\0${XDG_RUNTIME_DIR ?? ''}\0${tmpdir()}\0${uid}\0${process.cwd()}\0${(dir as string | undefined) ?? ''}`;
  if (key !== pathKey) {
    pathValue = path.resolve(
      (dir as string | undefined) || XENRING_DIR || (XDG_RUNTIME_DIR ? path.join(XDG_RUNTIME_DIR, 'xenring') : '') || path.join(tmpdir(), `xenring-${uid}`),
    );
    pathKey = key;
  }
  return pathValue;
}

let tmpdirKey: string | null = null;
let tmpdirValue = '';
/**
 * os.tmpdir(), recomputed only when the variables it reads change: each call
 * costs up to 15 syscalls (Node checks credentials before each getenv), paid on
 * every connect otherwise.
 */
function tmpdir(): string {
  const { TMPDIR, TMP, TEMP } = process.env;
  const key = `${TMPDIR}\0${TMP}\0${TEMP}`;
  if (key !== tmpdirKey) {
    tmpdirValue = os.tmpdir();
    tmpdirKey = key;
  }
  return tmpdirValue;
}

/** The rendezvous directory's path, created owner-only (0700) when missing; not checked. */
export function ensureRendezvousDir(dir: unknown): string {
  const chosen = rendezvousPath(dir);
  const exists = (e: unknown) => (e as NodeJS.ErrnoException).code === 'EEXIST';
  try {
    fs.mkdirSync(path.dirname(chosen), { recursive: true, mode: 0o700 });
  } catch (e) {
    if (!exists(e)) throw e; // a file there: the mkdir below says ENOTDIR
  }
  try {
    fs.mkdirSync(chosen, { mode: 0o700 });
  } catch (e) {
    if (!exists(e)) throw e;
  }
  return chosen;
}

/**
 * The rendezvous directory, created if needed (0700) and checked.
 * `owners` are the uids besides ours that may own it (a client that trusts
 * a server of another user). Throws EACCES for a directory we must not trust.
 */
export function rendezvousDir(dir: unknown, syscall: string, owners: readonly number[] = []): string {
  // Fast path, once per connect: one lstat, which sees what open(O_NOFOLLOW)
  // + fstat below would (a symlink at the path itself, the owner, the mode),
  // without the mkdirs and their EEXIST errors (a third of a connect's CPU).
  const chosen = rendezvousPath(dir);
  const st = fs.lstatSync(chosen, { throwIfNoEntry: false });
  if (st?.isSymbolicLink()) throw untrusted(syscall, chosen, 'is a symlink');
  if (st?.isDirectory()) return checkOwner(st, chosen, owners, syscall);
  ensureRendezvousDir(dir);
  // O_NOFOLLOW: a symlink (to anywhere) planted at this path is refused, not followed.
  let fd: number;
  try {
    fd = fs.openSync(chosen, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || (code === 'ENOTDIR' && fs.lstatSync(chosen).isSymbolicLink())) {
      throw untrusted(syscall, chosen, 'is a symlink');
    }
    throw e;
  }
  try {
    return checkOwner(fs.fstatSync(fd), chosen, owners, syscall);
  } finally {
    fs.closeSync(fd);
  }
}

/** `chosen` if its owner and mode make it trusted; else throws EACCES. */
function checkOwner(st: fs.Stats, chosen: string, owners: readonly number[], syscall: string): string {
  if (st.uid !== ownUid() && !(owners.length > 0 && (st.uid === 0 || owners.includes(st.uid)))) {
    throw untrusted(syscall, chosen, `is owned by uid ${st.uid}`);
  }
  if ((st.mode & 0o022) !== 0) throw untrusted(syscall, chosen, `is writable by other users (mode ${(st.mode & 0o777).toString(8)})`);
  return chosen;
}

function untrusted(syscall: string, dir: string, why: string): NodeJS.ErrnoException {
  const err = systemError('EACCES', syscall, `rendezvous directory ${dir} ${why}`);
  err.path = dir;
  return err;
}

/** A port is an integer 0..65535 or a service name; returns its canonical form. */
export const normalizePort = (port: unknown): number | string => validatePort(port);

let socketDir: string | null = null;
let socketPort: number | string | null = null;
let socketValue = '';
/** `<dir>/<port>.sock`; the last one is remembered (a client connects to the same port again and again). */
export function socketPath(dir: string, port: number | string): string {
  if (dir !== socketDir || port !== socketPort) {
    socketValue = path.join(dir, `${port}.sock`);
    socketDir = dir;
    socketPort = port;
  }
  return socketValue;
}
