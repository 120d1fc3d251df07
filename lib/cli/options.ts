/**
 * Command-line option parsing for the `xenring` command, and the errors and
 * exit codes every subcommand shares.
 * @internal
 */

/** Exit codes: 0 success, 1 the operation failed (refused, reset, ...), 2 bad usage. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A mistake in the command line: printed as one line plus a hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OptionSpec {
  /** 'flag' takes no value; 'value' takes the next argument (or `--name=value`). */
  [name: string]: 'flag' | 'value';
}

export interface ParsedArgs {
  options: Record<string, string | true | undefined>;
  positionals: string[];
}

/** Parses `--name value`, `--name=value`, `--flag` and `-h`; `--` ends the options. */
export function parseArgs(argv: string[], spec: OptionSpec, maxPositionals: number): ParsedArgs {
  const options: ParsedArgs['options'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h') {
      options.help = true;
      continue;
    }
    const m = /^--([a-z][a-z-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option '${arg}'`);
      positionals.push(arg);
      continue;
    }
    const [, name, inline] = m;
    const kind = name === 'help' ? 'flag' : spec[name];
    if (!kind) throw new UsageError(`unknown option '--${name}'`);
    if (kind === 'flag') {
      if (inline !== undefined) throw new UsageError(`option '--${name}' takes no value`);
      options[name] = true;
    } else {
      const value = inline ?? argv[++i];
      if (value === undefined || value === '') throw new UsageError(`option '--${name}' needs a value`);
      options[name] = value;
    }
  }
  if (!options.help && positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument '${positionals[maxPositionals]}'`);
  }
  return { options, positionals };
}

/** One line for an error: its code when it has one, then its message (without repeating the code). */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  const first = err.message.split('\n')[0];
  return code && !first.includes(code) ? `${first} (${code})` : first;
}
