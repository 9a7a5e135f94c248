/**
 * `fnpoll health`: a check for Nagios, Icinga and other monitoring-plugins hosts. Pure evaluation
 * here; src/commands/health.ts reads the inputs.
 *
 * Monitoring Plugins guidelines: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; one line of output,
 * `SERVICE STATUS - text | perfdata`, where perfdata is `'label'=value[unit];[warn];[crit];[min];[max]`
 * separated by spaces, and `U` stands for a value that cannot be determined.
 *
 * Per hub:
 *   last success older than crit_after (default 6 × poll_frequency)   → CRITICAL
 *   held by fnpoll after max_retries failures                         → CRITICAL (it stopped calling)
 *   last success older than warn_after (default 2 × poll_frequency)   → WARNING
 *   its last attempt failed on authentication                          → CRITICAL (a human must act)
 *   never succeeded: at least WARNING, whatever the age (counted from the oldest attempt on
 *   record, CRITICAL past crit_after); never attempted                 → WARNING
 *   on hold by a `.hld` (binkd's, the sysop's)                         → WARNING, reported as held
 * Run lock: left behind by a dead run (stale, or its pid is gone), or held longer than a run can
 * take (run_timeout + shutdown_grace + a minute)                      → WARNING
 * A hub with poll_frequency = 0 and no warn_after/crit_after polls only for mail: its age is shown
 * but not judged.
 */
import type { Config, HubConfig } from '../config/types.js';
import type { LockStatus } from '../poll/lock.js';
import type { State } from '../poll/state.js';
import { formatDuration, formatTime } from '../format.js';

export const HealthStatus = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;
export type HealthCode = (typeof HealthStatus)[keyof typeof HealthStatus];
const NAMES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;

/** Default thresholds as multiples of poll_frequency (the issue's 2× and 6×). */
export const WARN_FACTOR = 2;
export const CRIT_FACTOR = 6;
/** Slack on top of run_timeout + shutdown_grace before a live lock counts as hung. */
export const LOCK_SLACK_MS = 60_000;

export interface HubHealth {
  hub: HubConfig;
  status: HealthCode;
  /** ms since the last success, or since the oldest attempt on record when there was none; undefined = never attempted. */
  ageMs?: number | undefined;
  warnMs?: number | undefined;
  critMs?: number | undefined;
  failures: number;
  held: boolean;
  /** Why it is not OK (empty when OK). */
  problem: string;
}

export interface HealthReport {
  status: HealthCode;
  hubs: HubHealth[];
  lockProblem?: string | undefined;
  /** The one output line, without trailing newline. */
  line: string;
}

export interface HealthInput {
  config: Config;
  state: State;
  lock?: LockStatus | undefined;
  now: number;
  /** hub key → until when (ms) a `.hld` holds it. */
  holds?: Map<string, number> | undefined;
  /** Problems reading the inputs (e.g. an invalid state file): the result is UNKNOWN. */
  inputProblems?: string[] | undefined;
  /** Hub key → why its state cannot be trusted (times from the future): at least WARNING. */
  stateProblems?: ReadonlyMap<string, string> | undefined;
}

export function statusName(code: HealthCode): (typeof NAMES)[number] {
  return NAMES[code];
}

/** Thresholds for a hub: configured, else 2× / 6× its poll_frequency; undefined when neither applies. */
export function thresholds(hub: HubConfig, config: Config): { warnMs?: number | undefined; critMs?: number | undefined } {
  const f = hub.pollFrequency > 0 ? hub.pollFrequency : undefined;
  return {
    warnMs: config.poller.warnAfter ?? (f === undefined ? undefined : WARN_FACTOR * f),
    critMs: config.poller.critAfter ?? (f === undefined ? undefined : CRIT_FACTOR * f),
  };
}

/** A perfdata label that needs no quoting: letters, digits, `_`, `.`, `-` (others become `_`). */
export function perfLabel(text: string): string {
  const s = text.replace(/[^A-Za-z0-9_.-]/g, '_');
  return s || '_';
}

const worse = (a: HealthCode, b: HealthCode): HealthCode => {
  // UNKNOWN (3) ranks between WARNING and CRITICAL when combining, as check_multi and Icinga do.
  const rank = (c: HealthCode): number => (c === 3 ? 1.5 : c);
  return rank(b) > rank(a) ? b : a;
};

export function evaluateHub(hub: HubConfig, config: Config, state: State, now: number, hldUntil?: number, stateProblem?: string): HubHealth {
  const judged = judgeHub(hub, config, state, now, hldUntil);
  // A hub whose state lay in the future may look fresh; it is never OK (issue 11, defect 7).
  if (stateProblem === undefined || judged.status !== HealthStatus.OK) return judged;
  return { ...judged, status: HealthStatus.WARNING, problem: `${hub.name}: ${stateProblem}` };
}

