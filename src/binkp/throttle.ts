/**
 * Token-bucket bandwidth limiter. A global bucket is shared by every session of a run; a hub may
 * add its own. `take(n)` resolves when n bytes may go out. Clock and timer are injectable.
 */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export class TokenBucket {
  private tokens: number;
  private last: number;
  /** Serialises waiters so bytes leave in order and the rate holds across sessions. */
  private chain: Promise<void> = Promise.resolve();

  /** @param rate bytes per second (> 0); @param burst bucket size in bytes */
  constructor(
    readonly rate: number,
    private readonly burst = Math.max(rate / 4, 65536),
    private readonly clock: Clock = realClock,
  ) {
    this.tokens = 0;
    this.last = clock.now();
  }

  take(n: number): Promise<void> {
    const next = this.chain.then(() => this.consume(n));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async consume(n: number): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
      this.last = now;
      if (this.tokens >= n || (this.tokens >= this.burst && n > this.burst)) {
        this.tokens -= n;
        return;
      }
      const need = Math.min(n, this.burst) - this.tokens;
      await this.clock.sleep(Math.max(1, Math.ceil((need * 1000) / this.rate)));
    }
  }
}

/** Several buckets in series (global, then per hub). */
export class Throttle {
  constructor(private readonly buckets: TokenBucket[]) {}
  get active(): boolean {
    return this.buckets.length > 0;
  }
  async take(n: number): Promise<void> {
    for (const b of this.buckets) await b.take(n);
  }
}
