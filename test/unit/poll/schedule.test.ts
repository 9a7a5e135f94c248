import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { INTERVAL_SLACK_MS, planHub, planRun, type PlanCode } from '../../../src/poll/schedule.js';
import { emptyHubState, hubContact } from '../../../src/poll/backoff.js';
import { emptyState, type HubState } from '../../../src/poll/state.js';
import { HOUR, MINUTE, T0, makeHub, queue } from './fixtures.js';

const hub = makeHub({ pollFrequency: HOUR });

function polled(at: number, over: Partial<HubState> = {}): HubState {
  return { ...emptyHubState(), lastAttempt: at, lastSuccess: at, lastResult: { ok: true }, ...over };
}

function backedOff(until: number, failures = 3): HubState {
  return {
    ...polled(T0 - 2 * HOUR),
    lastAttempt: T0 - MINUTE,
    lastResult: { ok: false, kind: 'refused', message: 'connect ECONNREFUSED' },
    consecutiveFailures: failures,
    nextAttempt: until,
  };
}

const crash = queue({ files: 3, bytes: 12 * 1024, flavour: 'crash' });

describe('planHub: due', () => {
  test('never-polled: no successful poll yet', () => {
    const e = planHub(hub, undefined, undefined, undefined, T0);
    assert.deepEqual([e.due, e.code, e.reason, e.nextAttempt], [true, 'never-polled', 'never polled successfully', T0]);
    // a hub with only failed attempts whose backoff is over is still "never polled"
    assert.equal(planHub(hub, backedOff(T0 - 1, 1), undefined, undefined, T0).code, 'interval');
    const onlyFailures: HubState = { ...emptyHubState(), lastAttempt: T0 - HOUR, consecutiveFailures: 1, nextAttempt: T0 - 1 };
    assert.equal(planHub(hub, onlyFailures, undefined, undefined, T0).code, 'never-polled');
  });

  test('interval: poll_frequency elapsed since the last success', () => {
    const e = planHub(hub, polled(T0 - HOUR), undefined, undefined, T0);
    assert.equal(e.due, true);
    assert.equal(e.code, 'interval');
    assert.match(e.reason, /poll interval elapsed \(last success 1h ago, every 1h\)/);
  });

  test('interval: a cron tick slightly early still counts (slack), earlier does not', () => {
    const slack = Math.min(INTERVAL_SLACK_MS, HOUR / 10);
    assert.equal(planHub(hub, polled(T0 - HOUR + slack), undefined, undefined, T0).code, 'interval');
    const e = planHub(hub, polled(T0 - HOUR + slack + 1), undefined, undefined, T0);
    assert.equal(e.code, 'not-yet');
    assert.equal(e.nextAttempt, T0 + 1);
  });

  test('slack is at most a tenth of a short interval', () => {
    const fast = makeHub({ pollFrequency: 5 * MINUTE });
    assert.equal(planHub(fast, polled(T0 - 5 * MINUTE + 30_000), undefined, undefined, T0).code, 'interval');
    assert.equal(planHub(fast, polled(T0 - 5 * MINUTE + 30_001), undefined, undefined, T0).code, 'not-yet');
  });

  test('mail-urgent: crash and immediate mail are due at once, even inside poll_frequency', () => {
    const e = planHub(hub, polled(T0 - MINUTE), crash, undefined, T0);
    assert.deepEqual([e.due, e.code, e.reason], [true, 'mail-urgent', 'crash mail queued (3 files, 12 KiB)']);
    const imm = planHub(hub, polled(T0 - MINUTE), queue({ files: 1, bytes: 100, flavour: 'immediate' }), undefined, T0);
    assert.deepEqual([imm.code, imm.reason], ['mail-urgent', 'immediate mail queued (1 file, 100 B)']);
  });

  test('mail-urgent: an empty crash flow file is an urgent poll request', () => {
    const e = planHub(hub, polled(T0 - MINUTE), queue({ flavour: 'crash', pollRequest: true }), undefined, T0);
    assert.deepEqual([e.due, e.code, e.reason], [true, 'mail-urgent', 'crash poll request']);
  });

  test('mail: direct and normal mail are due at once', () => {
    for (const flavour of ['direct', 'normal'] as const) {
      const e = planHub(hub, polled(T0 - MINUTE), queue({ files: 2, bytes: 3 * 1024 * 1024, flavour }), undefined, T0);
      assert.deepEqual([e.due, e.code, e.reason], [true, 'mail', `${flavour} mail queued (2 files, 3 MiB)`]);
    }
  });

  test('poll-request: an empty normal flow file calls the hub', () => {
    const e = planHub(hub, polled(T0 - MINUTE), queue({ flavour: 'normal', pollRequest: true }), undefined, T0);
    assert.deepEqual([e.due, e.code, e.reason], [true, 'poll-request', 'normal poll request']);
  });

  test('forced: bypasses interval, backoff and hold', () => {
    assert.equal(planHub(hub, polled(T0 - MINUTE), undefined, undefined, T0, true).code, 'forced');
    const inBackoff = planHub(hub, backedOff(T0 + HOUR), undefined, undefined, T0, true);
    assert.deepEqual([inBackoff.due, inBackoff.code], [true, 'forced']);
    const held = planHub(hub, { ...backedOff(T0 + HOUR), heldUntil: T0 + HOUR }, undefined, undefined, T0, true);
    assert.deepEqual([held.due, held.code], [true, 'forced']);
  });

  test('backoff and hold that have expired no longer block', () => {
    assert.equal(planHub(hub, backedOff(T0), crash, undefined, T0).code, 'mail-urgent');
    const heldBefore = { ...backedOff(T0 - 1), heldUntil: T0 - 1 };
    assert.equal(planHub(hub, heldBefore, crash, undefined, T0).code, 'mail-urgent');
  });
});

