/**
 * The disk-full and clock-jump suite of `npm run harden` (test/harden/diskclock.suite.ts): a small
 * tmpfs inbound, ENOSPC while saving the state, and the clock moved ±3 days under faketime.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mustBeZero, run } from '../harden/diskclock.suite.js';

test('disk full and clock jumps: nothing lost, one line per failure, no hub never-due or always-due', { timeout: 180_000 }, async () => {
  const figures = await run('small');
  assert.equal(figures['cases'], 4);
  for (const key of mustBeZero) assert.equal(figures[key], 0, `${key} = ${figures[key]}`);
});
