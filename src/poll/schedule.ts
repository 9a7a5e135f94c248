/**
 * Which hubs are due this run, and why. Pure: a function of (config, state, outbound summary,
 * busy flags, now); the caller gathers the inputs and acts on the answer.
 *
 * A hub is due when its poll_frequency has elapsed since its last successful poll, or when mail
 * that is not hold flavour is queued for it (FTS-5005 §3.2: hold = "wait for a poll from the
 * remote system"); and it is not busy, not held and not in backoff. Checked in this order:
 *   busy (.bsy/.csy/future .hld, FTS-5005 §5.1-5.3)  → not due, even when forced
 *   held after max_retries failures                  → not due unless forced
 *   in backoff after a failure                       → not due unless forced (beats even crash mail)
 *   forced (`fnpoll now`)                            → due
 *   immediate/crash mail or poll request             → due at once, even inside poll_frequency
 *   poll request (empty flow file)                   → due
 *   direct/normal mail                               → due
 *   never polled successfully                        → due
 *   poll_frequency elapsed                           → due
 *   otherwise                                        → not due ('hold-only' when only hold mail waits)
 */
import type { Config, HubConfig } from '../config/types.js';
import type { Flavour, QueueSummary } from '../bso/types.js';
import type { HubState, State } from './state.js';
import { contactChanged, resetHub } from './backoff.js';
import { formatBytes, formatDuration, formatLocalTime } from '../format.js';

export type PlanCode =
  // due
  | 'forced'
  | 'mail-urgent'
  | 'poll-request'
  | 'mail'
  | 'never-polled'
  | 'interval'
  // not due
  | 'busy'
  | 'held'
  | 'backoff'
  | 'hold-only'
  | 'not-yet'
  | 'no-schedule';

export interface PlanEntry {
  hub: HubConfig;
  due: boolean;
  /** Short human text: "crash mail queued (3 files, 12 KiB)". */
  reason: string;
  code: PlanCode;
  /** When the hub is (or next will be) due: `now` when due; undefined when unknown (busy, no schedule). */
  nextAttempt?: number | undefined;
}

export interface PlanInput {
  /** Only `hubs` is read. */
  config: Pick<Config, 'hubs'>;
  state: State;
  /** Keyed by `HubConfig.key`; a missing entry means nothing is queued. */
  queued: Map<string, QueueSummary>;
  /** Keyed by `HubConfig.key` → why it is busy ("2:5020/1 busy (.bsy held by pid 123)", ".hld until …"). */
  busy: Map<string, string>;
  now: number;
  /** `fnpoll now`: bypass schedule, backoff and hold, but never a busy flag. */
  force?: boolean | undefined;
}

/**
 * A cron run scheduled every few minutes starts a little later or earlier each time; without
 * slack a hub polled at 10:00:03 would not be due at 11:00:01 and would wait a whole cron period.
 * The interval counts as elapsed this much early (at most a tenth of the interval).
 */
export const INTERVAL_SLACK_MS = 60_000;

/** One entry per configured hub, in config order. */
export function planRun(input: PlanInput): PlanEntry[] {
  return input.config.hubs.map((hub) =>
    planHub(hub, input.state.hubs[hub.key], input.queued.get(hub.key), input.busy.get(hub.key), input.now, input.force),
  );
}

const URGENT: ReadonlySet<Flavour> = new Set<Flavour>(['immediate', 'crash']);

/** `3 files, 12 KiB` */
function describeQueue(q: QueueSummary): string {
  return `${q.files} file${q.files === 1 ? '' : 's'}, ${formatBytes(q.bytes)}`;
}

/** `after 3 failures (refused: connection refused)` */
function describeFailures(s: HubState): string {
  const n = s.consecutiveFailures;
  let text = `after ${n} failure${n === 1 ? '' : 's'}`;
  if (s.lastResult && !s.lastResult.ok) text += ` (${s.lastResult.kind})`;
  return text;
}

/** The planning decision for one hub (exported for tests and `fnpoll status <hub>`). */
export function planHub(
  hub: HubConfig,
  state: HubState | undefined,
  queue: QueueSummary | undefined,
  busy: string | undefined,
  now: number,
  force = false,
): PlanEntry {
  const due = (code: PlanCode, reason: string): PlanEntry => ({ hub, due: true, code, reason, nextAttempt: now });
  const notDue = (code: PlanCode, reason: string, nextAttempt?: number): PlanEntry => ({
    hub,
    due: false,
    code,
    reason,
    nextAttempt,
  });

  if (busy !== undefined) return notDue('busy', busy);
  // A new password or host in the config clears the backoff and hold the old one earned.
  if (contactChanged(state, hub)) state = state && resetHub(state);

  if (!force && state?.heldUntil !== undefined && state.heldUntil > now) {
    return notDue('held', `held until ${formatLocalTime(state.heldUntil)} ${describeFailures(state)}`, state.heldUntil);
  }
  if (!force && state?.nextAttempt !== undefined && state.nextAttempt > now) {
    return notDue(
      'backoff',
      `in backoff until ${formatLocalTime(state.nextAttempt)} ${describeFailures(state)}`,
      state.nextAttempt,
    );
  }
  if (force) return due('forced', 'forced (fnpoll now)');

  // A poll request counts as mail of its flavour; hold flavour (even a hold poll request) never calls.
  const flavour = queue?.flavour;
  if (queue && flavour !== undefined && flavour !== 'hold') {
    if (URGENT.has(flavour)) {
      return due(
        'mail-urgent',
        queue.files > 0 ? `${flavour} mail queued (${describeQueue(queue)})` : `${flavour} poll request`,
      );
    }
    if (queue.pollRequest) {
      return due('poll-request', `${flavour} poll request${queue.files > 0 ? ` (${describeQueue(queue)})` : ''}`);
    }
    return due('mail', `${flavour} mail queued (${describeQueue(queue)})`);
  }

  if (state?.lastSuccess === undefined) return due('never-polled', 'never polled successfully');

  const every = hub.pollFrequency;
  if (!(every > 0)) {
    return notDue('no-schedule', 'no mail queued and poll_frequency is 0 (polls only for mail)');
  }
  const dueAt = state.lastSuccess + every - Math.min(INTERVAL_SLACK_MS, Math.floor(every / 10));
  const since = `last success ${formatDuration(now - state.lastSuccess)} ago, every ${formatDuration(every)}`;
  if (now >= dueAt) return due('interval', `poll interval elapsed (${since})`);

  if (queue && flavour === 'hold') {
    return notDue(
      'hold-only',
      `only hold mail queued (${describeQueue(queue)}); next poll ${formatLocalTime(dueAt)}`,
      dueAt,
    );
  }
  return notDue('not-yet', `next poll ${formatLocalTime(dueAt)} (${since})`, dueAt);
}
