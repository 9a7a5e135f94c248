/**
 * The fuzz targets of `npm run harden` (test/harden/fuzz.suite.ts), a few hundred cases each, so
 * that `npm test` catches a parser that throws, hangs or breaks an invariant. The full run is
 * 100 000 cases per target.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TARGETS, fuzzAll, fuzzSeed, fuzzTarget } from '../../harden/fuzz.suite.js';
import { summaryTable, violations } from '../../harden/lib.js';

const CASES = 500;

describe('fuzz targets (500 cases each)', () => {
  test('every target holds', async () => {
    const results = await fuzzAll(CASES, fuzzSeed());
    assert.equal(results.length, TARGETS.length);
    for (const r of results) {
      assert.equal(r.problem, undefined, `${r.name}: ${r.problem}`);
      assert.equal(r.cases, CASES, r.name);
    }
  });

  test('a target that throws an untyped error, or breaks an invariant, is counted (the harness can fail)', async () => {
    const fc = (await import('fast-check')).default;
    const throwing = { name: 'throws', arbitrary: fc.nat(), check: () => void JSON.parse('{'), typed: () => false };
    const violating = { name: 'violates', arbitrary: fc.nat(), check: (n: number) => void (n > 5 && assert.fail('big')), typed: () => false };
    const typedOnly = { name: 'typed', arbitrary: fc.nat(), check: () => void JSON.parse('{'), typed: (e: unknown) => e instanceof SyntaxError };
    const t = await fuzzTarget(throwing as never, 50, 1);
    assert.equal(t.throws, 1);
    assert.match(t.problem!, /UntypedThrow: SyntaxError/);
    const v = await fuzzTarget(violating as never, 200, 1);
    // A failed assert is not the target's Violation, but it is no typed error either.
    assert.equal(v.throws + v.failures, 1);
    assert.match(v.problem!, /on input 6 /, 'shrunk to the smallest failing input');
    const ok = await fuzzTarget(typedOnly as never, 20, 1);
    assert.deepEqual([ok.cases, ok.failures, ok.throws, ok.hangs, ok.problem], [20, 0, 0, 0, undefined], 'a typed error is an answer');
  });
});

describe('harden summary', () => {
  test('must-be-0 figures are named when not 0, and the table shows every suite and the total', () => {
    assert.deepEqual(violations({ cases: 10, lost: 0, throws: 2 }), ['untyped throws = 2']);
    const table = summaryTable([
      { name: 'fuzz', figures: { cases: 800, failures: 0, throws: 0, hangs: 0 } },
      { name: 'crashloop', figures: { cases: 5, kills: 5, filesChecked: 40, lost: 1 } },
    ]);
    assert.match(table, /\| cases tried +\| +800 \| +5 \| +805 \| +\|/);
    assert.match(table, /\| lost +\| +- \| +1 \| +1 \| yes: FAILED \|/);
    assert.match(table, /\| stale flags +\| +- \| +- \| +0 \| +yes: ok \|/);
  });
});
