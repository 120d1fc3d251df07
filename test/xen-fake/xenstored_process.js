'use strict';
// A FakeXenstored in a process of its own, serving one guest domain: it can
// answer while the test process blocks (a synchronous xenstore read).
// `node xenstored_process.js <domid>`; sends { sock } over IPC, exits when
// the parent disconnects.
const { FakeXenstored } = require('./fake_xenstored');

const domid = Number(process.argv[2]);
const xs = new FakeXenstored({ defaultDomid: domid });
xs.addDomain(domid);
process.send({ sock: xs.sock });
process.on('disconnect', () => {
  xs.close();
  process.exit(0);
});
