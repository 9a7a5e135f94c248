/** Reading the state without side effects, for `--dry-run`, `status`, `stats` and `health`. */
import { createRequire } from 'node:module';
import { emptyState, parseState, type State } from './state.js';
import { errorText } from '../errors.js';
import type { Config, HubConfig } from '../config/types.js';
import type { QueueSummary } from '../bso/types.js';
import { gatherInputs } from './inputs.js';
import { planRun, type PlanEntry } from './schedule.js';

// Synchronous reads through require(): the idle cron path reads two small files and should not pay
// a thread-pool round trip, nor the ES namespace of node:fs, for each.
const { readFileSync } = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');

/**
 * Like loadState, but a corrupt file is only reported, never moved aside: these commands touch
 * nothing. The next real run quarantines it.
 */
export async function loadStateReadOnly(path: string, warn: (m: string) => void): Promise<State> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    warn(`state file ${path} is unreadable (${errorText(err)}); showing empty state`);
    return emptyState();
  }
  try {
    return parseState(text);
  } catch (err) {
    warn(`state file ${path} is invalid (${errorText(err)}); showing empty state (the next run moves it aside)`);
    return emptyState();
  }
}

/**
 * The plan as it stands, read-only: for `--dry-run`, `status`, and the idle fast path of `run`
 * (nothing due → no lock, no writes, no protocol code loaded).
 */
export async function planReadOnly(
  config: Config,
  hubs: readonly HubConfig[],
  now: number,
  opts: { force?: boolean | undefined; warn: (m: string) => void },
): Promise<{ state: State; plan: PlanEntry[]; queued: Map<string, QueueSummary> }> {
  const state = await loadStateReadOnly(config.poller.stateFile, opts.warn);
  const inputs = await gatherInputs(config, hubs, now, { force: opts.force, readOnly: true });
  const plan = planRun({ config: { hubs: [...hubs] }, state, queued: inputs.queued, busy: inputs.busy, now, force: opts.force });
  return { state, plan, queued: inputs.queued };
}
