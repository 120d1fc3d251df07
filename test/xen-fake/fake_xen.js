'use strict';
// A fake Xen host for npm test: grant tables backed by memfds, event channels
// relayed between eventfds, and a FakeXenstored. `host.domain(domid)` returns
// the XenBindings one domain's process would have (lib/transports/xen/
// bindings.ts), so the real handshake, accept protocol and xenstore client run
// unchanged over real shared memory, real fds and the real xs_wire protocol.
// Every grant, mapping, port and fd is counted, so tests can assert that each
// path released everything.
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..', '..', 'dist');
const { native, UV_READABLE } = require(path.join(root, 'native.js'));
const { xen: realXen } = require(path.join(root, 'transports', 'xen', 'native_xen.js'));
const { FakeXenstored } = require('./fake_xenstored');

const PAGE = 4096;

function sysErr(code, syscall) {
  const err = new Error(`${syscall} ${code}`);
  err.code = code;
  err.syscall = syscall;
  return err;
}

const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
function signal(fd) {
  try {
    fs.writeSync(fd, ONE);
  } catch {
    /* closed meanwhile */
  }
}
function drain(fd) {
  try {
    fs.readSync(fd, Buffer.alloc(8));
  } catch {
    /* EAGAIN: nothing pending */
  }
}

class FakeXenHost {
  constructor({ grantLimit = 1024, quota, partMax } = {}) {
    this.xs = new FakeXenstored({ quota, partMax });
    this.grantLimit = grantLimit;
    this.grants = new Map(); // ref -> { share, page }
    this.nextRef = 8;
    this.shares = new Set();
    this.poolInodes = new Set(); // the memfds behind pool regions (see poolPagesMapped())
    this.mappings = new Set(); // live fake mappings (granter's and grantees')
    this.ports = new Map(); // `${domid}:${port}` -> port record
    this.evtchnFds = new Map(); // fd -> { domid, ports: Set }
    this.nextPort = new Map();
    this.faults = { gntMapEagain: 0, gntShareError: null, gntSharePoolError: null, bindInterdomainError: null };
    this.domains = new Map();
    this.xenbusEagain = 0; // writes to a xenbus fd that met EAGAIN
  }

  /** The bindings of a process in domain `domid`. */
  domain(domid, { storeOptions } = {}) {
    if (this.domains.has(domid)) return this.domains.get(domid);
    this.xs.addDomain(domid);
    const host = this;
    const xen = {
      pageSize: PAGE,
      devicesAccessible: () => ({ gntalloc: true, gntdev: true, evtchn: true, xenbus: true }),
      xenbusOpen: () => host.xs.connect(domid),
      fdWrite: (fd, data) => {
        const n = realXen.fdWrite(fd, data);
        if (n === 0) host.xenbusEagain++;
        return n;
      },
      fdRead: (fd, max) => realXen.fdRead(fd, max),
      fdWaitReadable: (fd, ms) => realXen.fdWaitReadable(fd, ms),
      gntShare: (grantee, count, writable, notifyOffset, notifyPort) => host.gntShare(domid, grantee, count, writable, notifyOffset, notifyPort),
      gntMap: (granter, refs, writable, notifyOffset, notifyPort) => host.gntMap(domid, granter, refs, writable, notifyOffset, notifyPort),
      gntSharePool: (grantee, count) => host.gntSharePool(domid, grantee, count),
      gntMapPool: (granter, refs) => host.gntMapPool(domid, granter, refs),
      peek: (m, off, len) => realXen.peek(m.real, off, len),
      poke: (m, off, data) => realXen.poke(m.real, off, data),
      evtchnOpen: () => host.evtchnOpen(domid),
      evtchnBindUnbound: (fd, remote) => host.bindUnbound(domid, fd, remote),
      evtchnBindInterdomain: (fd, remote, remotePort) => host.bindInterdomain(domid, fd, remote, remotePort),
      evtchnUnbind: (fd, port) => host.unbind(domid, fd, port),
      evtchnNotify: (fd, port) => host.notify(domid, port),
      evtchnUnmask: (fd, port) => host.portOf(domid, fd, port),
      evtchnPending: () => [],
      // The endpoint kicks an eventfd; the host relays it to the peer's channel fd.
      evtchnNotifier: (fd, port) => native.eventfdNotifier(host.portOf(domid, fd, port).kickFd, fd),
    };
    // The addon's endpoint over the fake mappings (each wraps a real one).
    function RingEndpoint(options) {
      const unwrap = (pl) => ({ ...pl, mapping: pl.mapping.real });
      return new native.RingEndpoint({ ...options, control: options.control.real, left: unwrap(options.left), right: unwrap(options.right) });
    }
    const b = {
      xen,
      RingEndpoint,
      FdWatcher: native.FdWatcher,
      closeFd: (fd) => host.closeFd(fd),
      storeOptions,
    };
    this.domains.set(domid, b);
    return b;
  }

