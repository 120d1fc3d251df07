'use strict';
// Pipe a file from this process to a child process over xenring; the child
// writes it out and both print its sha256.
//   node examples/pipe-file.js <input> <output>
const fs = require('node:fs');
const crypto = require('node:crypto');
const { pipeline } = require('node:stream/promises');
const { fork } = require('node:child_process');
const xenring = require('..'); // in your project: require('xenring')

const [role, a, b] = process.argv[2] === 'receive' ? process.argv.slice(2) : ['send', ...process.argv.slice(2)];

async function receive(port, output) {
  const socket = xenring.connect({ port: Number(port) });
  const hash = crypto.createHash('sha256');
  socket.on('data', (d) => hash.update(d));
  await pipeline(socket, fs.createWriteStream(output));
  console.log(`receiver: wrote ${output}, sha256 ${hash.digest('hex')}`);
}

function send(input, output) {
  if (!input || !output) {
    console.error('usage: node examples/pipe-file.js <input> <output>');
    process.exit(2);
  }
  const server = xenring.createServer(async (socket) => {
    server.close();
    const hash = crypto.createHash('sha256');
    const file = fs.createReadStream(input);
    file.on('data', (d) => hash.update(d));
    await pipeline(file, socket);
    console.log(`sender:   sent ${input} (${fs.statSync(input).size} bytes), sha256 ${hash.digest('hex')}`);
  });
  server.listen(0, () => fork(__filename, ['receive', String(server.address().port), output]));
}

if (role === 'receive') receive(a, b);
else send(a, b);
