'use strict';
// Strangers (issue 11, attack 7): a process of another uid must get no ring
// unless the server named that uid in `allowUid`, and a client must refuse a
// server of another uid unless it named that uid too. The stranger is a
// Python child that drops to user nobody (the test runs as root).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const xenring = require('../..');
const { hostilePeer, listeningServer, connectOutcome } = require('./helpers');

const NOBODY = 65534;

/** A directory of ours that other users may traverse but not write (0711). */
function traversableDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xenring-uid-'));
  fs.chmodSync(dir, 0o711);
  return dir;
}

async function askAsNobody(socketPath) {
  const peer = hostilePeer('ask', { path: socketPath, order: 12, uid: NOBODY, gid: NOBODY });
  const res = await peer.line();
  await peer.exited;
  return res;
}

describe('hostile peer: another user', function () {
  this.timeout(30000);
  before(function () {
    if (process.getuid() !== 0) this.skip(); // switching to another uid needs root
  });

  it('the server refuses a client of another uid even when the socket file lets it in', async function () {
    const dir = traversableDir();
    const { server, path: sock, sockets } = await listeningServer({ dir, ringSize: 4096 });
    try {
      fs.chmodSync(sock, 0o666); // as a permissive umask or admin would leave it
      const res = await askAsNobody(sock);
      assert.equal(res.denied, undefined, 'the socket file kept the stranger out: the test proves nothing');
      assert.equal(res.replied, false, 'a process of another uid was handed a ring');
      assert.equal(sockets.length, 0);
    } finally {
      server.close();
    }
  });

  it('the server lets in exactly the uids named in allowUid', async function () {
    const dir = traversableDir();
    const { server, path: sock } = await listeningServer({ dir, ringSize: 4096, allowUid: [NOBODY] });
    try {
      assert.equal(fs.statSync(sock).mode & 0o777, 0o666);
      const res = await askAsNobody(sock);
      assert.equal(res.replied, true, JSON.stringify(res));
      assert.equal(res.left, 12);
    } finally {
      server.close();
    }
  });

  it('the client refuses a server of another uid unless told to allow it', async function () {
    const port = `stranger-${process.pid}`;
    const sock = path.join(process.env.XENRING_DIR, `${port}.sock`);
    let peer = hostilePeer('server', { path: sock, reply: 'honest', listenUid: NOBODY });
    assert.equal(await peer.line(), 'ready');
    try {
      assert.equal(await connectOutcome({ port }), 'EACCES');
    } finally {
      await peer.end();
    }
    peer = hostilePeer('server', { path: sock, reply: 'honest', listenUid: NOBODY });
    assert.equal(await peer.line(), 'ready');
    try {
      assert.equal(await connectOutcome({ port, allowUid: NOBODY }), 'connect');
    } finally {
      await peer.end();
    }
  });

  it('rejects an allowUid that is not a uid', function () {
    const server = xenring.createServer();
    assert.throws(() => server.listen({ port: 0, allowUid: 'nobody' }), { code: 'ERR_INVALID_ARG_TYPE' });
  });
});
