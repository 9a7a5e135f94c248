/**
 * The hostile hub suite's small set (test/harden/hostile.suite.ts): each case runs the real CLI
 * against a hostile hub, then against a good one. `npm run harden` runs every case.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { runCase, smallCases } from '../../harden/hostile.suite.js';

describe('a hostile hub, then a good one (small set)', () => {
  for (const c of smallCases()) {
    test(c.name, { timeout: 60_000 }, async () => {
      const o = await runCase(c);
      assert.deepEqual(o.problems, []);
      assert.deepEqual([o.hang, o.staleFlags, o.invalidState, o.lost, o.duplicated, o.corrupt], [false, 0, false, 0, 0, 0]);
      assert.ok(o.filesChecked >= 1);
    });
  }
});
