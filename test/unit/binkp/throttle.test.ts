import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { Throttle, TokenBucket, type Clock } from '../../../src/binkp/throttle.js';

/** A clock whose sleep() moves fake time forward at once (no real waiting). */
class InstantClock implements Clock {
  t = 0;
  readonly sleeps: number[] = [];
  now = (): number => this.t;
  sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.t += ms;
    return Promise.resolve();
  };
}

/**
 * A clock with a timer queue, for concurrent sleepers: sleeps overlap as real timers do. run()
 * lets pending promise callbacks settle, then jumps to the earliest timer, until `work` is done.
 */
class ScheduledClock implements Clock {
  t = 0;
  private timers: { at: number; seq: number; wake: () => void }[] = [];
  private seq = 0;
  now = (): number => this.t;
  sleep = (ms: number): Promise<void> =>
    new Promise((wake) => this.timers.push({ at: this.t + ms, seq: this.seq++, wake }));

  async run(work: Promise<unknown>): Promise<void> {
    let done = false;
    const watched = work.then(() => (done = true));
    for (;;) {
      await nextMacrotask(); // every microtask queued so far has run
      if (done) break;
      assert.ok(this.timers.length > 0, 'nothing to wake: the work is stuck');
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const timer = this.timers.shift()!;
      this.t = Math.max(this.t, timer.at);
      timer.wake();
    }
    await watched;
  }
}

/** Fake milliseconds spent to take `sizes` one after another. */
async function elapsed(clock: InstantClock, take: (n: number) => Promise<void>, sizes: number[]): Promise<number> {
  const start = clock.now();
  for (const n of sizes) await take(n);
  return clock.now() - start;
}

describe('TokenBucket', () => {
  test('N bytes at R bytes/s take N/R seconds of fake time (bucket starts empty)', async () => {
    const clock = new InstantClock();
    const bucket = new TokenBucket(1000, 65536, clock);
    const ms = await elapsed(clock, (n) => bucket.take(n), Array(10).fill(500));
    assert.equal(ms, 5000);
  });

  test('a rate that does not divide evenly rounds each wait up by under 1 ms', async () => {
    const clock = new InstantClock();
    const bucket = new TokenBucket(3000, 65536, clock);
    const ms = await elapsed(clock, (n) => bucket.take(n), Array(7).fill(1000));
    assert.ok(ms >= 7000 / 3 && ms <= 7000 / 3 + 7, `took ${ms} ms`);
  });

  test('idle time fills the bucket up to the burst size, and no further', async () => {
    const clock = new InstantClock();
    const bucket = new TokenBucket(1000, 4000, clock);
    clock.t += 10_000; // idle for 10 s: 10000 tokens earned, 4000 kept
    assert.equal(await elapsed(clock, (n) => bucket.take(n), [4000]), 0);
    assert.equal(await elapsed(clock, (n) => bucket.take(n), [1000]), 1000);
  });

  test('a take larger than the burst goes out once the bucket is full and is paid back after', async () => {
    const clock = new InstantClock();
    const bucket = new TokenBucket(1000, 1000, clock);
    assert.equal(await elapsed(clock, (n) => bucket.take(n), [5000]), 1000);
    // The 4000-byte debt delays the next take: 6000 bytes in 6 s overall.
    assert.equal(await elapsed(clock, (n) => bucket.take(n), [1000]), 5000);
  });

  test('the default burst is a quarter second of rate, at least 64 KiB', async () => {
    const clock = new InstantClock();
    const bucket = new TokenBucket(1_000_000, undefined, clock);
    clock.t += 60_000;
    assert.equal(await elapsed(clock, (n) => bucket.take(n), [250_000]), 0);
    assert.ok((await elapsed(clock, (n) => bucket.take(n), [1000])) >= 1);
  });

  test('concurrent takers are served in the order they asked', async () => {
    const clock = new InstantClock();
    const bucket = new TokenBucket(1000, 65536, clock);
    const served: [string, number][] = [];
    const ask = (name: string, n: number): Promise<void> =>
      bucket.take(n).then(() => {
        served.push([name, clock.now()]);
      });
    await Promise.all([ask('a', 3000), ask('b', 10), ask('c', 500), ask('d', 0)]);
    assert.deepEqual(served, [
      ['a', 3000],
      ['b', 3010],
      ['c', 3510],
      ['d', 3510],
    ]);
  });

  test('a failing sleep rejects that take only; later takers are still served', async () => {
    const clock = new InstantClock();
    let fail = true;
    const flaky: Clock = {
      now: clock.now,
      sleep: (ms) => {
        if (!fail) return clock.sleep(ms);
        fail = false;
        return Promise.reject(new Error('aborted'));
      },
    };
    const bucket = new TokenBucket(1000, 65536, flaky);
    const first = bucket.take(100);
    const second = bucket.take(100);
    await assert.rejects(first, /aborted/);
    await second;
    // The failed wait spent no time; the second taker waited its own 100 ms.
    assert.equal(clock.now(), 100);
  });
});

describe('Throttle', () => {
  test('active only with buckets; with none, take resolves at once', async () => {
    const clock = new InstantClock();
    assert.equal(new Throttle([]).active, false);
    assert.equal(new Throttle([new TokenBucket(1, 1, clock)]).active, true);
    await new Throttle([]).take(1_000_000);
    assert.equal(clock.now(), 0);
  });

  test('chained buckets: the slower one sets the pace, in either order', async () => {
    for (const order of ['fast-first', 'slow-first']) {
      const clock = new InstantClock();
      const fast = new TokenBucket(1000, 65536, clock);
      const slow = new TokenBucket(250, 65536, clock);
      const throttle = new Throttle(order === 'fast-first' ? [fast, slow] : [slow, fast]);
      const ms = await elapsed(clock, (n) => throttle.take(n), Array(4).fill(1000));
      assert.ok(ms >= 16_000 && ms <= 16_004, `${order}: 4000 bytes at 250 B/s took ${ms} ms`);
    }
  });

  test('a shared global bucket limits two concurrent sessions together', async () => {
    const clock = new ScheduledClock();
    const global = new TokenBucket(1000, 65536, clock);
    const session = async (): Promise<void> => {
      const throttle = new Throttle([global, new TokenBucket(100_000, 65536, clock)]);
      for (let i = 0; i < 4; i++) await throttle.take(1000);
    };
    await clock.run(Promise.all([session(), session()]));
    // 8000 bytes through 1000 B/s: 8 s (plus the hub buckets' last 10 ms wait).
    assert.ok(clock.now() >= 8000 && clock.now() <= 8020, `took ${clock.now()} ms`);
  });
});
