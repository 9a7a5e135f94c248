/**
 * A manual clock for timer logic: `now()` and `set()` (the Timers interface of
 * src/binkp/connect.ts) move only when a test calls `advance()`. No real sleeps.
 */
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { Timers } from '../../src/binkp/connect.js';
import type { Clock } from '../../src/binkp/throttle.js';

export class ManualClock implements Timers, Clock {
  t: number;
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  readonly now = (): number => this.t;

  set(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  /** The Clock of src/binkp/throttle.ts: resolves when the clock passes `ms` from now. */
  readonly sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => this.set(ms, resolve));

  /** Armed timers, soonest first, as ms from now. */
  get pending(): number[] {
    return this.timers.map((x) => x.at - this.t).sort((a, b) => a - b);
  }

  /** Move time forward by `ms`, firing due timers in order (and letting their effects settle). */
  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      await nextMacrotask();
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = until;
    await nextMacrotask();
  }
}

/** Resolve once `cond()` holds: waits for events (I/O), not for time to pass. */
export async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 4000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`gave up waiting for ${what}`);
}
