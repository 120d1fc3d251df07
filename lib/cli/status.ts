/**
 * `xenring status`: what this machine offers. Each transport, usable or not
 * and why (devices, modules, permissions, xenstore); the local rendezvous
 * directory and whether it is safe; the ports listening that we can see.
 * Read-only except that, like a listen would, it creates the rendezvous
 * directory (0700) if missing.
 * @internal
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { native } from '../native';
import { ensureRendezvousDir } from '../transports/local_dir';
import { resolveTransport } from '../transports/registry';
import { xenModule } from '../transports/xen_module';
import { describeError, EXIT_FAILURE, EXIT_OK, parseArgs } from './options';

export const STATUS_HELP = `Usage: xenring status [--json] [--dir DIR] [--clean]

Prints which transports are usable here and why not (Xen devices, kernel
modules, permissions, xenstore), the local rendezvous directory and whether
it is safe (a directory of ours, mode 0700), and the listening ports it can
see (local sockets that accept; xenring ports this domain publishes in
xenstore).

Options:
  --json        one JSON object on stdout instead of text
  --dir DIR     the local rendezvous directory to inspect
  --clean       remove the stale socket files found there (yours, nothing
                accepting on them: left by servers that were killed)
  -h, --help    this help

Exit status: 0 if at least one transport is usable, 1 if none, 2 bad usage.`;

interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

interface Status {
  transports: { name: string; usable: boolean; reasons: string[]; checks: Check[] }[];
  default: string;
  rendezvous: { dir: string; safe: boolean; problems: string[]; ports: { port: string; listening: boolean; stale: boolean; detail: string }[]; removed?: string[] };
  xenstore: { reachable: boolean; detail: string; domid?: number; ports?: string[] };
}

const XEN_DEVICES = ['gntalloc', 'gntdev', 'evtchn', 'xenbus'];
const XEN_MODULES: Record<string, string> = { gntalloc: 'xen_gntalloc', gntdev: 'xen_gntdev', evtchn: 'xen_evtchn' };

function localChecks(): Check[] {
  const checks: Check[] = [];
  const tryFd = (what: string, make: () => number) => {
    try {
      native.closeFd(make());
      checks.push({ what, ok: true, detail: 'ok' });
    } catch (e) {
      checks.push({ what, ok: false, detail: describeError(e) });
    }
  };
  tryFd('memfd (shared pages)', () => native.memfdCreate('xenring-status', 4096));
  // The local transport wakes its peer through a pipe per direction (not an eventfd: see local_handshake.ts).
  tryFd('pipe (wake-ups)', () => {
    const [wait, peer] = native.wakePair();
    native.closeFd(peer);
    return wait;
  });
  return checks;
}

function xenChecks(): Check[] {
  const checks: Check[] = [];
  let hv = '';
  try {
    hv = fs.readFileSync('/sys/hypervisor/type', 'utf8').trim();
  } catch {
    /* no hypervisor information */
  }
  checks.push({ what: 'hypervisor', ok: hv === 'xen', detail: hv ? `/sys/hypervisor/type says '${hv}'` : 'not running on Xen (/sys/hypervisor/type absent)' });
  for (const dev of XEN_DEVICES) {
    const p = `/dev/xen/${dev}`;
    let detail: string;
    let ok = false;
    try {
      fs.accessSync(p, fs.constants.R_OK | fs.constants.W_OK);
      ok = true;
      detail = `${p}: read-write`;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const mod = XEN_MODULES[dev];
      const loaded = mod && fs.existsSync(`/sys/module/${mod}`);
      if (code === 'ENOENT') detail = `${p} missing${mod ? ` (module ${mod} ${loaded ? 'loaded' : 'not loaded'})` : ''}`;
      else if (code === 'EACCES' || code === 'EPERM') detail = `${p}: no read-write permission for uid ${process.getuid?.()} (root, or a udev rule giving your group access)`;
      else detail = `${p}: ${describeError(e)}`;
    }
    checks.push({ what: dev, ok, detail });
  }
  return checks;
}

/** Does a local rendezvous socket accept? A stream connect to a seqpacket listener fails with EPROTOTYPE without disturbing it. */
function probeSocket(p: string): Promise<{ listening: boolean; stale: boolean; detail: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ path: p });
    const done = (listening: boolean, detail: string, stale = false) => {
      s.destroy();
      resolve({ listening, stale, detail });
    };
    s.setTimeout(1000, () => done(false, 'no answer within 1 s'));
    s.once('connect', () => done(true, 'accepts (stream socket: not a xenring rendezvous?)'));
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPROTOTYPE') done(true, 'listening');
      else if (e.code === 'ECONNREFUSED') done(false, 'stale: nothing accepts (replaced by the next listen)', true);
      else if (e.code === 'EACCES') done(false, 'not ours to connect to (EACCES)');
      else done(false, describeError(e));
    });
  });
}

function inspectDir(dir: string): { safe: boolean; problems: string[] } {
  const problems: string[] = [];
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) problems.push('is a symbolic link');
  else if (!st.isDirectory()) problems.push('is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) problems.push(`owned by uid ${st.uid}, not by you (uid ${uid}): its owner can replace your sockets`);
  if (st.mode & 0o022) problems.push(`mode ${(st.mode & 0o777).toString(8)}: others can create or replace sockets in it`);
  else if (st.mode & 0o077) problems.push(`mode ${(st.mode & 0o777).toString(8)}: others can reach its sockets (the server still checks the peer's uid)`);
  return { safe: problems.length === 0, problems };
}

