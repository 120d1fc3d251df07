'use strict';
// HTTP over xenring: a node:http server fed with xenring sockets, and an
// http client whose connections are xenring sockets. Client in a child process.
const http = require('node:http');
const { fork } = require('node:child_process');
const xenring = require('..'); // in your project: require('xenring')

const PORT = 'http-demo';

if (process.argv[2] === 'client') {
  const agent = new http.Agent({ keepAlive: true });
  agent.createConnection = (options, cb) => xenring.connect({ port: PORT }, cb);
  let left = 3;
  const get = () =>
    http.get({ agent, path: `/hello/${left}`, host: 'xenring' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        console.log(`client: ${res.statusCode} ${body.trim()}`);
        if (--left > 0) get();
        else agent.destroy();
      });
    });
  get();
} else {
  const httpServer = http.createServer((req, res) => {
    res.end(`you asked for ${req.url} over a ring\n`);
  });
  // Any Duplex can carry HTTP: hand each xenring connection to the http server.
  const server = xenring.createServer((socket) => httpServer.emit('connection', socket));
  server.listen(PORT, () => {
    console.log('server: HTTP over xenring on', server.address());
    const child = fork(__filename, ['client']);
    child.on('exit', () => server.close());
  });
}