  // ---- grants ---------------------------------------------------------------

  liveGrants(granter) {
    let n = 0;
    for (const s of this.shares) if (granter === undefined || s.granter === granter) n += s.refs.length;
    return n;
  }

  gntShare(granter, grantee, count, writable, notifyOffset, notifyPort) {
    // gntShareError hits a vchan's share (the one that asks for an unmap
    // notify); gntSharePoolError a pool region's.
    if (this.faults.gntShareError && notifyPort >= 0) {
      const code = this.faults.gntShareError;
      this.faults.gntShareError = null;
      throw sysErr(code, 'ioctl(GNTALLOC_ALLOC_GREF)');
    }
    if (this.liveGrants(granter) + count > this.grantLimit) throw sysErr('ENOSPC', 'ioctl(GNTALLOC_ALLOC_GREF)');
    const memfd = native.memfdCreate('fake-gnt', count * PAGE);
    const share = { granter, grantee, memfd, writable, refs: [], maps: 0, ownerMapped: true };
    for (let i = 0; i < count; i++) {
      const ref = this.nextRef++;
      share.refs.push(ref);
      this.grants.set(ref, { share, page: i });
    }
    this.shares.add(share);
    const mapping = this.wrap(new native.SharedMapping(memfd, count * PAGE, true, 0), share, true, granter, notifyOffset, notifyPort);
    return { mapping, refs: [...share.refs] };
  }

  gntMap(mapper, granter, refs, writable, notifyOffset, notifyPort) {
    if (this.faults.gntMapEagain > 0) {
      this.faults.gntMapEagain--;
      throw sysErr('EAGAIN', 'mmap');
    }
    const first = this.grants.get(refs[0]);
    if (!first) throw sysErr('EINVAL', 'ioctl(GNTDEV_MAP_GRANT_REF)');
    refs.forEach((r, i) => {
      const g = this.grants.get(r);
      if (!g || g.share !== first.share || g.page !== first.page + i) throw sysErr('EINVAL', 'mmap');
    });
    const share = first.share;
    if (share.granter !== granter || share.grantee !== mapper) throw sysErr('EINVAL', 'mmap');
    if (writable && !share.writable) throw sysErr('EPERM', 'mmap');
    const real = new native.SharedMapping(share.memfd, refs.length * PAGE, writable, first.page * PAGE);
    share.maps++;
    return this.wrap(real, share, false, mapper, notifyOffset, notifyPort, first.page * PAGE);
  }

  /**
   * Pool regions are real PoolMappings (the pool's native queues accept
   * nothing else) over the share's memfd; their close() is wrapped to count
   * them. Views the user keeps are not counted: the real driver frees the
   * pages at the last munmap, which a test sees in poolRegionsAlive().
   */
  gntSharePool(granter, grantee, count) {
    if (this.faults.gntSharePoolError) {
      const code = this.faults.gntSharePoolError;
      this.faults.gntSharePoolError = null;
      throw sysErr(code, 'ioctl(GNTALLOC_ALLOC_GREF)');
    }
    const { mapping: m, refs } = this.gntShare(granter, grantee, count, true, -1, -1);
    return { mapping: this.asPool(m, this.grants.get(refs[0])), refs };
  }

  gntMapPool(mapper, granter, refs) {
    return this.asPool(this.gntMap(mapper, granter, refs, true, -1, -1), this.grants.get(refs[0]));
  }

  /** The same pages as fake mapping `m`, as a PoolMapping whose close() is m's unmap(). */
  asPool(m, { share, page }) {
    const real = new native.PoolMapping(share.memfd, m.length, true, page * PAGE);
    this.poolInodes.add(fs.fstatSync(share.memfd).ino);
    m.real.unmap(); // `real` replaces it; `m` stays in the counts until close()
    const close = real.close.bind(real);
    Object.defineProperty(real, 'close', {
      value: () => {
        close();
        m.unmap();
      },
    });
    return real;
  }

