/**
 * Happy eyeballs (RFC 8305): connection attempts to a host's addresses, started one after another
 * `connect_attempt_delay` apart (or at once when the previous one failed), all left running until
 * one connects. Unlike Node's `autoSelectFamily`, an attempt is never abandoned because the delay
 * passed: a far-away hub whose handshake takes longer than the delay still gets through
 * (nodejs/node#52216, FTN-NOTES §9). Pure apart from the `connect` and timer functions passed in.
 */
import type { IpAddress } from './dns.js';
import { realTimers, type Timers } from '../binkp/connect.js';

/** One attempt in flight: resolves with the connection, rejects when it fails. */
export interface Attempt<T> {
  done: Promise<T>;
  /** Give up on it (another attempt won, or the whole race is over). */
  cancel(): void;
}

export interface RaceOptions<T> {
  addresses: IpAddress[];
  /** RFC 8305 §5 "Connection Attempt Delay". */
  delay: number;
  connect(address: IpAddress): Attempt<T>;
  /** The connection's timers (connect.ts), so tests drive the delay on a manual clock. */
  timers?: Timers;
  /** Told when an attempt starts (for the debug log). */
  onAttempt?(address: IpAddress): void;
}

/** Every attempt failed; `errors` in the order the attempts were made. */
export class RaceError extends Error {
  override name = 'RaceError';
  constructor(readonly errors: { address: IpAddress; error: unknown }[]) {
    super(errors.map((e) => `${e.address.address}: ${(e.error as Error)?.message ?? String(e.error)}`).join('; ') || 'no addresses');
  }
}

/**
 * RFC 8305 §4: alternate the families, starting with the first one the resolver gave (IPv6 when
 * it has both, as getaddrinfo orders them by RFC 6724).
 */
export function interleave(addresses: IpAddress[]): IpAddress[] {
  if (addresses.length === 0) return [];
  const first = addresses[0]!.family;
  const a = addresses.filter((x) => x.family === first);
  const b = addresses.filter((x) => x.family !== first);
  const out: IpAddress[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i]!);
    if (i < b.length) out.push(b[i]!);
  }
  return out;
}

/**
 * Race the addresses. Resolves with the first connection and the address that gave it; the other
 * attempts are cancelled. Rejects with a RaceError when every attempt failed. `cancelAll` (the
 * returned `abort`) ends the race from outside, e.g. on connect_timeout.
 */
export function race<T>(opts: RaceOptions<T>): { result: Promise<{ value: T; address: IpAddress }>; abort: (reason: Error) => void } {
  const timers = opts.timers ?? realTimers;
  const queue = interleave(opts.addresses);
  const running = new Map<IpAddress, Attempt<T>>();
  const errors: { address: IpAddress; error: unknown }[] = [];
  let cancelTimer: (() => void) | undefined;
  let settled = false;
  let resolveRace!: (v: { value: T; address: IpAddress }) => void;
  let rejectRace!: (e: Error) => void;
  const result = new Promise<{ value: T; address: IpAddress }>((res, rej) => {
    resolveRace = res;
    rejectRace = rej;
  });

  const finish = (): void => {
    settled = true;
    cancelTimer?.();
    for (const a of running.values()) a.cancel();
    running.clear();
  };

  const startNext = (): void => {
    cancelTimer?.();
    cancelTimer = undefined;
    const address = queue.shift();
    if (!address) {
      if (running.size === 0 && !settled) {
        finish();
        rejectRace(new RaceError(errors));
      }
      return;
    }
    opts.onAttempt?.(address);
    const attempt = opts.connect(address);
    running.set(address, attempt);
    attempt.done.then(
      (value) => {
        running.delete(address);
        if (settled) {
          // Lost the race by a hair: not needed.
          (value as { destroy?: () => void })?.destroy?.();
          return;
        }
        finish();
        resolveRace({ value, address });
      },
      (error: unknown) => {
        running.delete(address);
        if (settled) return;
        errors.push({ address, error });
        // RFC 8305 §5: a failed attempt starts the next one at once.
        startNext();
      },
    );
    if (queue.length) cancelTimer = timers.set(opts.delay, startNext);
  };

  startNext();
  return {
    result,
    abort: (reason) => {
      if (settled) return;
      finish();
      rejectRace(reason);
    },
  };
}
