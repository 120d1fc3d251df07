'use strict';
// A small xenstored for tests: the xs_wire protocol over UNIX seqpacket
// sockets (one connection per fake domain), with what xenring's client uses:
// read/write/rm/directory/directory_part, permissions (owner, n/r/w/b, dom0
// privileged, creators own what they create), per-domain node quotas,
// transactions with per-node conflict detection (EAGAIN at commit), and
// watches (fired on registration and on changes the watcher may read).
// Faults are injected per request: an error reply, or no reply at all.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const root = path.join(__dirname, '..', '..', 'dist');
const { native, UV_READABLE } = require(path.join(root, 'native.js'));
const { xen } = require(path.join(root, 'transports', 'xen', 'native_xen.js'));

const OP = {
  DIRECTORY: 1, READ: 2, GET_PERMS: 3, WATCH: 4, UNWATCH: 5, TX_START: 6, TX_END: 7,
  WRITE: 11, RM: 13, SET_PERMS: 14, WATCH_EVENT: 15, ERROR: 16, DIRECTORY_PART: 22,
};
const OP_NAME = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k.toLowerCase()]));

class XsError extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

const parentOf = (p) => (p === '/' ? null : p.slice(0, p.lastIndexOf('/')) || '/');
const baseOf = (p) => p.slice(p.lastIndexOf('/') + 1);
const under = (p, dir) => p === dir || p.startsWith(dir === '/' ? '/' : dir + '/');
const clonePerms = (perms) => perms.map((x) => ({ ...x }));
const cloneNode = (n) => ({ value: n.value, perms: clonePerms(n.perms), children: [...n.children], gen: n.gen });

class FakeXenstored {
  constructor({ quota = 1000, partMax = 4096, defaultDomid = 0 } = {}) {
    this.quota = quota; // nodes per unprivileged domain
    this.defaultDomid = defaultDomid; // of a connection no connect() announced (e.g. from another process)
    this.partMax = partMax; // payload size of one directory_part reply
    this.nodes = new Map([['/', { value: '', perms: [{ domid: 0, perm: 'n' }], children: [], gen: 1 }]]);
    this.version = new Map(); // path -> modification count (conflict detection)
    this.gen = 1;
    this.conns = new Set();
    this.expect = [];
    this.faults = [];
    this.nextTx = 1;
    this.log = [];
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-xs-'));
    this.sock = path.join(this.dir, 'xs');
    this.listenFd = native.unixListen(this.sock, 64);
    this.listenWatcher = new native.FdWatcher(this.listenFd, () => this.onAccept());
    this.listenWatcher.start(UV_READABLE);
    this.listenWatcher.unref();
    this.mkdirs('/local/domain', 0);
  }

  // ---- test API ------------------------------------------------------------

  /** Creates a domain's home (owned by it) with its `domid` key. */
  addDomain(domid) {
    this.mkdirs(`/local/domain/${domid}`, 0);
    const home = this.nodes.get(`/local/domain/${domid}`);
    home.perms = [{ domid, perm: 'n' }];
    this.put(`/local/domain/${domid}/domid`, String(domid), [{ domid, perm: 'n' }]);
    this.mkdirs(`/local/domain/${domid}/data`, domid);
  }

  /** A raw fd connected as `domid` (what /dev/xen/xenbus is for that domain). */
  connect(domid) {
    this.expect.push(domid);
    return native.unixConnect(this.sock);
  }

  /**
   * The next request matching {op, path (RegExp), domid} gets `code`, no
   * reply (code null), or is processed `delay` ms late; with `replyDelay` it
   * is processed now (its effect seen by others and their watches) and only
   * its reply comes that late.
   */
  inject(fault) {
    this.faults.push({ times: 1, ...fault });
  }

  get(p) {
    const n = this.nodes.get(p);
    return n ? { value: n.value, perms: clonePerms(n.perms), children: [...n.children] } : null;
  }

  /** Paths at or below `dir`. */
  list(dir) {
    return [...this.nodes.keys()].filter((p) => under(p, dir)).sort();
  }

  ownedBy(domid) {
    let n = 0;
    for (const [p, node] of this.nodes) if (p !== '/' && node.perms[0].domid === domid) n++;
    return n;
  }