async function xenstoreStatus(usable: boolean): Promise<Status['xenstore']> {
  if (!usable) return { reachable: false, detail: '/dev/xen/xenbus not usable' };
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref());
  try {
    const xen = xenModule(); // only where the devices are usable
    const xs = xen.xenStore();
    const domid = await Promise.race([xs.ownDomid(), timeout]);
    const base = xen.listenPath(domid, '').replace(/\/$/, '');
    let ports: string[] = [];
    try {
      ports = await Promise.race([xs.directory(base), timeout]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    xs.close();
    return { reachable: true, detail: `domain ${domid}`, domid, ports };
  } catch (e) {
    return { reachable: false, detail: describeError(e) };
  }
}

export async function collectStatus(dirOption?: string, clean = false): Promise<Status> {
  const local = localChecks();
  const xen = xenChecks();
  const transports = [
    { name: 'local', checks: local },
    { name: 'xen', checks: xen },
  ].map((t) => ({ ...t, usable: t.checks.every((c) => c.ok), reasons: t.checks.filter((c) => !c.ok).map((c) => c.detail) }));
  const dir = ensureRendezvousDir(dirOption);
  const { safe, problems } = inspectDir(dir);
  const ports: Status['rendezvous']['ports'] = [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    if (!name.endsWith('.sock')) continue;
    const file = path.join(dir, name);
    const before = inodeOf(file);
    if (before !== null && !before.socket) {
      ports.push({ port: name.slice(0, -5), listening: false, stale: false, detail: 'not a socket (left alone)' });
      continue;
    }
    const probe = await probeSocket(file);
    // Only a file of ours that is still the one probed: a server that
    // replaced it meanwhile has a new one (its listen unlinked ours first).
    if (clean && probe.stale && before !== null && before.uid === process.getuid?.() && inodeOf(file)?.ino === before.ino) {
      try {
        fs.unlinkSync(file);
        removed.push(name.slice(0, -5));
        continue;
      } catch {
        /* gone already, or not ours to remove: listed as it is */
      }
    }
    ports.push({ port: name.slice(0, -5), ...probe });
  }
  const xenbusOk = xen.find((c) => c.what === 'xenbus')!.ok;
  return {
    transports,
    default: resolveTransport(undefined).name,
    rendezvous: { dir, safe, problems, ports, ...(clean ? { removed } : {}) },
    xenstore: await xenstoreStatus(xenbusOk),
  };
}

function render(s: Status): string {
  const out: string[] = ['transports:'];
  for (const t of s.transports) {
    out.push(`  ${t.name.padEnd(6)} ${t.usable ? 'usable' : 'NOT usable'}${t.name === s.default ? ' (default)' : ''}`);
    for (const c of t.checks) out.push(`         ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  }
  out.push(`local rendezvous directory: ${s.rendezvous.dir}`);
  out.push(s.rendezvous.safe ? '  safe: yours, mode 0700 (only you can connect; servers also check the peer uid)' : `  UNSAFE: ${s.rendezvous.problems.join('; ')}`);
  const live = s.rendezvous.ports.filter((p) => p.listening);
  out.push(`  listening ports: ${live.length ? live.map((p) => p.port).join(', ') : '(none)'}`);
  if (s.rendezvous.removed) out.push(`  removed ${s.rendezvous.removed.length} stale socket file(s)${s.rendezvous.removed.length ? `: ${s.rendezvous.removed.join(', ')}` : ''}`);
  // Stale files in one line (a shared directory collects hundreds); anything else wrong, a line each.
  const stale = s.rendezvous.ports.filter((q) => q.stale);
  if (stale.length > 0) {
    const shown = stale.slice(0, STALE_SHOWN).map((p) => p.port).join(', ') + (stale.length > STALE_SHOWN ? `, and ${stale.length - STALE_SHOWN} more` : '');
    out.push(`  stale (nothing accepts; the next listen on a port replaces its file; --clean removes them): ${shown}`);
  }
  for (const p of s.rendezvous.ports.filter((q) => !q.listening && !q.stale)) out.push(`  ${p.port}: ${p.detail}`);
  out.push(`xenstore: ${s.xenstore.reachable ? `reachable, ${s.xenstore.detail}` : `not reachable: ${s.xenstore.detail}`}`);
  if (s.xenstore.ports) out.push(`  xenring ports published: ${s.xenstore.ports.length ? s.xenstore.ports.join(', ') : '(none)'}`);
  return out.join('\n');
}

/** Stale ports named in the text output; the rest counted. */
const STALE_SHOWN = 8;

/** Owner, inode and kind of a file, or null. */
function inodeOf(file: string): { uid: number; ino: number; socket: boolean } | null {
  try {
    const st = fs.lstatSync(file);
    return { uid: st.uid, ino: st.ino, socket: st.isSocket() };
  } catch {
    return null;
  }
}

export function status(argv: string[], exit: (code: number) => void): void {
  const { options } = parseArgs(argv, { json: 'flag', dir: 'value', clean: 'flag' }, 0);
  if (options.help) {
    process.stdout.write(STATUS_HELP + '\n');
    return exit(EXIT_OK);
  }
  collectStatus(options.dir as string | undefined, Boolean(options.clean)).then(
    (s) => {
      process.stdout.write((options.json ? JSON.stringify(s, null, 2) : render(s)) + '\n');
      exit(s.transports.some((t) => t.usable) ? EXIT_OK : EXIT_FAILURE);
    },
    (e) => {
      process.stderr.write(`xenring status: ${describeError(e)}\n`);
      exit(EXIT_FAILURE);
    },
  );
}
