'use strict';
// A forked peer script that reports by IPC messages { event, ... }; next(event)
// resolves with its next message of that kind, or rejects once it has exited
// without sending one. Registered with the fixtures so a failed test kills it.
const path = require('node:path');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { children } = require('../helpers/fixtures');

function forkPeer(script, opts, execArgv = []) {
  const child = fork(path.join(__dirname, script), [JSON.stringify(opts)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const exited = once(child, 'exit');
  exited.then(() => children.delete(child));
  const inbox = [];
  let wake = () => {};
  child.on('message', (m) => {
    inbox.push(m);
    wake();
  });
  return {
    child,
    exited,
    async next(event) {
      for (;;) {
        const i = inbox.findIndex((m) => m.event === event);
        if (i >= 0) return inbox.splice(i, 1)[0];
        const done = await Promise.race([new Promise((r) => (wake = r)).then(() => false), exited.then(() => true)]);
        if (done && !inbox.some((m) => m.event === event)) throw new Error(`peer exited before '${event}'`);
      }
    },
  };
}

module.exports = { forkPeer };
