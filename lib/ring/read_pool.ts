/**
 * Receive buffers carved from large slabs, so a read costs a subarray instead
 * of an allocation (and its fresh-page faults) per chunk. A slab is dropped
 * once full; the chunks handed out keep it alive as long as the user does.
 * @internal
 */
export class ReadPool {
  private slab: Buffer;
  private used = 0;

  constructor(private readonly slabSize: number) {
    this.slab = Buffer.allocUnsafeSlow(slabSize);
  }

  /** Room for up to `want` bytes (at least 1): fill it, then call take(n). */
  space(want: number): { buffer: Buffer; offset: number; length: number } {
    if (this.slabSize - this.used < Math.min(want, 64 * 1024) || this.used === this.slabSize) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(this.slabSize, want));
      this.used = 0;
    }
    return { buffer: this.slab, offset: this.used, length: Math.min(want, this.slab.length - this.used) };
  }

  /** Hands out the `n` bytes just filled. Keeps 8-byte alignment for the next chunk. */
  take(n: number): Buffer {
    const chunk = this.slab.subarray(this.used, this.used + n);
    this.used = Math.min(this.slab.length, (this.used + n + 7) & ~7);
    return chunk;
  }
}
