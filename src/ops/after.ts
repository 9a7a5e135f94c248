/**
 * What happens after each session and after the run: the on_success / on_failure hook, and the
 * metrics file. Neither may fail the run: problems are logged, the exit code stays the run's.
 */
import type { Config } from '../config/types.js';
import { errorText } from '../errors.js';
import type { CallResult } from '../poll/call.js';
import type { RunSummary } from '../poll/run.js';
import type { State } from '../poll/state.js';
import type { Logger } from './logger.js';

export async function afterSession(r: CallResult, config: Config, log: Logger): Promise<void> {
  if (r.status === 'skipped' || !(r.status === 'ok' ? r.hub.onSuccess : r.hub.onFailure)) return;
  try {
    const { runSessionHook } = await import('./hooks.js');
    await runSessionHook(r, config, log);
  } catch (err) {
    log.warn(`${r.hub.name}: hook: ${errorText(err)}`);
  }
}

/**
 * The `on_run_end` hook (after a run with sessions), then the metrics file: written at the end of
 * every run when metrics_file is set, also when nothing was due.
 */
export async function afterRun(s: RunSummary, state: State, config: Config, log: Logger, now: () => number = Date.now): Promise<void> {
  if (config.poller.onRunEnd && s.ok + s.failed > 0) {
    try {
      const { runRunEndHook } = await import('./hooks.js');
      await runRunEndHook(s, config, log);
    } catch (err) {
      log.warn(`on_run_end hook: ${errorText(err)}`);
    }
  }
  const file = config.poller.metricsFile;
  if (!file) return;
  try {
    const { renderMetrics, writeMetricsFile } = await import('./metrics.js');
    await writeMetricsFile(file, renderMetrics(state, s, config, now()));
    log.debug(`metrics written to ${file}`);
  } catch (err) {
    log.error(errorText(err));
  }
}
