/**
 * Retry delay, hold and per-hub bookkeeping after a session. Pure: the clock (`now`) and the random
 * source are passed in, nothing here touches a file.
 *
 * Rules (from the issue; FTS-5005 §5.4 describes the same try/hold idea for `.try` files):
 * - After the n-th consecutive failure the next attempt waits `retryDelay(n)`: `retryBase`, doubled
 *   per failure, capped at `retryMax`, with jitter so that many nodes don't retry in step.
 * - An auth failure (bad password) waits `retryMax` at once: retrying sooner cannot help.
 * - With `maxRetries > 0`, every `maxRetries`-th consecutive failure holds the hub for `holdTime`.
 *   As FTS-5005 §5.4 resets NBAD when it holds a node, a new cycle starts after the hold: the
 *   exponent restarts from `retryBase`, and another `maxRetries` failures hold it again. The
 *   counter itself keeps counting (status shows the real number of consecutive failures).
 * - A success clears failures, backoff and hold.
 * - An `aborted` session (we stopped it: signal, run timeout) is recorded but does not count
 *   against the hub: the hub did nothing wrong.
 */
import type { FailureKind } from '../errors.js';
import type { HubConfig } from '../config/types.js';
import { emptyHubState, type HistoryEntry, type HubState, type HubTotals } from './state.js';

/** Jitter takes off up to this fraction of the capped delay: the delay lies in [0.75, 1] × capped. */
export const JITTER_FRACTION = 0.25;
/** Sessions kept per hub in `history`: the state file must not grow with the number of runs. */
export const HISTORY_LIMIT = 10;
/** Longest failure message kept (a hub's M_ERR text is hostile input of any length). */
export const MAX_MESSAGE_LENGTH = 300;
/** 2^60 × any sane base overflows every sane max; keeps the arithmetic finite. */
const MAX_EXPONENT = 60;

export interface SessionStats {
  /** Epoch ms when the attempt started (before connecting). */
  startedAt: number;
  durationMs: number;
  filesSent: number;
  filesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Protocol extensions in force (GZ, PLZ, CRYPT, CRC, ND, NR). */
  extensions?: string[] | undefined;
}

export type SessionOutcome =
  | { ok: true; stats: SessionStats }
  | {
      ok: false;
      kind: FailureKind;
      message: string;
      /** The hub's own M_ERR / M_BSY text, when it sent one. */
      remote?: string | undefined;
      stats: SessionStats;
    };

/**
 * Delay in ms before the next attempt after `failures` consecutive failures (0 when none):
 * `capped = min(base × 2^(failures-1), max)`, minus a jitter of up to 25 %.
 * Bounds: `ceil(0.75 × capped) ≤ delay ≤ capped` (integer ms), so it never exceeds `max` and never
 * drops below three quarters of the un-jittered value. `random` returns values in [0, 1) like
 * Math.random; anything outside is clamped.
 */
export function retryDelay(failures: number, base: number, max: number, random: () => number): number {
  if (!(failures >= 1)) return 0;
  const b = Math.max(0, Math.floor(base));
  const m = Math.max(0, Math.floor(max));
  const exponent = Math.min(Math.floor(failures) - 1, MAX_EXPONENT);
  return jitter(Math.min(b * 2 ** exponent, m), random);
}

/** `capped` minus up to JITTER_FRACTION of it; integer ms in [ceil(0.75 × capped), capped]. */
function jitter(capped: number, random: () => number): number {
  let r = random();
  if (!Number.isFinite(r) || r < 0) r = 0;
  if (r >= 1) r = 1 - Number.EPSILON;
  return capped - Math.floor(capped * JITTER_FRACTION * r);
}

// The empty values belong to the state's shape; re-exported here, where sessions build on them.
export { emptyHubState, emptyTotals } from './state.js';

/** One line, no control characters, at most MAX_MESSAGE_LENGTH characters. */
export function oneLine(text: string, max = MAX_MESSAGE_LENGTH): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/**
 * A fingerprint of how the hub is reached: host, port and password (cyrb53, a fast non-crypto
 * hash: the state file must not hold the password, and the idle cron path loads no crypto). When
 * the sysop fixes a password or moves a hub, the backoff earned by the old one no longer applies.
 */
