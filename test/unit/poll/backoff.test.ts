import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HISTORY_LIMIT,
  MAX_MESSAGE_LENGTH,
  applyOutcome,
  contactChanged,
  hubContact,
  resetHub,
  retryDelay,
  type SessionOutcome,
} from '../../../src/poll/backoff.js';
import type { HubState } from '../../../src/poll/state.js';
import { HOUR, MINUTE, SECOND, T0, makeHub, seededRandom, stats } from './fixtures.js';

const zero = () => 0;
const fail = (kind: 'refused' | 'auth' | 'timeout' | 'aborted' | 'busy' | 'fingerprint' | 'proxy_auth', message = 'x'): SessionOutcome => ({
  ok: false,
  kind,
  message,
  stats: stats(),
});
const ok: SessionOutcome = { ok: true, stats: stats() };

describe('retryDelay', () => {
  test('doubles from base per failure and caps at max (no jitter when random is 0)', () => {
    const got = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => retryDelay(n, MINUTE, 6 * HOUR, zero));
    assert.deepEqual(got, [1, 2, 4, 8, 16, 32, 64, 128, 256, 360].map((m) => m * MINUTE));
  });

  test('no failures, no delay', () => {
    assert.equal(retryDelay(0, MINUTE, HOUR, zero), 0);
    assert.equal(retryDelay(-3, MINUTE, HOUR, zero), 0);
  });

  test('huge failure counts stay finite and capped', () => {
    assert.equal(retryDelay(10_000, MINUTE, 6 * HOUR, zero), 6 * HOUR);
    assert.equal(retryDelay(Number.MAX_SAFE_INTEGER, MINUTE, 6 * HOUR, zero), 6 * HOUR);
  });

  test('base above max is capped at max', () => {
    assert.equal(retryDelay(1, 2 * HOUR, HOUR, zero), HOUR);
  });

  test('jitter stays within [0.75, 1] × the capped delay over many random values', () => {
    const random = seededRandom(42);
    const seen = new Set<number>();
    for (let failures = 1; failures <= 20; failures++) {
      const capped = Math.min(MINUTE * 2 ** (failures - 1), 6 * HOUR);
      for (let i = 0; i < 500; i++) {
        const d = retryDelay(failures, MINUTE, 6 * HOUR, random);
        assert.ok(Number.isInteger(d), `delay ${d} is not an integer`);
        assert.ok(d <= capped, `delay ${d} > capped ${capped} (failures ${failures})`);
        assert.ok(d >= 0.75 * capped, `delay ${d} < 0.75 × ${capped} (failures ${failures})`);
        assert.ok(d <= 6 * HOUR);
        if (failures === 1) seen.add(d);
      }
    }
    // The jitter really spreads retries: 500 draws give many distinct delays.
    assert.ok(seen.size > 100, `only ${seen.size} distinct delays`);
  });

  test('extreme and broken random values are clamped into the bounds', () => {
    const capped = 4 * MINUTE;
    assert.equal(retryDelay(3, MINUTE, HOUR, () => 0), capped);
    const nearOne = retryDelay(3, MINUTE, HOUR, () => 0.999999999);
    assert.ok(nearOne >= 0.75 * capped && nearOne < capped);
    for (const bad of [1, 7, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const d = retryDelay(3, MINUTE, HOUR, () => bad);
      assert.ok(d >= 0.75 * capped && d <= capped, `random ${bad} gave ${d}`);
    }
  });
});

