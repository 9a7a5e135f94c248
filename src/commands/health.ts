import type { GlobalFlags, Io } from './io.js';
import { ConfigError, errorText } from '../errors.js';
import { HealthStatus, evaluateHealth, unknownLine, type HealthCode } from '../ops/health.js';

/**
 * `fnpoll health`: one monitoring-plugin line on stdout and exit 0/1/2/3 (src/ops/health.ts).
 * Read-only: the state file and the run lock are only looked at.
 *
 * Every failure of the check itself — an invalid config included — is UNKNOWN (3), never 78 or
 * another sysexits code: a monitoring host reads any exit status above 3 as UNKNOWN at best and
 * would lose the reason, so the plugin conventions win over fnpoll's own exit codes here.
 */
export async function commandHealth(flags: GlobalFlags, io: Io, now: () => number = Date.now): Promise<HealthCode> {
  try {
    const { loadConfig, resolveConfigPath } = await import('../config/load.js');
    const { loadStateReadOnly } = await import('../poll/inputs.js');
    const { readLockInfo } = await import('../poll/lock.js');
    const config = await loadConfig(resolveConfigPath(flags.config));
    const problems: string[] = [];
    const state = await loadStateReadOnly(config.poller.stateFile, (m) => problems.push(m));
    const { capFutureTimes, largestPeriod } = await import('../poll/state.js');
    const t = now();
    const stateProblems = new Map<string, string>();
    for (const c of capFutureTimes(state, t, largestPeriod(config.hubs))) {
      if (!stateProblems.has(c.hub)) stateProblems.set(c.hub, `${c.field} ${new Date(c.was).toISOString()} lies in the future (clock or state file wrong)`);
    }
    const lock = await readLockInfo(config.poller.lockFile, { now });
    const { hubHeld } = await import('../poll/hubfiles.js');
    const holds = new Map<string, number>();
    for (const hub of config.hubs) {
      const until = await hubHeld(config, hub, t, undefined, true);
      if (until !== undefined) holds.set(hub.key, until * 1000);
    }
    const report = evaluateHealth({ config, state, lock, now: t, holds, inputProblems: problems, stateProblems });
    io.out(`${report.line}\n`);
    return report.status;
  } catch (err) {
    const text = err instanceof ConfigError ? err.problems.join('; ') : errorText(err);
    io.out(`${unknownLine(text)}\n`);
    if (flags.debug && err instanceof Error && err.stack) io.err(`${err.stack}\n`);
    return HealthStatus.UNKNOWN;
  }
}