describe('planHub: not due', () => {
  test('not-yet: inside poll_frequency with nothing queued', () => {
    const e = planHub(hub, polled(T0 - 20 * MINUTE), undefined, undefined, T0);
    assert.equal(e.due, false);
    assert.equal(e.code, 'not-yet');
    assert.equal(e.nextAttempt, T0 + 40 * MINUTE - MINUTE);
    assert.equal(e.reason, 'next poll 2026-03-01 12:39:00 (last success 20m ago, every 1h)');
  });

  test('hold-only: hold mail alone does not call, not even a hold poll request', () => {
    const q = queue({ files: 2, bytes: 2048, flavour: 'hold' });
    const e = planHub(hub, polled(T0 - 20 * MINUTE), q, undefined, T0);
    assert.deepEqual([e.due, e.code], [false, 'hold-only']);
    assert.match(e.reason, /^only hold mail queued \(2 files, 2 KiB\); next poll 2026-03-01 12:39:00$/);
    const pr = planHub(hub, polled(T0 - 20 * MINUTE), queue({ flavour: 'hold', pollRequest: true }), undefined, T0);
    assert.equal(pr.code, 'hold-only');
    // ...but the interval still polls a hub with only hold mail
    assert.equal(planHub(hub, polled(T0 - HOUR), q, undefined, T0).code, 'interval');
  });

  test('busy: a .bsy/.csy/.hld blocks even crash mail and even when forced', () => {
    const why = '2:5020/1 busy (.bsy held by pid 123)';
    for (const force of [false, true]) {
      const e = planHub(hub, polled(T0 - 2 * HOUR), crash, why, T0, force);
      assert.deepEqual([e.due, e.code, e.reason, e.nextAttempt], [false, 'busy', why, undefined]);
    }
  });

  test('backoff beats mail, even crash mail', () => {
    const e = planHub(hub, backedOff(T0 + 3 * MINUTE), crash, undefined, T0);
    assert.deepEqual([e.due, e.code, e.nextAttempt], [false, 'backoff', T0 + 3 * MINUTE]);
    assert.equal(e.reason, 'in backoff until 2026-03-01 12:03:00 after 3 failures (refused)');
  });

  test('held beats mail and backoff; the reason says until when and why', () => {
    const s = { ...backedOff(T0 + 4 * HOUR, 5), heldUntil: T0 + 4 * HOUR };
    const e = planHub(hub, s, crash, undefined, T0);
    assert.deepEqual([e.due, e.code, e.nextAttempt], [false, 'held', T0 + 4 * HOUR]);
    assert.equal(e.reason, 'held until 2026-03-01 16:00:00 after 5 failures (refused)');
  });

  test('no-schedule: poll_frequency 0 polls only for mail', () => {
    const mailOnly = makeHub({ pollFrequency: 0 });
    const e = planHub(mailOnly, polled(T0 - 30 * 24 * HOUR), undefined, undefined, T0);
    assert.deepEqual([e.due, e.code, e.nextAttempt], [false, 'no-schedule', undefined]);
    assert.equal(planHub(mailOnly, polled(T0 - MINUTE), crash, undefined, T0).code, 'mail-urgent');
  });
});

describe('planRun', () => {
  test('one entry per hub in config order, inputs looked up by hub key', () => {
    const a = makeHub({ name: 'Alpha' });
    const b = makeHub({ name: 'Beta' });
    const c = makeHub({ name: 'Gamma' });
    const d = makeHub({ name: 'Delta' });
    const state = emptyState();
    state.hubs.alpha = polled(T0 - MINUTE);
    state.hubs.beta = polled(T0 - MINUTE);
    state.hubs.gamma = backedOff(T0 + MINUTE);
    const plan = planRun({
      config: { hubs: [a, b, c, d] },
      state,
      queued: new Map([['beta', queue({ files: 1, bytes: 10, flavour: 'normal' })]]),
      busy: new Map([['delta', 'busy']]),
      now: T0,
    });
    assert.deepEqual(
      plan.map((e) => [e.hub.name, e.due, e.code]),
      [
        ['Alpha', false, 'not-yet'],
        ['Beta', true, 'mail'],
        ['Gamma', false, 'backoff'],
        ['Delta', false, 'busy'],
      ],
    );
    const forced = planRun({ config: { hubs: [a, c] }, state, queued: new Map(), busy: new Map(), now: T0, force: true });
    assert.deepEqual(forced.map((e) => e.code), ['forced', 'forced'] satisfies PlanCode[]);
  });
});

describe('a changed password or host', () => {
  test('a hub in backoff is due again when its password changed; unchanged it stays in backoff', () => {
    const state = { ...backedOff(T0 + HOUR), contact: hubContact(hub) };
    assert.equal(planHub(hub, state, undefined, undefined, T0).code, 'backoff');
    const fixed = makeHub({ pollFrequency: HOUR, password: 'fixed' });
    const e = planHub(fixed, state, undefined, undefined, T0);
    assert.equal(e.code, 'interval');
    assert.equal(e.due, true);
  });
});
