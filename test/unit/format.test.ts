import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bytesPerSecond,
  count,
  formatBytes,
  formatDuration,
  formatExactDuration,
  formatLocalTime,
  formatRate,
  formatSeconds,
  formatTime,
} from '../../src/format.js';
import { parseDuration } from '../../src/config/units.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);

describe('formatDuration (ages and waits)', () => {
  test('two units at most, never negative', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [-5 * SECOND, '0s'],
      [45 * SECOND, '45s'],
      [3 * MINUTE + 10 * SECOND, '3m'],
      [2 * HOUR, '2h'],
      [2 * HOUR + 5 * MINUTE, '2h 5m'],
      [27 * HOUR, '1d 3h'],
      [48 * HOUR, '2d'],
    ];
    for (const [ms, want] of cases) assert.equal(formatDuration(ms), want, String(ms));
  });
});

describe('formatExactDuration (settings)', () => {
  test('largest exact unit', () => {
    assert.equal(formatExactDuration(86_400_000), '1d');
    assert.equal(formatExactDuration(3_600_000), '1h');
    assert.equal(formatExactDuration(5_400_000), '90m');
    assert.equal(formatExactDuration(45_000), '45s');
    assert.equal(formatExactDuration(1500), '1500ms');
    assert.equal(formatExactDuration(0), '0s');
  });

  test('round-trips through parseDuration', () => {
    for (const ms of [1000, 61_000, 7_200_000, 172_800_000]) assert.equal(parseDuration(formatExactDuration(ms)), ms);
  });
});

describe('sizes and rates', () => {
  test('formatBytes', () => {
    const cases: [number, string][] = [
      [0, '0 B'],
      [1023, '1023 B'],
      [1024, '1 KiB'],
      [1536, '1.5 KiB'],
      [12 * 1024, '12 KiB'],
      [5 * 1024 * 1024 * 1024, '5 GiB'],
    ];
    for (const [n, want] of cases) assert.equal(formatBytes(n), want);
  });

  test('a fractional rate is rounded (issue 14: never 64.51612903225806 B/s)', () => {
    assert.equal(formatRate(2000 / 31), '65 B/s');
    assert.equal(formatRate(1536.7), '1.5 KiB/s');
    assert.equal(formatBytes(Number.NaN), '0 B');
    assert.equal(bytesPerSecond(2000, 31_000), 65);
    assert.equal(bytesPerSecond(2000, 0), null);
  });

  test('formatSeconds keeps meaningful digits', () => {
    assert.equal(formatSeconds(0.0312), '0.03 s');
    assert.equal(formatSeconds(4.24), '4.2 s');
    assert.equal(formatSeconds(95.4), '95 s');
  });

  test('count', () => {
    assert.equal(count(1, 'file'), '1 file');
    assert.equal(count(0, 'file'), '0 files');
    assert.equal(count(2, 'entry', 'entries'), '2 entries');
  });
});

describe('times', () => {
  test('formatTime is UTC ISO 8601 without milliseconds', () => {
    assert.equal(formatTime(T0 + 1234), '2026-03-01T12:00:01Z');
  });

  test('formatLocalTime follows the local zone (TZ)', () => {
    const saved = process.env.TZ;
    try {
      process.env.TZ = 'Europe/Berlin';
      assert.equal(formatLocalTime(T0 + 1234), '2026-03-01 13:00:01');
      process.env.TZ = 'UTC';
      assert.equal(formatLocalTime(T0 + 1234), '2026-03-01 12:00:01');
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});
