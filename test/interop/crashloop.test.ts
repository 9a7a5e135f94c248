/**
 * The crash loop of `npm run harden` (test/harden/crashloop.suite.ts) at its small size: a few
 * SIGKILLs of fnpoll against the real binkd, at different moments, then clean runs and the checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mustBeZero, run } from '../harden/crashloop.suite.js';

test('crash loop (small): SIGKILL at every kind of moment loses, duplicates and wedges nothing', { timeout: 300_000 }, async () => {
  const figures = await run('small');
  assert.ok(figures['kills']! >= 6, `only ${figures['kills']} of ${figures['rounds']} runs were killed: the triggers did not fire`);
  assert.ok(figures['filesChecked']! > 0);
  for (const key of mustBeZero) assert.equal(figures[key], 0, `${key} = ${figures[key]}`);
});