function judgeHub(hub: HubConfig, config: Config, state: State, now: number, hldUntil: number | undefined): HubHealth {
  const h = state.hubs[hub.key];
  const { warnMs, critMs } = thresholds(hub, config);
  const failures = h?.consecutiveFailures ?? 0;
  const held = h?.heldUntil !== undefined && h.heldUntil > now;
  const since = h?.lastSuccess ?? h?.history[0]?.startedAt ?? h?.lastAttempt;
  const ageMs = since === undefined ? undefined : Math.max(0, now - since);
  const base = { hub, ageMs, warnMs, critMs, failures, held };
  const what = h?.lastSuccess === undefined ? 'no success yet, first attempt' : 'last success';
  const fails = failures ? `, ${failures} failure${failures === 1 ? '' : 's'} since` : '';

  if (held) {
    return { ...base, status: HealthStatus.CRITICAL, problem: `${hub.name} held until ${formatTime(h!.heldUntil!)} after ${failures} failures; fnpoll reset ${hub.name} retries at once` };
  }
  const last = h?.lastResult;
  if (last && !last.ok && last.kind === 'auth') {
    // Retrying cannot help: fnpoll waits retry_max between attempts until the password is fixed.
    const detail = last.remote ?? last.message;
    return {
      ...base,
      status: HealthStatus.CRITICAL,
      problem: `${hub.name} authentication failed${failures > 1 ? ` ${failures} times` : ''}${detail ? ` (${detail})` : ''}; fix the password, then fnpoll reset ${hub.name}`,
    };
  }
  if (hldUntil !== undefined && hldUntil > now) {
    return { ...base, held: true, status: HealthStatus.WARNING, problem: `${hub.name} on hold until ${formatTime(hldUntil)} (.hld)` };
  }
  if (ageMs === undefined) return { ...base, status: HealthStatus.WARNING, problem: `${hub.name} never polled` };
  if (critMs !== undefined && ageMs > critMs) {
    return { ...base, status: HealthStatus.CRITICAL, problem: `${hub.name} ${what} ${formatDuration(ageMs)} ago (crit ${formatDuration(critMs)}${fails})` };
  }
  if (warnMs !== undefined && ageMs > warnMs) {
    return { ...base, status: HealthStatus.WARNING, problem: `${hub.name} ${what} ${formatDuration(ageMs)} ago (warn ${formatDuration(warnMs)}${fails})` };
  }
  if (h?.lastSuccess === undefined) {
    // Never OK before the first success: a hub that was set up wrong must not look healthy.
    return { ...base, status: HealthStatus.WARNING, problem: `${hub.name} ${what} ${formatDuration(ageMs)} ago, never succeeded${fails}` };
  }
  return { ...base, status: HealthStatus.OK, problem: '' };
}

/** Why the run lock is a problem, or undefined. */
export function lockProblem(lock: LockStatus | undefined, config: Config, now: number): string | undefined {
  if (!lock) return undefined;
  const who = lock.owner ? `pid ${lock.owner.pid}` : 'an unknown process';
  if (lock.ownerAlive === false) return `run lock ${lock.lockFile} left by ${who}, which is gone`;
  if (lock.stale) return `run lock ${lock.lockFile} is stale (not refreshed for ${formatDuration(now - lock.refreshedAt)})`;
  const limit = config.poller.runTimeout + config.poller.shutdownGrace + LOCK_SLACK_MS;
  if (lock.owner && now - lock.owner.startedAt > limit) {
    return `run lock ${lock.lockFile} held by ${who} for ${formatDuration(now - lock.owner.startedAt)} (a run ends within ${formatDuration(limit)})`;
  }
  return undefined;
}

function perfdata(hubs: HubHealth[]): string {
  const parts: string[] = [];
  const used = new Set<string>();
  for (const h of hubs) {
    let label = perfLabel(h.hub.key);
    for (let n = 2; used.has(label); n++) label = `${perfLabel(h.hub.key)}_${n}`;
    used.add(label);
    const s = (ms: number | undefined): string => (ms === undefined ? '' : String(Math.round(ms / 1000)));
    const age = h.ageMs === undefined ? 'U' : `${s(h.ageMs)}s`;
    parts.push(`${label}_age=${age};${s(h.warnMs)};${s(h.critMs)};0`);
    parts.push(`${label}_failures=${h.failures};;;0`);
  }
  return parts.join(' ');
}

/** The whole check. Pure. */
export function evaluateHealth(input: HealthInput): HealthReport {
  const { config, state, now } = input;
  const hubs = config.hubs.map((hub) => evaluateHub(hub, config, state, now, input.holds?.get(hub.key), input.stateProblems?.get(hub.key)));
  const lock = lockProblem(input.lock, config, now);
  let status: HealthCode = HealthStatus.OK;
  for (const h of hubs) status = worse(status, h.status);
  if (lock) status = worse(status, HealthStatus.WARNING);

  const problems: string[] = [];
  if (input.inputProblems?.length) {
    status = HealthStatus.UNKNOWN;
    problems.push(...input.inputProblems);
  }
  if (hubs.length === 0) {
    status = HealthStatus.UNKNOWN;
    problems.push(`no hubs configured in ${config.file}`);
  }
  // Worst first, so a truncated status line still shows what matters.
  for (const code of [HealthStatus.CRITICAL, HealthStatus.WARNING]) {
    for (const h of hubs) if (h.status === code) problems.push(h.problem);
  }
  if (lock) problems.push(lock);
  const okCount = hubs.filter((h) => h.status === HealthStatus.OK).length;
  const okText = `${okCount} hub${okCount === 1 ? '' : 's'} ok`;
  const text = problems.length ? `${problems.join('; ')}${hubs.length ? `; ${okText}` : ''}` : okText;
  const perf = perfdata(hubs);
  const line = `FNPOLL ${statusName(status)} - ${plainText(text)}${perf ? ` | ${perf}` : ''}`;
  return { status, hubs, lockProblem: lock, line };
}

/** The text part of plugin output: one line, and no `|` (that starts perfdata). */
function plainText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\|/g, '/').replace(/[\u0000-\u001f\u007f]+/g, '; ');
}

/** For any failure of the check itself (config, I/O, a bug): one UNKNOWN line. */
export function unknownLine(message: string): string {
  return `FNPOLL UNKNOWN - ${plainText(message)}`;
}
