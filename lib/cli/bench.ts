/**
 * `xenring bench [options]`: runs the project's benchmark (bench/run.js, the
 * same tables as `npm run bench`) with the given options.
 * @internal
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT_FAILURE } from './options';

/** bench/ sits beside dist/ in the package. */
export const BENCH_SCRIPT = path.join(__dirname, '..', '..', 'bench', 'run.js');

export function bench(argv: string[], exit: (code: number) => void): void {
  if (!fs.existsSync(BENCH_SCRIPT)) {
    process.stderr.write(`xenring bench: ${BENCH_SCRIPT} not found (this installation has no bench/)\n`);
    return exit(EXIT_FAILURE);
  }
  const help = argv.includes('--help') || argv.includes('-h');
  if (help) {
    process.stdout.write('Usage: xenring bench [options]   (the same as: npm run bench -- [options])\n\n');
    // The options are documented in bench/run.js's header comment.
    const header = /\/\*([\s\S]*?)\*\//.exec(fs.readFileSync(BENCH_SCRIPT, 'utf8'));
    process.stdout.write((header ? header[1].replace(/^ \* ?/gm, '') : '') + '\n');
    process.stdout.write('Exit status: the benchmark\'s (0 when every case ran and every byte checked out).\n');
    return exit(0);
  }
  const child = spawn(process.execPath, [BENCH_SCRIPT, ...argv], { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('error', (err) => {
    process.stderr.write(`xenring bench: ${err.message}\n`);
    exit(EXIT_FAILURE);
  });
  child.on('exit', (code, signal) => exit(code ?? 128 + (signal === 'SIGINT' ? 2 : 15)));
}