describe('applyOutcome', () => {
  test('a failure counts, records kind and message, and schedules the next attempt', () => {
    const hub = makeHub();
    const s1 = applyOutcome(undefined, fail('refused', 'connect ECONNREFUSED'), hub, T0 + 5 * SECOND, zero);
    assert.equal(s1.consecutiveFailures, 1);
    assert.equal(s1.lastAttempt, T0);
    assert.equal(s1.lastSuccess, undefined);
    assert.deepEqual(s1.lastResult, { ok: false, kind: 'refused', message: 'connect ECONNREFUSED' });
    assert.equal(s1.nextAttempt, T0 + 5 * SECOND + MINUTE);
    assert.equal(s1.heldUntil, undefined);

    const s2 = applyOutcome(s1, fail('timeout'), hub, T0 + HOUR, zero);
    assert.equal(s2.consecutiveFailures, 2);
    assert.equal(s2.nextAttempt, T0 + HOUR + 2 * MINUTE);
  });

  test('the next attempt uses the jittered delay', () => {
    const hub = makeHub();
    const s = applyOutcome(undefined, fail('refused'), hub, T0, () => 0.5);
    // 60 s minus 0.25 × 0.5 of it
    assert.equal(s.nextAttempt, T0 + MINUTE - 7_500);
  });

  test('auth failure goes straight to retry_max', () => {
    const hub = makeHub({ retryMax: 3 * HOUR });
    const s = applyOutcome(undefined, fail('auth', 'Bad password'), hub, T0, zero);
    assert.equal(s.consecutiveFailures, 1);
    assert.equal(s.nextAttempt, T0 + 3 * HOUR);
    const jittered = applyOutcome(undefined, fail('auth'), hub, T0, () => 0.99);
    assert.ok(jittered.nextAttempt! >= T0 + 0.75 * 3 * HOUR && jittered.nextAttempt! <= T0 + 3 * HOUR);
  });

  test('a fingerprint mismatch and refused proxy credentials wait retry_max too (issue 12)', () => {
    const hub = makeHub({ retryMax: 3 * HOUR });
    for (const kind of ['fingerprint', 'proxy_auth'] as const) {
      assert.equal(applyOutcome(undefined, fail(kind), hub, T0, zero).nextAttempt, T0 + 3 * HOUR, kind);
    }
    assert.equal(applyOutcome(undefined, fail('refused'), hub, T0, zero).nextAttempt, T0 + MINUTE);
  });

  test('per-hub retry_base and retry_max are used', () => {
    const hub = makeHub({ retryBase: 10 * SECOND, retryMax: 30 * SECOND });
    let s: HubState | undefined;
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      s = applyOutcome(s, fail('refused'), hub, T0, zero);
      delays.push(s.nextAttempt! - T0);
    }
    assert.deepEqual(delays, [10, 20, 30, 30].map((x) => x * SECOND));
  });

  test('after max_retries consecutive failures the hub is held; a new cycle starts after the hold', () => {
    const hub = makeHub({ maxRetries: 3, holdTime: 4 * HOUR });
    let s: HubState | undefined;
    const seen: { failures: number; held: boolean; delay: number }[] = [];
    for (let i = 0; i < 7; i++) {
      s = applyOutcome(s, fail('refused'), hub, T0, zero);
      seen.push({ failures: s.consecutiveFailures, held: s.heldUntil !== undefined, delay: s.nextAttempt! - T0 });
    }
    assert.deepEqual(seen, [
      { failures: 1, held: false, delay: MINUTE },
      { failures: 2, held: false, delay: 2 * MINUTE },
      { failures: 3, held: true, delay: 4 * HOUR },
      { failures: 4, held: false, delay: MINUTE },
      { failures: 5, held: false, delay: 2 * MINUTE },
      { failures: 6, held: true, delay: 4 * HOUR },
      { failures: 7, held: false, delay: MINUTE },
    ]);
  });

  test('the hold is heldUntil = now + hold_time', () => {
    const hub = makeHub({ maxRetries: 1, holdTime: 2 * HOUR });
    const s = applyOutcome(undefined, fail('timeout'), hub, T0 + 10 * SECOND, zero);
    assert.equal(s.heldUntil, T0 + 10 * SECOND + 2 * HOUR);
    assert.equal(s.nextAttempt, s.heldUntil);
  });

  test('max_retries 0 never holds', () => {
    const hub = makeHub({ maxRetries: 0 });
    let s: HubState | undefined;
    for (let i = 0; i < 50; i++) s = applyOutcome(s, fail('refused'), hub, T0, zero);
    assert.equal(s!.consecutiveFailures, 50);
    assert.equal(s!.heldUntil, undefined);
    assert.equal(s!.nextAttempt, T0 + hub.retryMax);
  });

  test('success resets failures, backoff and hold and records the poll time', () => {
    const hub = makeHub({ maxRetries: 2 });
    let s = applyOutcome(undefined, fail('refused'), hub, T0, zero);
    s = applyOutcome(s, fail('refused'), hub, T0, zero);
    assert.ok(s.heldUntil !== undefined);
    const later = { ok: true as const, stats: stats({ startedAt: T0 + 5 * HOUR }) };
    const done = applyOutcome(s, later, hub, T0 + 5 * HOUR + 30 * SECOND, zero);
    assert.equal(done.consecutiveFailures, 0);
    assert.equal(done.nextAttempt, undefined);
    assert.equal(done.heldUntil, undefined);
    assert.equal(done.lastSuccess, T0 + 5 * HOUR);
    assert.equal(done.lastAttempt, T0 + 5 * HOUR);
    assert.deepEqual(done.lastResult, { ok: true });
  });

  test('an aborted session is recorded but does not count against the hub', () => {
    const hub = makeHub();
    const s1 = applyOutcome(undefined, fail('refused'), hub, T0, zero);
    const s2 = applyOutcome(s1, fail('aborted', 'SIGTERM'), hub, T0 + 10 * SECOND, zero);
    assert.equal(s2.consecutiveFailures, 1);
    assert.equal(s2.nextAttempt, s1.nextAttempt);
    assert.deepEqual(s2.lastResult, { ok: false, kind: 'aborted', message: 'SIGTERM' });
    assert.equal(s2.totals.sessionsFailed, 2);
  });

  test("the hub's M_ERR text is kept, one line and bounded", () => {
    const hub = makeHub();
    const outcome: SessionOutcome = {
      ok: false,
      kind: 'protocol',
      message: 'hub said M_ERR\nsecond line',
      remote: `Bad\tthing ${'x'.repeat(1000)}`,
      stats: stats(),
    } as SessionOutcome;
    const s = applyOutcome(undefined, outcome, hub, T0, zero);
    assert.ok(s.lastResult && !s.lastResult.ok);
    assert.equal(s.lastResult.message, 'hub said M_ERR second line');
    assert.ok(s.lastResult.remote!.startsWith('Bad thing xxx'));
    assert.equal(s.lastResult.remote!.length, MAX_MESSAGE_LENGTH);
  });

  test('counters add up and the history stays bounded, newest last', () => {
    const hub = makeHub();
    let s: HubState | undefined;
    for (let i = 0; i < 25; i++) {
      const st = stats({ startedAt: T0 + i * HOUR, filesSent: 1, filesReceived: 2, bytesSent: 100, bytesReceived: 1000 });
      const outcome: SessionOutcome = i % 5 === 4 ? { ok: false, kind: 'timeout', message: `t${i}`, stats: st } : { ok: true, stats: st };
      s = applyOutcome(s, outcome, hub, T0 + i * HOUR + 10 * SECOND, zero);
    }
    assert.deepEqual(s!.totals, {
      sessionsOk: 20,
      sessionsFailed: 5,
      filesSent: 25,
      filesReceived: 50,
      bytesSent: 2500,
      bytesReceived: 25000,
    });
    assert.equal(s!.history.length, HISTORY_LIMIT);
    assert.equal(s!.history.at(-1)!.startedAt, T0 + 24 * HOUR);
    assert.equal(s!.history[0]!.startedAt, T0 + 15 * HOUR);
    assert.deepEqual(
      s!.history.filter((e) => !e.ok).map((e) => [e.kind, e.message]),
      [
        ['timeout', 't19'],
        ['timeout', 't24'],
      ],
    );
  });

  test('does not modify the previous state', () => {
    const hub = makeHub();
    const s1 = applyOutcome(undefined, ok, hub, T0, zero);
    const frozen = JSON.stringify(s1);
    applyOutcome(s1, fail('refused'), hub, T0 + HOUR, zero);
    assert.equal(JSON.stringify(s1), frozen);
  });
});