export function hubContact(hub: Pick<HubConfig, 'host' | 'port' | 'password'>): string {
  const text = `${hub.host}\u0000${hub.port}\u0000${hub.password ?? ''}`;
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
}

/** The hub's password, host or port changed since its state was recorded (state from before: no). */
export function contactChanged(prev: HubState | undefined, hub: Pick<HubConfig, 'host' | 'port' | 'password'>): boolean {
  return prev?.contact !== undefined && prev.contact !== hubContact(hub);
}

/**
 * The hub's state after one session (or failed attempt) that ended at `now`. Pure; `prev` is not
 * modified. `hub` supplies retryBase / retryMax / maxRetries / holdTime (already merged with the
 * global defaults by the config loader).
 */
export function applyOutcome(
  prev: HubState | undefined,
  outcome: SessionOutcome,
  hub: HubConfig,
  now: number,
  random: () => number,
): HubState {
  // A new password or host starts afresh: failures of the old one say nothing about it.
  const base = { ...(contactChanged(prev, hub) ? resetHub(prev!) : (prev ?? emptyHubState())), contact: hubContact(hub) };
  const { stats } = outcome;
  const totals: HubTotals = {
    sessionsOk: base.totals.sessionsOk + (outcome.ok ? 1 : 0),
    sessionsFailed: base.totals.sessionsFailed + (outcome.ok ? 0 : 1),
    filesSent: base.totals.filesSent + stats.filesSent,
    filesReceived: base.totals.filesReceived + stats.filesReceived,
    bytesSent: base.totals.bytesSent + stats.bytesSent,
    bytesReceived: base.totals.bytesReceived + stats.bytesReceived,
  };
  const entry: HistoryEntry = {
    startedAt: stats.startedAt,
    durationMs: stats.durationMs,
    ok: outcome.ok,
    filesSent: stats.filesSent,
    filesReceived: stats.filesReceived,
    bytesSent: stats.bytesSent,
    bytesReceived: stats.bytesReceived,
  };
  if (stats.extensions && stats.extensions.length > 0) entry.extensions = [...stats.extensions];
  if (!outcome.ok) {
    entry.kind = outcome.kind;
    entry.message = oneLine(outcome.message);
  }
  const history = [...base.history, entry].slice(-HISTORY_LIMIT);
  const common = { ...base, lastAttempt: stats.startedAt, totals, history };

  if (outcome.ok) {
    // lastSuccess is when the poll started: with a cron tick every few minutes, measuring
    // poll_frequency from the start keeps the schedule from creeping by one session length a poll.
    return {
      ...common,
      lastSuccess: stats.startedAt,
      lastResult: { ok: true },
      consecutiveFailures: 0,
      nextAttempt: undefined,
      heldUntil: undefined,
    };
  }

  const lastResult: HubState['lastResult'] = { ok: false, kind: outcome.kind, message: oneLine(outcome.message) };
  if (outcome.remote !== undefined) lastResult.remote = oneLine(outcome.remote);
  if (outcome.kind === 'aborted') return { ...common, lastResult };

  const failures = base.consecutiveFailures + 1;
  if (hub.maxRetries > 0 && hub.holdTime > 0 && failures % hub.maxRetries === 0) {
    const heldUntil = now + hub.holdTime;
    return { ...common, lastResult, consecutiveFailures: failures, nextAttempt: heldUntil, heldUntil };
  }
  // Position inside the current hold cycle (see the header comment): 1 right after a hold.
  const step = hub.maxRetries > 0 ? ((failures - 1) % hub.maxRetries) + 1 : failures;
  // A wrong password, a certificate that is not the pinned one, or credentials the proxy refuses
  // will not fix themselves in a minute: wait retry_max at once.
  const delay =
    outcome.kind === 'auth' || outcome.kind === 'fingerprint' || outcome.kind === 'proxy_auth'
      ? jitter(Math.max(0, Math.floor(hub.retryMax)), random)
      : retryDelay(step, hub.retryBase, hub.retryMax, random);
  return { ...common, lastResult, consecutiveFailures: failures, nextAttempt: now + delay, heldUntil: undefined };
}

/** `fnpoll reset`: forget failures, backoff and hold; history, counters and lastResult stay. */
export function resetHub(prev: HubState): HubState {
  return { ...prev, consecutiveFailures: 0, nextAttempt: undefined, heldUntil: undefined };
}
