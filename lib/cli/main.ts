/**
 * The `xenring` command: `xenring <command> [options]`. Each command lives
 * in its own file; this one dispatches, and turns a usage mistake or an
 * unexpected failure into one line on stderr and an exit code.
 * @internal
 */
import type * as BenchModule from './bench';
import type * as CatModule from './cat';
import { describeError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './options';
import type * as ProxyModule from './proxy';
import type * as StatusModule from './status';

export const MAIN_HELP = `Usage: xenring <command> [options]

Commands:
  proxy --listen ADDR --connect ADDR   forward connections between tcp:, unix:
                                       and ring: addresses, both ways
  cat ring:[DOMID/]PORT                like nc: stdin to a ring port, its
                                       answer to stdout
  listen PORT                          like nc -l: wait for one connection on a
                                       ring port
  status [--clean]                     which transports work here, and why not
                                       (--clean: remove stale socket files)
  bench [options]                      the benchmark (as npm run bench)

'xenring <command> --help' describes each. Exit status: 0 success, 1 the
operation failed (refused, reset, cannot listen), 2 bad usage.`;

type Command = (argv: string[], exit: (code: number) => void) => void;
/*
 * Each command's module is loaded when that command runs: a one-shot
 * `xenring cat` does not load the benchmark's or status's code, `--help`
 * not even the library (a command's start-up is most of a short run's time).
 */
/* eslint-disable @typescript-eslint/no-var-requires */
const COMMANDS: Record<string, () => Command> = {
  proxy: () => (require('./proxy') as typeof ProxyModule).proxy,
  cat: () => (require('./cat') as typeof CatModule).cat,
  listen: () => (require('./cat') as typeof CatModule).listen,
  status: () => (require('./status') as typeof StatusModule).status,
  bench: () => (require('./bench') as typeof BenchModule).bench,
};
/* eslint-enable @typescript-eslint/no-var-requires */

/** Runs the command line `argv` (without node and the script). */
export function main(argv: string[], exit: (code: number) => void = defaultExit): void {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    // Asked for: on stdout. Without a command it is a usage error: on stderr.
    (name === undefined ? process.stderr : process.stdout).write(MAIN_HELP + '\n');
    return exit(name === undefined ? EXIT_USAGE : EXIT_OK);
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${require('../../package.json').version}\n`);
    return exit(EXIT_OK);
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name]() : undefined;
  try {
    if (!command) throw new UsageError(`unknown command '${name}'`);
    command(rest, exit);
  } catch (err) {
    if (err instanceof UsageError) {
      const known = Object.hasOwn(COMMANDS, name);
      process.stderr.write(`xenring${known ? ' ' + name : ''}: ${err.message} (see 'xenring ${known ? name + ' ' : ''}--help')\n`);
      return exit(EXIT_USAGE);
    }
    process.stderr.write(`xenring ${name}: ${describeError(err)}\n`);
    exit(EXIT_FAILURE);
  }
}

function defaultExit(code: number): void {
  process.exit(code);
}

/** Anything thrown later, from a callback, still ends in one line and exit 1 (not a stack trace). */
export function installLastResort(argv: string[] = process.argv.slice(2)): void {
  // Named as the command's own errors are (`xenring cat: write EPIPE` when stdout closed early).
  const who = Object.hasOwn(COMMANDS, argv[0] ?? '') ? `xenring ${argv[0]}` : 'xenring';
  process.on('uncaughtException', (err) => {
    process.stderr.write(`${who}: ${describeError(err)}\n`);
    process.exit(EXIT_FAILURE);
  });
}
