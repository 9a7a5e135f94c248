/**
 * One invocation of `fnpoll run` (or `now`): lock → state → plan → sessions → state saved after
 * each session → exit code. Signals: TERM/INT drain then end sessions, HUP re-reads the config,
 * USR1 logs a statistics snapshot, USR2 toggles debug logging.
 */
import pLimit from 'p-limit';
import type { Config, HubConfig } from '../config/types.js';
import { ExitCode, errorText, FnpollError } from '../errors.js';
import { formatAddress } from '../ftn/address.js';
import { FlagKeeper, writeHold, writeTry, removeHold } from '../bso/flags.js';
import { nodeBase } from '../bso/outbound.js';
import { Inbound } from '../bso/inbound.js';
import { TokenBucket } from '../binkp/throttle.js';
import type { CallerSession } from '../binkp/session.js';
import { ConsoleSink, levelEnabled, type Logger } from '../ops/logger.js';
import { acquireRunLock, type RunLock } from './lock.js';
import { DeliveredJournal, recoverAfterKill } from './recovery.js';
import { capFutureTimes, cappedText, largestPeriod, loadState, saveState, type State } from './state.js';
import { applyOutcome, contactChanged, type SessionOutcome } from './backoff.js';
import { planRun, type PlanEntry } from './schedule.js';
import { gatherInputs } from './inputs.js';
import { callHub, hubLayout, resultText, type CallResult } from './call.js';
import { count, formatBytes, formatDuration, formatLocalTime, formatRate, formatSeconds, formatTime } from '../format.js';
import { randomBytes } from 'node:crypto';

export interface RunOptions {
  config: Config;
  log: Logger;
  /** Hubs to consider (default all). */
  hubs?: HubConfig[];
  /** `fnpoll now`: bypass schedule, backoff and holds (never busy flags). */
  force?: boolean;
  /** Re-reads the config for SIGHUP; undefined = SIGHUP only logs. */
  reloadConfig?: () => Promise<Config>;
  /** Install signal handlers (the CLI does; tests driving runs in-process may not). */
  handleSignals?: boolean;
  now?: () => number;
  random?: () => number;
  /** Hooks and metrics after the run, given the results (issue: operations). */
  afterSession?: (r: CallResult, config: Config) => Promise<void>;
  afterRun?: (summary: RunSummary, state: State, config: Config) => Promise<void>;
  /** A session started / a hub's call ended (progress bars for `fnpoll now`). */
  onSessionStart?: (hub: HubConfig, session: CallerSession) => void;
  onSessionEnd?: (hub: HubConfig) => void;
}

export interface RunSummary {
  runId?: string;
  startedAt: number;
  durationMs: number;
  considered: number;
  due: number;
  polled: number;
  ok: number;
  failed: number;
  skipped: number;
  bytesSent: number;
  bytesReceived: number;
  filesSent: number;
  filesReceived: number;
  exitCode: number;
  interrupted?: 'SIGTERM' | 'SIGINT' | 'run_timeout' | undefined;
  plan: PlanEntry[];
  results: CallResult[];
}

function outcomeOf(r: CallResult): SessionOutcome {
  const s = r.session?.stats;
  const stats = {
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    filesSent: s?.filesSent ?? 0,
    filesReceived: s?.filesReceived ?? 0,
    bytesSent: s?.bytesSent ?? 0,
    bytesReceived: s?.bytesReceived ?? 0,
    extensions: r.session?.extensions,
  };
  if (r.status === 'ok') return { ok: true, stats };
  return { ok: false, kind: r.kind ?? 'protocol', message: r.message, remote: r.remote, stats };
}

