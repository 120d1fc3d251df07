/**
 * `xenring proxy --listen ADDR --connect ADDR`: accepts on one address and
 * forwards each connection to the other, both ways, many at once (what Xen's
 * vchan-socket-proxy does for one connection).
 * @internal
 */
import type { Duplex } from 'node:stream';
import { ADDRESS_HELP, connectTo, formatAddress, listenOn, parseAddress, ringOptions } from './address';
import { forward, pooledOnRead } from './forward';
import { describeError, EXIT_FAILURE, EXIT_OK, parseArgs, UsageError } from './options';
import { Meter } from './progress';

export const PROXY_HELP = `Usage: xenring proxy --listen ADDR --connect ADDR [options]

Accepts connections on --listen and forwards each one to --connect, both
ways, with backpressure and half-close; any number of connections at once.
SIGINT/SIGTERM: stop accepting, give up connections whose target has not
answered yet, let the others finish, exit 0 (a
second signal resets them at once, so that no peer takes a cut transfer for
a complete one, and exits 128 + the signal: 130 for SIGINT, 143 for SIGTERM).

Options:
  --listen ADDR     where to accept (port 0 = any free one; the bound address
                    is printed on stderr)
  --connect ADDR    where to forward each connection
  --progress        throughput on stderr every second
  --verbose         one line on stderr per connection opened and closed
  -h, --help        this help
${ADDRESS_HELP}

Example: share a local TCP service over a ring, and reach it over TCP elsewhere
  xenring proxy --listen ring:redis --connect tcp:127.0.0.1:6379
  xenring proxy --listen tcp:127.0.0.1:7379 --connect ring:redis

Exit status: 0 after a clean stop, 1 if listening failed, 2 bad usage.`;

type AnySocket = Duplex & { resetAndDestroy?(): unknown };

export function proxy(argv: string[], exit: (code: number) => void): void {
  const { options } = parseArgs(argv, { listen: 'value', connect: 'value', transport: 'value', dir: 'value', spin: 'value', progress: 'flag', verbose: 'flag' }, 0);
  if (options.help) {
    process.stdout.write(PROXY_HELP + '\n');
    return exit(EXIT_OK);
  }
  if (!options.listen) throw new UsageError('--listen ADDR is required');
  if (!options.connect) throw new UsageError('--connect ADDR is required');
  const listenAddr = parseAddress(options.listen as string, '--listen');
  const target = parseAddress(options.connect as string, '--connect');
  const ring = ringOptions(options);
  const verbose = Boolean(options.verbose);

  const open = new Set<{ inbound: AnySocket; outbound: AnySocket; connected: boolean }>();
  let connections = 0;
  let stopping = false;
  let listening = false;
  const meter = new Meter('xenring proxy', Boolean(options.progress), () => `${open.size} open, `);

  const finishIfIdle = () => {
    if (stopping && open.size === 0) {
      meter.stop();
      exit(EXIT_OK);
    }
  };

  const onConnection = (inbound: AnySocket) => {
    if (stopping) return void inbound.destroy();
    const id = ++connections;
    const outbound = connectTo(target, ring, pooledOnRead);
    const conn = { inbound, outbound, connected: false };
    open.add(conn);
    let closed = 0;
    const failWith = (other: AnySocket) => (err: Error) => {
      // A failed connect is always worth a line; a reset mid-stream only with --verbose.
      if (!conn.connected) process.stderr.write(`xenring proxy: #${id}: cannot reach ${formatAddress(target)}: ${describeError(err)}\n`);
      else if (verbose) process.stderr.write(`xenring proxy: #${id}: ${describeError(err)}\n`);
      resetOrDestroy(other);
    };
    inbound.on('error', failWith(outbound));
    outbound.on('error', failWith(inbound));
    const onClose = () => {
      if (++closed < 2) return;
      open.delete(conn);
      if (verbose) process.stderr.write(`xenring proxy: #${id} closed\n`);
      finishIfIdle();
    };
    inbound.once('close', onClose);
    outbound.once('close', onClose);
    outbound.once('connect', () => {
      conn.connected = true;
      if (verbose) process.stderr.write(`xenring proxy: #${id} connected to ${formatAddress(target)}\n`);
      forward(inbound, outbound, (n) => (meter.out += n));
      forward(outbound, inbound, (n) => (meter.in += n));
    });
  };

  const server = listenOn(listenAddr, ring, onConnection, (err, bound) => {
    if (err) {
      process.stderr.write(`xenring proxy: cannot listen on ${formatAddress(listenAddr)}: ${describeError(err)}\n`);
      return exit(EXIT_FAILURE);
    }
    listening = true;
    process.stderr.write(`xenring proxy: listening on ${formatAddress(bound!)}, forwarding to ${formatAddress(target)}\n`);
  }, pooledOnRead);

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // Reset, not closed in order: a peer must not read a cut transfer as a complete one (an orderly close is an end of stream).
      for (const c of open) resetOrDestroy(c.inbound), resetOrDestroy(c.outbound);
      meter.stop();
      return exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    stopping = true;
    if (listening) server.close();
    // A connection whose target has not answered carries no transfer to
    // finish: given up (reset), or a target that never answers would hold
    // the stop until the kernel's connect timeout (minutes).
    for (const c of open) if (!c.connected) resetOrDestroy(c.inbound), c.outbound.destroy();
    // Printed once the listener is closed: a connection attempted after this line is refused.
    process.stderr.write(`xenring proxy: ${signal}: not accepting; waiting for ${open.size} connection(s) to finish (signal again to close them now)\n`);
    finishIfIdle();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** A reset on one side becomes a reset on the other (TCP RST, ring reset), not an orderly end. */
function resetOrDestroy(socket: AnySocket): void {
  if (socket.destroyed) return;
  try {
    // net's resetAndDestroy() throws on a UNIX socket (only TCP has an RST).
    if (typeof socket.resetAndDestroy === 'function') return void socket.resetAndDestroy();
  } catch {
    /* fall through */
  }
  socket.destroy();
}
