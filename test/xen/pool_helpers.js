'use strict';
// Moves payloads by reference over a link's pool (PoolSender / PoolReceiver,
// without the Socket), every byte checked, and counts what this process has
// mapped from the Xen devices, so a test can see grants and mappings go back
// to where they started. Shared by the lab's dom0 and domU halves.
const fs = require('node:fs');
const { PATTERN } = require('./helpers');

// The collector: loans and views keep their pages mapped until collected.
require('node:v8').setFlagsFromString('--expose-gc');
const gc = require('node:vm').runInNewContext('gc');

/**
 * Sends `send` payloads of `size` bytes (payload k: byte i = (i + k) % 251)
 * and receives `recv`, verifying each, through `link.pool`. No ring bytes
 * are written, so every descriptor sits at stream position 0. Polls on a
 * 1 ms timer (the wake-up path is the channel's, not this helper's).
 * Resolves when all moved and every sent extent came back.
 */
function poolTransfer(link, { send = 0, recv = 0, size, timeout = 120000 }) {
  const { sender, receiver } = link.pool;
  if (size > PATTERN.length - 251) throw new Error('payload larger than the pattern');
  let sent = 0;
  let got = 0;
  return new Promise((resolve, reject) => {
    const end = Date.now() + timeout;
    const step = () => {
      try {
        sender?.reclaim();
        while (sent < send) {
          const buf = sender.allocBuffer(size);
          if (buf === null) break; // pool full: wait for completions
          buf.set(PATTERN.subarray(sent % 251, (sent % 251) + size));
          if (!sender.send(buf, 0)) throw new Error(`payload ${sent} not sent by reference`);
          sent++;
        }
        if (receiver) receiver.poll(0);
        for (let b; got < recv && (b = receiver.take(0)) !== null; got++) {
          if (b.length !== size) throw new Error(`payload ${got}: ${b.length} bytes, not ${size}`);
          const st = got % 251;
          if (b.compare(PATTERN, st, st + size) !== 0) {
            for (let i = 0; i < size; i++) if (b[i] !== (i + got) % 251) throw new Error(`payload ${got}: byte ${i} differs`);
          }
          receiver.release(b); // a view goes back now; a private copy already did
        }
        if (sent === send && got === recv && (sender === null || sender.inFlight === 0)) return resolve({ sent, recv: got });
        if (Date.now() > end) throw new Error(`timeout: sent ${sent}/${send} recv ${got}/${recv} in flight ${sender?.inFlight}`);
        setTimeout(step, 1);
      } catch (err) {
        reject(err);
      }
    };
    step();
  });
}

/**
 * Through a connected Socket: writes `count` payloads of `size` bytes, each
 * from socket.allocBuffer() (so each goes by reference), continuing the
 * stream pattern byte i = i % 251, then end(); meanwhile checks every byte
 * received against the same pattern. When the pool is full (allocBuffer()
 * counted a fallback) it waits 2 ms for extents to come back instead of
 * writing an ordinary Buffer, so every payload written went by reference.
 * Resolves on 'close' with the bytes received and the socket's poolStats().
 */
function socketPoolExchange(sock, { count, size, timeout = 120000 }) {
  if (size > PATTERN.length - 251) throw new Error('payload larger than the pattern');
  return new Promise((resolve, reject) => {
    let got = 0;
    let waits = 0;
    let failed = false;
    const timer = setTimeout(() => fail(new Error(`timeout: sent ${k}/${count}, received ${got} bytes`)), timeout);
    const fail = (err) => {
      if (failed) return;
      failed = true;
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    let k = 0;
    const more = () => {
      while (k < count && !failed) {
        const before = sock.poolStats().fallbacks;
        const buf = sock.allocBuffer(size);
        if (sock.poolStats().fallbacks !== before) {
          waits++;
          return setTimeout(more, 2);
        }
        const st = (k * size) % 251;
        buf.set(PATTERN.subarray(st, st + size));
        k++;
        if (k === count) return sock.end(buf);
        if (!sock.write(buf)) return sock.once('drain', more);
      }
    };
    sock.on('data', (buf) => {
      for (let pos = 0; pos < buf.length; ) {
        const st = (got + pos) % 251;
        const len = Math.min(buf.length - pos, PATTERN.length - st);
        if (buf.compare(PATTERN, st, st + len, pos, pos + len) !== 0) {
          for (let i = pos; i < pos + len; i++) if (buf[i] !== (got + i) % 251) return fail(new Error(`data mismatch at byte ${got + i}`));
        }
        pos += len;
      }
      got += buf.length;
      sock.release(buf); // a view goes back now (a private copy, the Xen default, already did)
    });
    sock.once('error', fail);
    sock.once('close', (hadError) => {
      clearTimeout(timer);
      if (failed) return;
      if (hadError) return fail(new Error('close(hadError=true)'));
      resolve({ got, sent: k * size, waits, stats: sock.poolStats() });
    });
    if (sock.connecting) sock.once('connect', more);
    else more();
  });
}

/** This process' mappings of gntalloc and gntdev pages (from /proc/self/maps). */
function xenMappings() {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  const count = (dev) => maps.split('\n').filter((l) => l.endsWith(dev)).length;
  return { gntalloc: count('/dev/xen/gntalloc'), gntdev: count('/dev/xen/gntdev') };
}

/** Collects until this process' Xen mappings are back to `start` (or `ms` pass); returns the last count. */
async function settleMappings(start, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
    const now = xenMappings();
    if ((now.gntalloc === start.gntalloc && now.gntdev === start.gntdev) || Date.now() > end) return now;
  }
}

module.exports = { poolTransfer, socketPoolExchange, xenMappings, settleMappings, gc };