describe('resetHub', () => {
  test('clears failures, backoff and hold but keeps history and counters', () => {
    const hub = makeHub({ maxRetries: 2 });
    let s = applyOutcome(undefined, fail('refused'), hub, T0, zero);
    s = applyOutcome(s, fail('refused'), hub, T0, zero);
    assert.ok(s.heldUntil !== undefined && s.nextAttempt !== undefined && s.consecutiveFailures === 2);
    const r = resetHub(s);
    assert.equal(r.consecutiveFailures, 0);
    assert.equal(r.nextAttempt, undefined);
    assert.equal(r.heldUntil, undefined);
    assert.deepEqual(r.totals, s.totals);
    assert.deepEqual(r.history, s.history);
    assert.deepEqual(r.lastResult, s.lastResult);
    // and the next failure starts the backoff from the base again
    assert.equal(applyOutcome(r, fail('refused'), hub, T0, zero).nextAttempt, T0 + MINUTE);
  });
});

describe('a new password or host in the config', () => {
  test('hubContact depends on host, port and password only, and never holds the password', () => {
    const a = makeHub();
    assert.equal(hubContact(a), hubContact(makeHub({ name: 'Other', pollFrequency: 5 * MINUTE })));
    assert.notEqual(hubContact(a), hubContact(makeHub({ password: 'new-secret' })));
    assert.notEqual(hubContact(a), hubContact(makeHub({ host: 'hub2.example.net' })));
    assert.notEqual(hubContact(a), hubContact(makeHub({ port: 24555 })));
    assert.notEqual(hubContact(a), hubContact(makeHub({ password: undefined })));
    assert.doesNotMatch(hubContact(a), /secret/);
  });

  test('clears the failures the old one earned; the same config keeps counting', () => {
    const hub = makeHub();
    let s = applyOutcome(undefined, fail('auth'), hub, T0, zero);
    s = applyOutcome(s, fail('auth'), hub, T0, zero);
    assert.equal(s.consecutiveFailures, 2);
    assert.equal(s.contact, hubContact(hub));
    assert.equal(contactChanged(s, hub), false);
    const fixed = makeHub({ password: 'the-right-one' });
    assert.equal(contactChanged(s, fixed), true);
    const after = applyOutcome(s, fail('refused'), fixed, T0, zero);
    assert.equal(after.consecutiveFailures, 1, 'counting starts again');
    assert.equal(after.nextAttempt, T0 + MINUTE, 'retry_base, not retry_max');
    assert.equal(contactChanged(undefined, hub), false);
    assert.equal(contactChanged({ ...s, contact: undefined }, fixed), false, 'state from before fnpoll kept contacts');
  });
});
