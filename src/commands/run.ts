import type { GlobalFlags, Io } from './io.js';
import type { Config, HubConfig } from '../config/types.js';
import { loadConfig, resolveConfigPath, resolveHubs } from '../config/load.js';
import { ExitCode } from '../errors.js';
import { lstatSync, readdirSync } from 'node:fs';
import { formatAddress } from '../ftn/address.js';
import { loadConfigFor, prepareDirs } from './common.js';

/**
 * `fnpoll run [hub...]` (cron) and `fnpoll now [hub...]` (forced): the whole invocation.
 * Exit: 0 ok or nothing due, 1 a session failed, 75 locked, 78 config, 130/143 signals.
 */
export async function commandRun(selectors: string[], flags: GlobalFlags, io: Io, force = false): Promise<number> {
  const config = await loadConfigFor(flags, io, { showWarnings: !!(force || flags.verbose || flags.debug) });
  const hubs = resolveHubs(config, selectors);
  if (flags.dryRun) return commandDryRun(config, hubs, force, flags, io);
  if (!force && !config.poller.metricsFile && !flags.verbose && !flags.debug) {
    // The common cron case: nothing is due. Decide that from a read-only look and stop, before the
    // lock, the log file and the protocol stack cost anything.
    const { planReadOnly } = await import('../poll/inputs.js');
    const { plan, capped } = await planReadOnly(config, hubs, Date.now(), { warn: () => undefined });
    // While another run holds the lock, go on to it and report that run (exit 75 naming its pid):
    // otherwise the answer would depend on whether it had created its .csy yet (a hub it is
    // calling looks busy, so not due). It takes the lock before any flag, so checking after the
    // plan cannot miss it.
    // Times from the future (a clock that went back) must be capped in the file, not only in this
    // look: capped again against each later "now", a hub would never become due.
    // What a killed run left (delivered files to remove, temp files) is tidied by a full run.
    if (!plan.some((p) => p.due) && capped === 0 && !lockExists(config.poller.lockFile) && !killedRunLeftovers(config.poller.stateFile)) {
      return ExitCode.OK;
    }
  }
  await prepareDirs(config);
  const { createLogger } = await import('../ops/setup.js');
  const log = await createLogger(config, flags, force);
  // Live progress bars: `now` on a terminal only; never in cron, pipes, --quiet or --json.
  let progress: import('../ops/progress.js').ProgressDisplay | undefined;
  if (force && process.stderr.isTTY) {
    const { ProgressDisplay, progressWanted } = await import('../ops/progress.js');
    if (progressWanted(process.stderr, { quiet: !!flags.quiet, json: !!flags.json, interactive: true })) {
      progress = new ProgressDisplay({ stream: process.stderr });
      progress.start();
    }
  }
  try {
    const { executeRun } = await import('../poll/run.js');
    const { afterRun, afterSession } = await import('../ops/after.js');
    const summary = await executeRun({
      config,
      log,
      hubs,
      force,
      handleSignals: true,
      reloadConfig: () => loadConfig(resolveConfigPath(flags.config)),
      afterSession: (r, c) => afterSession(r, c, log),
      onSessionStart: progress?.sessionStarted,
      onSessionEnd: progress?.sessionEnded,
      afterRun: (s, state, c) => afterRun(s, state, c, log),
    });
    if (force && summary.due === 0) log.warn('no hub could be called (all busy)');
    return summary.exitCode;
  } finally {
    progress?.stop();
    await log.close();
  }
}

/** `--dry-run`: what would be polled and why. No lock, no flags, no state write, no network. */
export async function commandDryRun(config: Config, hubs: HubConfig[], force: boolean, flags: GlobalFlags, io: Io): Promise<number> {
  const { planReadOnly } = await import('../poll/inputs.js');
  const { plan } = await planReadOnly(config, hubs, Date.now(), { force, warn: (m) => io.err(`fnpoll: warning: ${m}\n`) });
  if (flags.json) {
    io.out(`${JSON.stringify({ hubs: plan.map((p) => ({ name: p.hub.name, address: formatAddress(p.hub.address), due: p.due, code: p.code, reason: p.reason })) }, null, 2)}\n`);
    return ExitCode.OK;
  }
  const due = plan.filter((p) => p.due);
  const width = Math.max(4, ...plan.map((p) => p.hub.name.length));
  for (const p of plan) {
    io.out(`${p.due ? 'poll' : 'skip'}  ${p.hub.name.padEnd(width)}  ${formatAddress(p.hub.address).padEnd(22)}  ${p.reason}\n`);
  }
  io.out(`dry run: ${due.length} of ${plan.length} hub${plan.length === 1 ? '' : 's'} would be polled${due.length > config.poller.maxConnections ? ` (${config.poller.maxConnections} at a time)` : ''}; nothing was changed\n`);
  return ExitCode.OK;
}

/**
 * Whether the run lock is there (a run holds it, or a killed one left it). Synchronous, as the rest
 * of the idle path: an idle run then never starts libuv's thread pool, whose 32 threads
 * (src/boot.cts) cost ~5 ms of a ~45 ms idle run on the development VM. Anything but "not there"
 * counts as there: the full run that follows says what is wrong.
 */
function lockExists(lockFile: string): boolean {
  try {
    return lstatSync(lockFile, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return true;
  }
}

/**
 * Did a killed run leave its delivered-file journal or a state temp file beside the state file
 * (src/poll/recovery.ts)? One readdir: cheap enough for the idle path.
 */
function killedRunLeftovers(stateFile: string): boolean {
  const slash = stateFile.lastIndexOf('/');
  const dir = slash > 0 ? stateFile.slice(0, slash) : '/';
  const base = stateFile.slice(slash + 1);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return false;
  }
  return names.some((n) => n.startsWith(`${base}.`) && /^(?:delivered\.)?\d+$/.test(n.slice(base.length + 1)));
}