  /**
   * How many of this host's pool regions this process still maps (from
   * /proc/self/maps, so the munmap itself is seen). Unlike the process-wide
   * poolRegionsAlive(), regions of earlier tests that the collector frees
   * meanwhile do not move it.
   */
  poolPagesMapped() {
    let n = 0;
    for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const inode = line.split(/\s+/)[4];
      if (inode !== undefined && this.poolInodes.has(Number(inode))) n++;
    }
    return n;
  }

  /** A mapping whose unmap() runs the kernel's unmap-notify and frees the pages when nobody maps them. */
  wrap(real, share, owner, domid, notifyOffset, notifyPort, base = 0) {
    const host = this;
    const m = {
      real,
      length: real.length,
      unmap() {
        real.unmap(); // throws while an endpoint uses it, as the real one does
        if (!host.mappings.delete(m)) return;
        if (notifyOffset >= 0) fs.writeSync(share.memfd, Buffer.alloc(1), 0, 1, base + notifyOffset);
        if (notifyPort >= 0) host.notify(domid, notifyPort);
        if (owner) share.ownerMapped = false;
        else share.maps--;
        host.maybeFree(share);
      },
    };
    this.mappings.add(m);
    return m;
  }

  maybeFree(share) {
    // Pages a peer still maps stay allocated (Xen cannot revoke a mapping).
    if (share.ownerMapped || share.maps > 0 || !this.shares.delete(share)) return;
    for (const r of share.refs) this.grants.delete(r);
    native.closeFd(share.memfd);
  }

  // ---- event channels --------------------------------------------------------

  evtchnOpen(domid) {
    const fd = native.eventfdCreate();
    this.evtchnFds.set(fd, { domid, ports: new Set() });
    return fd;
  }

  portOf(domid, fd, port) {
    const rec = this.ports.get(`${domid}:${port}`);
    if (!rec || rec.fd !== fd) throw sysErr('EINVAL', 'ioctl(EVTCHN)');
    return rec;
  }

  newPort(domid, fd, remote) {
    const f = this.evtchnFds.get(fd);
    if (!f || f.domid !== domid) throw sysErr('EBADF', 'ioctl(EVTCHN)');
    const port = (this.nextPort.get(domid) ?? 0) + 1;
    this.nextPort.set(domid, port);
    const rec = { domid, port, fd, remote, peer: null, kickFd: native.eventfdCreate() };
    rec.kickWatcher = new native.FdWatcher(rec.kickFd, () => {
      drain(rec.kickFd);
      if (rec.peer) signal(rec.peer.fd);
    });
    rec.kickWatcher.start(UV_READABLE);
    rec.kickWatcher.unref();
    this.ports.set(`${domid}:${port}`, rec);
    f.ports.add(port);
    return rec;
  }

  bindUnbound(domid, fd, remote) {
    return this.newPort(domid, fd, remote).port;
  }

  bindInterdomain(domid, fd, remote, remotePort) {
    if (this.faults.bindInterdomainError) {
      const code = this.faults.bindInterdomainError;
      this.faults.bindInterdomainError = null;
      throw sysErr(code, 'ioctl(EVTCHN_BIND_INTERDOMAIN)');
    }
    const other = this.ports.get(`${remote}:${remotePort}`);
    // Xen allows it only for an unbound port created for this domain.
    if (!other || other.peer || other.remote !== domid) throw sysErr('EINVAL', 'ioctl(EVTCHN_BIND_INTERDOMAIN)');
    const rec = this.newPort(domid, fd, remote);
    rec.peer = other;
    other.peer = rec;
    signal(fd); // Xen marks a freshly bound port pending
    return rec.port;
  }

  notify(domid, port) {
    const rec = this.ports.get(`${domid}:${port}`);
    if (!rec) throw sysErr('EINVAL', 'ioctl(EVTCHN_NOTIFY)');
    if (rec.peer) signal(rec.peer.fd);
  }

  unbind(domid, fd, port) {
    const rec = this.portOf(domid, fd, port);
    this.dropPort(rec);
  }

  dropPort(rec) {
    this.ports.delete(`${rec.domid}:${rec.port}`);
    this.evtchnFds.get(rec.fd)?.ports.delete(rec.port);
    if (rec.peer) rec.peer.peer = null;
    rec.kickWatcher.close();
    native.closeFd(rec.kickFd);
  }

  closeFd(fd) {
    const f = this.evtchnFds.get(fd);
    if (f) {
      // Closing the device unbinds what is still bound, as the kernel does.
      for (const p of [...f.ports]) this.dropPort(this.ports.get(`${f.domid}:${p}`));
      this.evtchnFds.delete(fd);
    }
    native.closeFd(fd);
  }

  // ---- accounting --------------------------------------------------------------

  /** Everything still held: grants, mappings, bound ports, open channel fds. */
  held() {
    return { grants: this.liveGrants(), mappings: this.mappings.size, ports: this.ports.size, evtchnFds: this.evtchnFds.size };
  }

  close() {
    this.xs.close();
  }
}

module.exports = { FakeXenHost };
