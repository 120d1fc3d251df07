'use strict';
// A reader that empties the ring inside its wake-up's callback asks for the
// next wake-up natively once the callback returns (WakeWord.Sleep,
// RingEndpoint::SleepOnReturn), instead of a waitData(0, true) call of its
// own. Counted here across processes: a ping-pong with spinMicros 0 must
// deliver every reply (a lost wake-up hangs it) while making almost no
// waitData calls in this process.
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { native } = require('../../dist/native');
const xenring = require('../..');

describe('ring: the ask for the next wake-up after the callback (spinMicros 0)', function () {
  this.timeout(60000);
  const calls = { waitData: 0 };
  let realBind;

  before(function () {
    realBind = native.bindRingMethods;
    // Endpoints made from here on get a counting waitData (the library binds
    // the per-message methods to each endpoint).
    native.bindRingMethods = (ep) => {
      const bound = realBind(ep);
      const waitData = ep.waitData;
      Object.defineProperty(ep, 'waitData', {
        value: (...args) => {
          calls.waitData++;
          return waitData(...args);
        },
        configurable: true,
      });
      return bound;
    };
  });
  after(function () {
    native.bindRingMethods = realBind;
  });

  it('400 one-byte round trips arrive intact with under 0.75 waitData calls per round trip', async function () {
    const child = fork(path.join(__dirname, 'fixtures', 'wake_echo.js'), ['0'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // Listened for now: the child may exit before our socket's 'close' comes.
    const exited = once(child, 'exit');
    const messages = [];
    child.on('message', (m) => messages.push(m));
    const [first] = await once(child, 'message');
    const socket = xenring.connect({ port: first.port, spinMicros: 0 });
    await once(socket, 'connect');
    const rounds = 400;
    const warm = 100; // past the passes after which the endpoint's methods are bound (and counted here)
    calls.waitData = 0;
    for (let i = 0; i < rounds + warm; i++) {
      if (i === warm) calls.waitData = 0;
      const byte = Buffer.of((i * 7 + 3) & 0xff);
      socket.write(byte);
      const [reply] = await once(socket, 'data');
      assert.ok(reply.equals(byte), `round trip ${i}: ${reply.toString('hex')} for ${byte.toString('hex')}`);
    }
    const perRoundTrip = calls.waitData / rounds;
    socket.end();
    await once(socket, 'close');
    const [code] = await exited;
    assert.equal(code, 0);
    assert.equal(messages.filter((m) => m.event === 'error').length, 0, JSON.stringify(messages));
    // Without the ask after the callback this is 1 (each woken read that
    // empties the ring asks with waitData(0, true)); with it, only a reply
    // that came before the callback returned makes one (0-0.5 measured).
    assert.ok(perRoundTrip < 0.75, `waitData calls per round trip: ${perRoundTrip}`);
  });
});
