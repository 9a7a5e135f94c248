import type { GlobalFlags, Io } from './io.js';
import { commandRun } from './run.js';

/**
 * `fnpoll now [hub...]`: poll immediately, bypassing schedule, backoff and holds, but never the
 * run lock or busy flags. Results are recorded in the state like a run's.
 */
export function commandNow(selectors: string[], flags: GlobalFlags, io: Io): Promise<number> {
  return commandRun(selectors, flags, io, true);
}
