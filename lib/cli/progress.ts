/**
 * `--progress`: throughput on stderr once a second (stdout stays the data),
 * and a total when the command ends.
 * @internal
 */

const MiB = 1024 * 1024;

function size(bytes: number): string {
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** Counts bytes each way; reports rates while running if enabled. */
export class Meter {
  /** Bytes forwarded towards the connect side / written to the peer. */
  out = 0;
  /** Bytes forwarded back / received from the peer. */
  in = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly started = process.hrtime.bigint();
  private lastOut = 0;
  private lastIn = 0;

  constructor(
    private readonly label: string,
    private readonly enabled: boolean,
    private readonly extra: () => string = () => '',
  ) {
    if (!enabled) return;
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  private tick(): void {
    const dOut = this.out - this.lastOut;
    const dIn = this.in - this.lastIn;
    this.lastOut = this.out;
    this.lastIn = this.in;
    process.stderr.write(`${this.label}: ${this.extra()}out ${size(dOut)}/s, in ${size(dIn)}/s (total out ${size(this.out)}, in ${size(this.in)})\n`);
  }

  /** Stops the ticker and prints the totals and mean rates. */
  stop(): void {
    if (!this.enabled) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const seconds = Math.max(1e-9, Number(process.hrtime.bigint() - this.started) / 1e9);
    process.stderr.write(
      `${this.label}: done in ${seconds.toFixed(2)} s: out ${size(this.out)} (${size(this.out / seconds)}/s), in ${size(this.in)} (${size(this.in / seconds)}/s)\n`,
    );
  }
}