/** Runs one invocation; resolves with the summary (its exitCode is the process's). */
export async function executeRun(opts: RunOptions): Promise<RunSummary> {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  let config = opts.config;
  const log = opts.log;
  const startedAt = now();

  const lock: RunLock = await acquireRunLock(config.poller.lockFile, {
    onCompromised: (m) => log.warn(`run lock: ${m}`),
  });
  const keeper = new FlagKeeper({ staleAge: config.poller.staleFlagAge, warn: (m) => log.warn(m) });
  const journal = new DeliveredJournal(config.poller.stateFile);
  const running = new Map<string, { hub: HubConfig; session?: CallerSession; startedAt: number }>();
  let stopping: RunSummary['interrupted'];
  let signalsSeen = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  const removers: (() => void)[] = [];

  const abortAll = (reason: string): void => {
    for (const r of running.values()) r.session?.abort(reason);
  };
  const stop = (why: NonNullable<RunSummary['interrupted']>): void => {
    signalsSeen++;
    if (signalsSeen > 1) {
      log.warn(`${why} again: ending every session now`);
      abortAll('Shutting down');
      return;
    }
    stopping = why;
    const grace = config.poller.shutdownGrace;
    log.warn(
      running.size
        ? `${why}: starting no new session; ${running.size} running session(s) get ${Math.round(grace / 1000)} s to finish`
        : `${why}: starting no new session`,
    );
    for (const r of running.values()) r.session?.drain();
    graceTimer = setTimeout(() => abortAll(`Shutting down (${why})`), grace);
    graceTimer.unref();
  };

  // Whatever ends the process (an uncaught error, process.exit elsewhere), no flag or lock of ours
  // outlives it; only SIGKILL can, and stale-flag and stale-lock takeover cover that.
  const onExit = (): void => {
    keeper.releaseAllSync();
    lock.releaseSync();
  };
  process.on('exit', onExit);
  removers.push(() => process.off('exit', onExit));

  if (opts.handleSignals) {
    const on = (sig: NodeJS.Signals, fn: () => void): void => {
      process.on(sig, fn);
      removers.push(() => process.off(sig, fn));
    };
    on('SIGTERM', () => stop('SIGTERM'));
    on('SIGINT', () => stop('SIGINT'));
    on('SIGHUP', () => {
      if (!opts.reloadConfig) return;
      opts.reloadConfig().then(
        (c) => {
          config = c;
          log.info(`SIGHUP: re-read ${c.file}; hubs not yet started use it`);
        },
        (err) => log.error(`SIGHUP: new config rejected, keeping the old one: ${err instanceof FnpollError ? err.message.split('\n').join('; ') : errorText(err)}`),
      );
    });
    on('SIGUSR1', () => {
      const lines = [...running.values()].map((r) => {
        const p = r.session?.progress;
        const secs = Math.max(1, (now() - r.startedAt) / 1000);
        if (!p) return `${r.hub.name}: connecting`;
        const rate = (p.bytesSent + p.bytesReceived) / secs;
        const cur = [p.sendingName && `sending ${p.sendingName}`, p.receivingName && `receiving ${p.receivingName} ${p.receivingOffset}/${p.receivingSize}`]
          .filter(Boolean)
          .join(', ');
        return `${r.hub.name}: ${Math.round(secs)} s, sent ${p.filesSent} files ${formatBytes(p.bytesSent)}, received ${p.filesReceived} files ${formatBytes(p.bytesReceived)}, ${formatRate(rate)}${cur ? `, ${cur}` : ''}`;
      });
      const head = `statistics: ${running.size} session(s) running, ${results.length} done`;
      log.log('info', 'stats', head, { running: running.size, done: results.length });
      for (const l of lines) log.log('info', 'stats', l);
      // To stderr as well, unless the console already showed the lines (a log file alone does not count).
      const consoleShows = log.sinkList.some((s) => s instanceof ConsoleSink && levelEnabled(s.level, 'info'));
      if (!consoleShows) process.stderr.write([head, ...lines].join('\n') + '\n');
    });
    on('SIGUSR2', () => {
      const wasDebug = log.sinkList.some((s) => s.level === 'debug');
      if (wasDebug) {
        for (const s of log.sinkList) s.level = (s as { baseLevel?: typeof s.level }).baseLevel ?? 'info';
      } else {
        for (const s of log.sinkList) {
          (s as { baseLevel?: typeof s.level }).baseLevel = s.level;
          s.level = 'debug';
        }
      }
      log.log('info', 'general', `SIGUSR2: debug logging ${wasDebug ? 'off' : 'on'}`);
    });
  }

  const results: CallResult[] = [];
  let state: State;
  let plan: PlanEntry[] = [];
  let saveChain: Promise<void> = Promise.resolve();
  let saveError: unknown;
  const save = (): Promise<void> => {
    saveChain = saveChain.then(() =>
      saveState(config.poller.stateFile, state, {
        knownHubs: config.hubs.map((h) => h.key),
        info: (m) => log.info(m),
      }).catch((err) => {
        saveError = err;
        log.error(errorText(err));
      }),
    );
    return saveChain;
  };

  try {
    await recoverAfterKill(config, keeper, { info: (m) => log.info(m), warn: (m) => log.warn(m) });
    state = await loadState(config.poller.stateFile, { now, warn: (m) => log.warn(m) });
    const capped = capFutureTimes(state, now(), largestPeriod(config.hubs));
    for (const c of capped) log.warn(cappedText(config.poller.stateFile, c));
    // Written at once: a run with nothing due would otherwise cap again next time, against a later
    // "now", and a hub whose last success lay in the future would never become due.
    if (capped.length) await save();
    const hubs = opts.hubs ?? config.hubs;
    const inputs = await gatherInputs(config, hubs, now(), { force: opts.force, warn: (m) => log.warn(m) });
    plan = planRun({ config: { hubs }, state, queued: inputs.queued, busy: inputs.busy, now: now(), force: opts.force });
    for (const p of plan) log.debug(`${p.hub.name}: ${p.due ? 'due' : 'not due'}: ${p.reason}`, { hub: p.hub.name, code: p.code });
    const due = plan.filter((p) => p.due);
    for (const p of plan) {
      // `now` was asked to call this hub: say who holds it, where the user sees it.
      if (!p.due && p.code === 'busy') log.log(opts.force ? 'warning' : 'info', 'general', `${p.hub.name}: skipped: ${p.reason}`);
    }

    if (due.length) {
      // Partials older than partial_max_age are of no use to anyone (FTN-NOTES §6).
      const removed = await new Inbound({
        dirs: { secure: config.node.inbound, insecure: config.node.inboundInsecure, temp: config.node.tempInbound },
        hubKey: '',
        minFree: 0,
        partialMaxAge: config.poller.partialMaxAge,
      })
        .cleanStale()
        .catch(() => 0);
      if (removed) log.info(`removed ${removed} stale partial file(s) from ${config.node.tempInbound}`);
    }

    const runTimer = setTimeout(() => {
      if (!running.size) return;
      stopping = stopping ?? 'run_timeout';
      log.warn(`run_timeout (${Math.round(config.poller.runTimeout / 1000)} s) reached: ending ${running.size} session(s); partials are kept`);
      abortAll('Run timeout');
    }, config.poller.runTimeout);
    runTimer.unref();

    const limit = pLimit(config.poller.maxConnections);
    const globalBucket = config.performance.bandwidthLimit > 0 ? new TokenBucket(config.performance.bandwidthLimit) : undefined;
    await Promise.all(
      due.map((entry) =>
        limit(async () => {
          if (stopping) return;
          // SIGHUP: a hub not started yet uses the config as it is now (or is gone from it).
          const hub = config.hubs.find((h) => h.key === entry.hub.key);
          if (!hub) {
            log.info(`${entry.hub.name}: removed from the config; not called`);
            return;
          }
          const slot: { hub: HubConfig; session?: CallerSession; startedAt: number } = { hub, startedAt: now() };
          running.set(hub.key, slot);
          const hubLog = log.child({ hub: hub.name, sessionId: randomBytes(3).toString('hex') });
          let r: CallResult;
          try {
            r = await callHub(hub, {
              config,
              log: hubLog,
              keeper,
              globalBucket,
              now,
              journal,
              onSession: (s) => {
                slot.session = s;
                if (stopping) s.drain();
                opts.onSessionStart?.(hub, s);
              },
            });
          } finally {
            running.delete(hub.key);
            opts.onSessionEnd?.(hub);
          }
          results.push(r);
          const s = r.session;
          const prev = state.hubs[hub.key];
          if (r.status !== 'skipped' && contactChanged(prev, hub) && prev!.consecutiveFailures > 0) {
            hubLog.notice('info', 'password or host changed in the config: the backoff the old one earned is cleared');
          }
          const next = r.status === 'skipped' ? undefined : applyOutcome(prev, outcomeOf(r), hub, now(), random);
          hubLog.log(r.status === 'failed' ? 'error' : r.status === 'skipped' ? 'warning' : 'info', 'stats', `${resultText(r)}${next && r.kind === 'auth' ? authAdvice(hub, next, now()) : ''}`, {
            result: r.status,
            kind: r.kind,
            remote: r.remote,
            duration: r.durationMs,
            filesSent: s?.stats.filesSent ?? 0,
            bytesSent: s?.stats.bytesSent ?? 0,
            filesReceived: s?.stats.filesReceived ?? 0,
            bytesReceived: s?.stats.bytesReceived ?? 0,
            cram: s?.cram,
            nr: s?.nr,
            binkp11: s?.binkp11,
            secure: s?.secure,
            extensions: s?.extensions.join(' '),
          });
          if (next) {
            if (r.reached) {
              const { host, port, address, source, tls } = r.reached;
              next.reached = { host, port, source, tls, ...(address ? { address } : {}) };
            }
            state.hubs[hub.key] = next;
            await save();
            await markBsoFiles(config, hub, prev?.heldUntil, next, r, hubLog);
          }
          await opts.afterSession?.(r, config);
        }),
      ),
    );
    clearTimeout(runTimer);
    clearTimeout(graceTimer);
    await saveChain;
  } finally {
    // Every session has ended and applied its confirmations: nothing left to replay.
    journal.close();
    await keeper.releaseAll().catch(() => undefined);
    await lock.release().catch(() => undefined);
    for (const r of removers) r();
  }

  const sum = (f: (r: CallResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  const failed = results.filter((r) => r.status === 'failed').length;
  let exitCode: number = failed ? ExitCode.FAILED : ExitCode.OK;
  // `now` that could not call a hub because another program holds its busy flag did not do what
  // it was asked: EX_TEMPFAIL, like a held run lock. A cron `run` skips such a hub quietly.
  const busySkips = plan.filter((p) => !p.due && p.code === 'busy').length + results.filter((r) => r.status === 'skipped').length;
  if (opts.force && exitCode === ExitCode.OK && busySkips > 0) exitCode = ExitCode.BUSY;
  if (saveError) exitCode = ExitCode.IOERR;
  if (stopping === 'SIGTERM') exitCode = ExitCode.SIGTERM;
  if (stopping === 'SIGINT') exitCode = ExitCode.SIGINT;
  const summary: RunSummary = {
    startedAt,
    durationMs: now() - startedAt,
    considered: plan.length,
    due: plan.filter((p) => p.due).length,
    polled: results.filter((r) => r.status !== 'skipped').length,
    ok: results.filter((r) => r.status === 'ok').length,
    failed,
    skipped: results.filter((r) => r.status === 'skipped').length,
    bytesSent: sum((r) => r.session?.stats.bytesSent ?? 0),
    bytesReceived: sum((r) => r.session?.stats.bytesReceived ?? 0),
    filesSent: sum((r) => r.session?.stats.filesSent ?? 0),
    filesReceived: sum((r) => r.session?.stats.filesReceived ?? 0),
    exitCode,
    interrupted: stopping,
    plan,
    results,
  };
  // Per run: one summary line in the log (stderr shows it only with --verbose).
  if (summary.due || summary.polled) {
    log.log(
      'info',
      'stats',
      `run: ${summary.due} due, ${summary.polled} polled, ${summary.ok} ok, ${summary.failed} failed, sent ${formatBytes(summary.bytesSent)}, received ${formatBytes(summary.bytesReceived)}, ${formatSeconds(summary.durationMs / 1000)}`,
      {
        due: summary.due,
        polled: summary.polled,
        ok: summary.ok,
        failed: summary.failed,
        bytesSent: summary.bytesSent,
        bytesReceived: summary.bytesReceived,
        duration: summary.durationMs,
        exitCode,
      },
    );
  }
  await opts.afterRun?.(summary, state!, config);
  return summary;
}

/**
 * BSO files other mailers read: a `.hld` while fnpoll holds the hub (so binkd and Synchronet
 * honour it too), and binkd's `.try` when `binkd_try_files = yes`.
 */
/** `; next attempt 2026-01-02 10:00:00 (in 6h); \`fnpoll reset fido\` retries at once`. */
function authAdvice(hub: HubConfig, next: { nextAttempt?: number | undefined; heldUntil?: number | undefined }, now: number): string {
  const at = next.heldUntil ?? next.nextAttempt;
  const when = at === undefined ? '' : `; next attempt ${formatLocalTime(at)} (in ${formatDuration(at - now)})`;
  return `${when}; check the password, then \`fnpoll reset ${hub.name}\` retries at once`;
}

async function markBsoFiles(
  config: Config,
  hub: HubConfig,
  prevHeldUntil: number | undefined,
  next: { heldUntil?: number | undefined; consecutiveFailures: number; totals: { sessionsOk: number; sessionsFailed: number } },
  r: CallResult,
  log: Logger,
): Promise<void> {
  const base = nodeBase(hubLayout(config, hub), hub.address);
  try {
    if (next.heldUntil !== undefined && next.heldUntil !== prevHeldUntil) {
      await writeHold(base, Math.ceil(next.heldUntil / 1000));
      log.notice('warning', `on hold until ${formatTime(next.heldUntil)} after ${count(next.consecutiveFailures, 'failure')} (wrote ${base}.hld); \`fnpoll reset ${hub.name}\` retries at once`);
    } else if (r.status === 'ok' && prevHeldUntil !== undefined) {
      await removeHold(base);
      log.notice('info', `out of hold: the call succeeded (removed ${base}.hld)`);
    }
    if (config.poller.binkdTryFiles) {
      await writeTry(base, {
        nok: next.totals.sessionsOk,
        nbad: next.consecutiveFailures,
        comment: r.status === 'ok' ? 'CONNECT/BND' : `${r.kind ?? 'error'}: ${r.message}`,
      });
    }
  } catch (err) {
    log.warn(`cannot update BSO control files for ${formatAddress(hub.address)}: ${errorText(err)}`);
  }
}