  close() {
    for (const c of this.conns) this.dropConn(c);
    this.listenWatcher.close();
    native.closeFd(this.listenFd);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Open transactions of `domid`'s connections. */
  openTransactions(domid) {
    let n = 0;
    for (const c of this.conns) if (c.domid === domid) n += c.txs.size;
    return n;
  }

  /** Closes `domid`'s connections (as a crashed xenstored or a dead device would). */
  disconnect(domid) {
    for (const c of [...this.conns]) if (c.domid === domid) this.dropConn(c);
  }

  // ---- store -----------------------------------------------------------------

  mkdirs(p, owner) {
    const parts = p.split('/').filter(Boolean);
    let cur = '';
    for (const part of parts) {
      cur += '/' + part;
      if (!this.nodes.has(cur)) this.put(cur, '', [{ domid: owner, perm: 'n' }]);
    }
  }

  put(p, value, perms) {
    const parent = this.nodes.get(parentOf(p));
    if (!this.nodes.has(p)) parent.children.push(baseOf(p));
    this.nodes.set(p, { value, perms, children: this.nodes.get(p)?.children ?? [], gen: ++this.gen });
  }

  // ---- connections -------------------------------------------------------------

  onAccept() {
    for (;;) {
      let fd;
      try {
        fd = native.unixAccept(this.listenFd);
      } catch {
        return;
      }
      if (fd < 0 || fd === null || fd === undefined) return;
      const domid = this.expect.length ? this.expect.shift() : this.defaultDomid;
      const conn = { fd, domid, inbuf: Buffer.alloc(0), watches: new Map(), txs: new Map(), out: [], paused: false };
      conn.watcher = new native.FdWatcher(fd, (ev) => this.onReadable(conn, ev));
      conn.watcher.start(UV_READABLE);
      conn.watcher.unref();
      this.conns.add(conn);
    }
  }

  /** Stops reading `domid`'s requests (its socket fills, its writes get EAGAIN) until resume(). */
  pause(domid) {
    for (const c of this.conns) if (c.domid === domid) (c.paused = true), c.watcher.stop();
  }

  resume(domid) {
    for (const c of this.conns) {
      if (c.domid === domid && c.paused) {
        c.paused = false;
        c.watcher.start(UV_READABLE);
        this.onReadable(c, UV_READABLE);
      }
    }
  }

  dropConn(conn) {
    if (!this.conns.delete(conn)) return;
    conn.watcher.close();
    native.closeFd(conn.fd);
  }

  onReadable(conn, events) {
    if (!this.conns.has(conn) || conn.paused) return;
    for (;;) {
      let chunk;
      try {
        chunk = xen.fdRead(conn.fd, 1 << 16);
      } catch {
        this.dropConn(conn);
        return;
      }
      if (chunk === null) break;
      if (chunk.length === 0 || events < 0) {
        this.dropConn(conn);
        return;
      }
      conn.inbuf = Buffer.concat([conn.inbuf, chunk]);
    }
    while (conn.inbuf.length >= 16) {
      const len = conn.inbuf.readUInt32LE(12);
      if (len > 4096) {
        this.dropConn(conn);
        return;
      }
      if (conn.inbuf.length < 16 + len) break;
      const type = conn.inbuf.readUInt32LE(0);
      const req = conn.inbuf.readUInt32LE(4);
      const tx = conn.inbuf.readUInt32LE(8);
      const body = conn.inbuf.subarray(16, 16 + len).toString('latin1');
      conn.inbuf = conn.inbuf.subarray(16 + len);
      this.handle(conn, type, req, tx, body);
    }
  }

  send(conn, type, req, tx, payload) {
    const body = Buffer.from(payload, 'latin1');
    const msg = Buffer.alloc(16 + body.length);
    msg.writeUInt32LE(type, 0);
    msg.writeUInt32LE(req, 4);
    msg.writeUInt32LE(tx, 8);
    msg.writeUInt32LE(body.length, 12);
    body.copy(msg, 16);
    conn.out.push(msg);
    this.flushOut(conn);
  }

  flushOut(conn) {
    while (conn.out.length && this.conns.has(conn)) {
      let n;
      try {
        n = xen.fdWrite(conn.fd, conn.out[0]);
      } catch {
        this.dropConn(conn);
        return;
      }
      if (n === 0) {
        setTimeout(() => this.flushOut(conn), 2).unref();
        return;
      }
      conn.out.shift();
    }
  }

  handle(conn, type, req, txId, body) {
    const args = body.split('\0');
    const name = OP_NAME[type] ?? String(type);
    const first = args[0] ?? '';
    const abs = first.startsWith('/') || first === '' ? first : `/local/domain/${conn.domid}/${first}`;
    this.log.push({ domid: conn.domid, op: name, path: abs });
    if (process.env.FAKE_XS_TRACE) console.log('xs', conn.domid, name, JSON.stringify(body));
    const fault = this.faults.find(
      (f) => f.times > 0 && (!f.op || f.op === name) && (!f.path || f.path.test(abs)) && (f.domid === undefined || f.domid === conn.domid),
    );
    if (fault) {
      fault.times--;
      if (fault.delay) {
        // A slow reply: processed (and answered) later.
        setTimeout(() => this.conns.has(conn) && this.process(conn, type, req, txId, args, body, abs), fault.delay).unref();
        return;
      }
      if (fault.replyDelay) {
        const send = this.send;
        this.send = (...a) => setTimeout(() => this.conns.has(conn) && send.apply(this, a), fault.replyDelay).unref();
        try {
          this.process(conn, type, req, txId, args, body, abs);
        } finally {
          this.send = send;
        }
        return;
      }
      if (fault.code === null) return; // a reply that never comes
      this.send(conn, OP.ERROR, req, txId, fault.code + '\0');
      return;
    }
    this.process(conn, type, req, txId, args, body, abs);
  }

  process(conn, type, req, txId, args, body, abs) {
    try {
      const reply = this.exec(conn, type, txId, args, body, abs);
      this.send(conn, type, req, txId, reply);
    } catch (err) {
      if (!(err instanceof XsError)) throw err;
      this.send(conn, OP.ERROR, req, txId, err.code + '\0');
    }
  }

  // ---- operations ----------------------------------------------------------------

  view(conn, txId) {
    if (!txId) return { nodes: this.nodes, tx: null };
    const tx = conn.txs.get(txId);
    if (!tx) throw new XsError('ENOENT');
    return { nodes: tx.nodes, tx };
  }

  touch(view, p) {
    if (view.tx && !view.tx.seen.has(p)) view.tx.seen.set(p, view.tx.startVersion.get(p) ?? 0);
  }

  canRead(domid, node) {
    if (domid === 0 || node.perms[0].domid === domid) return true;
    const e = node.perms.slice(1).find((x) => x.domid === domid) ?? node.perms[0];
    return e.perm === 'r' || e.perm === 'b';
  }

  canWrite(domid, node) {
    if (domid === 0 || node.perms[0].domid === domid) return true;
    const e = node.perms.slice(1).find((x) => x.domid === domid) ?? node.perms[0];
    return e.perm === 'w' || e.perm === 'b';
  }

  /** The node, or ENOENT / EACCES as xenstored decides (a hidden parent hides absence too). */
  lookup(view, conn, p, need) {
    this.touch(view, p);
    const node = view.nodes.get(p);
    if (!node) {
      let a = parentOf(p);
      while (a && !view.nodes.get(a)) a = parentOf(a);
      if (a && !this.canRead(conn.domid, view.nodes.get(a))) throw new XsError('EACCES');
      throw new XsError('ENOENT');
    }
    if (need === 'r' && !this.canRead(conn.domid, node)) throw new XsError('EACCES');
    if (need === 'w' && !this.canWrite(conn.domid, node)) throw new XsError('EACCES');
    return node;
  }

  changed(view, p, fire = true) {
    if (view.tx) {
      if (fire) view.tx.changed.add(p);
      else view.tx.bumped.add(p);
      return;
    }
    this.version.set(p, (this.version.get(p) ?? 0) + 1);
    if (fire) this.fireWatches(p);
  }

  exec(conn, type, txId, args, body, p) {
    switch (type) {
      case OP.READ:
        return this.lookup(this.view(conn, txId), conn, p, 'r').value;
      case OP.DIRECTORY: {
        const n = this.lookup(this.view(conn, txId), conn, p, 'r');
        return n.children.map((c) => c + '\0').join('');
      }
      case OP.DIRECTORY_PART: {
        const n = this.lookup(this.view(conn, txId), conn, p, 'r');
        const list = n.children.map((c) => c + '\0').join('');
        const off = Number(args[1]);
        const gen = `${n.gen}\0`;
        if (off >= list.length) return gen + '\0';
        let end = off;
        while (end < list.length) {
          const next = list.indexOf('\0', end) + 1;
          if (next - off + gen.length + 1 > this.partMax) break;
          end = next;
        }
        return gen + list.slice(off, end) + (end === list.length ? '\0' : '');
      }
      case OP.GET_PERMS: {
        const n = this.lookup(this.view(conn, txId), conn, p, 'r');
        return n.perms.map((x) => `${x.perm}${x.domid}\0`).join('');
      }
      case OP.WRITE:
        return this.write(conn, this.view(conn, txId), p, body.slice(args[0].length + 1));
      case OP.RM:
        return this.rm(conn, this.view(conn, txId), p);
      case OP.SET_PERMS: {
        const view = this.view(conn, txId);
        const perms = args.slice(1).filter(Boolean).map((s) => ({ perm: s[0], domid: Number(s.slice(1)) }));
        if (perms.length === 0 || perms.some((x) => !'nrwb'.includes(x.perm) || !Number.isInteger(x.domid))) throw new XsError('EINVAL');
        const n = this.lookup(view, conn, p, 'w');
        if (conn.domid !== 0 && n.perms[0].domid !== conn.domid) throw new XsError('EACCES');
        if (conn.domid !== 0 && perms[0].domid !== n.perms[0].domid) throw new XsError('EPERM');
        n.perms = perms;
        n.gen = ++this.gen;
        this.changed(view, p);
        return 'OK\0';
      }
      case OP.WATCH: {
        const token = args[1];
        conn.watches.set(`${p}\0${token}`, { path: p, token });
        this.send(conn, OP.WATCH_EVENT, 0, 0, `${p}\0${token}\0`);
        return 'OK\0';
      }
      case OP.UNWATCH:
        if (!conn.watches.delete(`${p}\0${args[1]}`)) throw new XsError('ENOENT');
        return 'OK\0';
      case OP.TX_START: {
        const id = this.nextTx++;
        const nodes = new Map();
        for (const [k, v] of this.nodes) nodes.set(k, cloneNode(v));
        conn.txs.set(id, { nodes, seen: new Map(), changed: new Set(), bumped: new Set(), startVersion: new Map(this.version) });
        return `${id}\0`;
      }
      case OP.TX_END: {
        const tx = conn.txs.get(txId);
        if (!tx) throw new XsError('ENOENT');
        conn.txs.delete(txId);
        if (args[0] !== 'T') return 'OK\0';
        for (const [k, v] of tx.seen) if ((this.version.get(k) ?? 0) !== v) throw new XsError('EAGAIN');
        for (const k of tx.seen.keys()) {
          const n = tx.nodes.get(k);
          if (n) this.nodes.set(k, n);
          else this.nodes.delete(k);
        }
        for (const k of tx.bumped) this.version.set(k, (this.version.get(k) ?? 0) + 1);
        for (const k of tx.changed) {
          this.version.set(k, (this.version.get(k) ?? 0) + 1);
          this.fireWatches(k);
        }
        return 'OK\0';
      }
      default:
        throw new XsError('ENOSYS');
    }
  }

  write(conn, view, p, value) {
    const existing = view.nodes.get(p);
    if (existing) {
      this.lookup(view, conn, p, 'w');
      existing.value = value;
      existing.gen = ++this.gen;
      this.changed(view, p);
      return 'OK\0';
    }
    // Create it and any missing parents: write access to the nearest existing ancestor.
    const missing = [];
    let a = p;
    while (!view.nodes.get(a)) {
      this.touch(view, a);
      missing.unshift(a);
      a = parentOf(a);
    }
    this.lookup(view, conn, a, 'w');
    const owned = [...view.nodes.entries()].filter(([k, n]) => k !== '/' && n.perms[0].domid === conn.domid).length;
    if (conn.domid !== 0 && owned + missing.length > this.quota) throw new XsError('ENOSPC');
    for (const m of missing) {
      const parent = view.nodes.get(parentOf(m));
      const perms = clonePerms(parent.perms);
      if (conn.domid !== 0) perms[0].domid = conn.domid; // unprivileged creators own what they create
      parent.children.push(baseOf(m));
      parent.gen = ++this.gen;
      this.touch(view, parentOf(m));
      this.changed(view, parentOf(m), false);
      view.nodes.set(m, { value: m === p ? value : '', perms, children: [], gen: ++this.gen });
      this.changed(view, m);
    }
    return 'OK\0';
  }

  rm(conn, view, p) {
    if (!view.nodes.get(p)) {
      if (view.nodes.get(parentOf(p))) return 'OK\0';
      throw new XsError('ENOENT');
    }
    this.lookup(view, conn, p, 'w');
    // Watches see the node while it still exists (xenstored fires them before deleting).
    const doomed = [...view.nodes.keys()].filter((k) => under(k, p));
    if (!view.tx) this.fireWatches(p, true);
    for (const k of doomed) {
      this.touch(view, k);
      view.nodes.delete(k);
      if (view.tx) view.tx.changed.add(k);
      else this.version.set(k, (this.version.get(k) ?? 0) + 1);
    }
    const parent = view.nodes.get(parentOf(p));
    this.touch(view, parentOf(p));
    parent.children = parent.children.filter((c) => c !== baseOf(p));
    parent.gen = ++this.gen;
    this.changed(view, parentOf(p), false);
    return 'OK\0';
  }

  /** Watch events for a change at `p` (and below it for a removal), to watchers allowed to read it. */
  fireWatches(p, removal = false) {
    let node = this.nodes.get(p);
    if (!node) {
      let a = parentOf(p);
      while (a && !this.nodes.get(a)) a = parentOf(a);
      node = a ? this.nodes.get(a) : null;
    }
    for (const c of this.conns) {
      for (const w of c.watches.values()) {
        const hit = under(p, w.path) || (removal && under(w.path, p));
        if (!hit || (node && !this.canRead(c.domid, node))) continue;
        this.send(c, OP.WATCH_EVENT, 0, 0, `${p}\0${w.token}\0`);
      }
    }
  }
}

module.exports = { FakeXenstored, OP };
