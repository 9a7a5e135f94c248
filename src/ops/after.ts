/** What happens after each session and after the run: hooks, metrics. */
import type { Config } from '../config/types.js';
import type { CallResult } from '../poll/call.js';
import type { RunSummary } from '../poll/run.js';
import type { State } from '../poll/state.js';
import type { Logger } from './logger.js';

export async function afterSession(_r: CallResult, _config: Config, _log: Logger): Promise<void> {}

export async function afterRun(_s: RunSummary, _state: State, _config: Config, _log: Logger): Promise<void> {}
