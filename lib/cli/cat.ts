/**
 * `xenring cat ADDR` and `xenring listen PORT`: like nc, stdin to the peer
 * and the peer to stdout. The end of stdin half-closes our side; the peer's
 * end finishes the command (as ncat does).
 * @internal
 */
import type { Duplex } from 'node:stream';
import { ADDRESS_HELP, connectTo, formatAddress, listenOn, parseAddress, ringOptions, type Address } from './address';
import { forward, pooledOnRead } from './forward';
import { describeError, EXIT_FAILURE, EXIT_OK, parseArgs, UsageError } from './options';
import { Meter } from './progress';

export const CAT_HELP = `Usage: xenring cat [options] ring:[DOMID/]PORT
       (or any address: tcp:HOST:PORT, unix:PATH)

Connects, copies stdin to the peer and the peer to stdout. At the end of
stdin our sending side is closed (half-close); cat exits when both sides have
ended (when the peer ends, at once if stdin is a terminal).

Options:
  --progress        throughput on stderr every second
  -h, --help        this help
${ADDRESS_HELP}

Example: echo hello | xenring cat ring:7000

Exit status: 0 when the peer ended cleanly, 1 on a connection error (refused,
reset, ...), 2 bad usage.`;

export const LISTEN_HELP = `Usage: xenring listen [options] PORT
       (PORT: a ring port number or service name, or any address
        ring:[DOMID/]PORT, tcp:HOST:PORT, unix:PATH)

Waits for one connection (like nc -l), then copies stdin to the peer and the
peer to stdout; stops listening once a peer is connected. The bound address is
printed on stderr (useful with port 0).

Options:
  --progress        throughput on stderr every second
  -h, --help        this help
${ADDRESS_HELP}

Example: xenring listen 7000 > received.bin

Exit status: 0 when the peer ended cleanly, 1 on an error (cannot listen,
reset, ...), 2 bad usage.`;

const SPEC = { transport: 'value', dir: 'value', spin: 'value', progress: 'flag' } as const;

export function cat(argv: string[], exit: (code: number) => void): void {
  const { options, positionals } = parseArgs(argv, SPEC, 1);
  if (options.help) {
    process.stdout.write(CAT_HELP + '\n');
    return exit(EXIT_OK);
  }
  if (positionals.length === 0) throw new UsageError('missing the address to connect to (e.g. ring:7000)');
  const address = parseAddress(positionals[0], 'address');
  const socket = connectTo(address, ringOptions(options), pooledOnRead);
  const name = formatAddress(address);
  let connected = false;
  socket.once('connect', () => {
    connected = true;
    attachStdio(socket, 'xenring cat', Boolean(options.progress), exit);
  });
  socket.on('error', (err) => {
    if (connected) return; // attachStdio reports it
    process.stderr.write(`xenring cat: ${name}: ${describeError(err)}\n`);
    exit(EXIT_FAILURE);
  });
}

export function listen(argv: string[], exit: (code: number) => void): void {
  const { options, positionals } = parseArgs(argv, SPEC, 1);
  if (options.help) {
    process.stdout.write(LISTEN_HELP + '\n');
    return exit(EXIT_OK);
  }
  if (positionals.length === 0) throw new UsageError('missing the port to listen on (e.g. 7000)');
  const arg = positionals[0];
  const address: Address = arg.includes(':') ? parseAddress(arg, 'address') : parseAddress(`ring:${arg}`, 'port');
  let accepted = false;
  // Stopped while still waiting for its peer: close the listener first, so
  // that its socket file does not stay behind (a ring port's would be
  // listed as stale by `xenring status`; a unix: path would stay bound).
  const stop = (signal: NodeJS.Signals) => {
    server.close();
    exit(128 + (signal === 'SIGINT' ? 2 : 15));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const server = listenOn(
    address,
    ringOptions(options),
    (socket: Duplex) => {
      if (accepted) return void socket.destroy();
      accepted = true;
      server.close();
      // Connected: a signal stops the transfer as it always did.
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      attachStdio(socket, 'xenring listen', Boolean(options.progress), exit);
    },
    (err, bound) => {
      if (err) {
        process.stderr.write(`xenring listen: cannot listen on ${formatAddress(address)}: ${describeError(err)}\n`);
        return exit(EXIT_FAILURE);
      }
      process.stderr.write(`xenring listen: listening on ${formatAddress(bound!)}\n`);
    },
    pooledOnRead,
  );
}

/** stdin -> socket (its end half-closes), socket -> stdout; exits when the socket has closed. */
function attachStdio(socket: Duplex, label: string, progress: boolean, exit: (code: number) => void): void {
  const meter = new Meter(label, progress);
  let failed = false;
  socket.on('error', (err) => {
    if (!failed) process.stderr.write(`${label}: ${describeError(err)}\n`);
    failed = true;
  });
  const stopInput = forward(process.stdin, socket, (n) => (meter.out += n));
  forward(socket, process.stdout, (n) => (meter.in += n));
  socket.once('end', () => {
    // The peer has finished sending. Piped input is still sent to its end (the
    // peer may be reading yet: half-close); a terminal would never end, so stop there.
    if (!process.stdin.isTTY) return;
    stopInput();
    socket.end();
  });
  socket.once('close', () => {
    meter.stop();
    const code = failed ? EXIT_FAILURE : EXIT_OK;
    // Exit once stdout has taken everything (a pipe may still be draining).
    if (process.stdout.writableLength === 0) exit(code);
    else process.stdout.once('drain', () => exit(code));
  });
}
