/** The bench's arithmetic and table: what `npm run bench` reports is only as good as these. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { dropNodeStartEnv, envInt, formatTable, linearFit, median, readSettings, fmtMs, type Row } from '../../bench/lib.js';

describe('bench statistics', () => {
  test('median of odd and even counts, order-independent, input untouched', () => {
    const xs = [5, 1, 4];
    assert.equal(median(xs), 4);
    assert.deepEqual(xs, [5, 1, 4]);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
    assert.throws(() => median([]), RangeError);
  });

  test('linearFit recovers a line and reports how well it fits', () => {
    const fit = linearFit([100, 1000, 5000], [150, 600, 2600]);
    assert.ok(Math.abs(fit.slope - 0.5) < 1e-9);
    assert.ok(Math.abs(fit.intercept - 100) < 1e-9);
    assert.ok(Math.abs(fit.r2 - 1) < 1e-12);
    const bent = linearFit([1, 2, 3, 4], [1, 4, 9, 16]);
    assert.ok(bent.r2 < 1);
    assert.throws(() => linearFit([1], [1]), RangeError);
  });

  test('fmtMs picks a readable unit', () => {
    assert.equal(fmtMs(12.34), '12.3 ms');
    assert.equal(fmtMs(345.6), '346 ms');
    assert.equal(fmtMs(1234), '1.23 s');
    assert.equal(fmtMs(65_000), '65.0 s');
  });
});

describe('bench settings', () => {
  test('defaults, small scale, and bad values named', () => {
    const full = readSettings({ FNPOLL_BENCH_DIR: '/somewhere' });
    assert.equal(full.scale, 'full');
    assert.equal(full.rounds, 3);
    assert.equal(full.dir, '/somewhere');
    assert.equal(full.only, undefined);
    const small = readSettings({ FNPOLL_BENCH_SCALE: 'SMALL', FNPOLL_BENCH_ONLY: 'idle, planning', FNPOLL_BENCH_DIR: '/x' });
    assert.equal(small.scale, 'small');
    assert.equal(small.rounds, 1);
    assert.deepEqual([...small.only!], ['idle', 'planning']);
    assert.throws(() => readSettings({ FNPOLL_BENCH_SCALE: 'huge' }), /FNPOLL_BENCH_SCALE="huge"/);
    assert.throws(() => envInt({ N: '0' }, 'N', 3), /N="0" is not a whole number >= 1/);
    assert.equal(envInt({}, 'N', 3), 3);
  });

  test('the variables Node acts on at start are removed, as cron starts programs, unless kept', () => {
    const env: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: '/certs.pem', NODE_OPTIONS: '--trace-gc', PATH: '/bin', FNPOLL_X: '1' };
    assert.deepEqual(dropNodeStartEnv(env), ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS']);
    assert.deepEqual(env, { PATH: '/bin', FNPOLL_X: '1' });
    const kept: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: '/certs.pem', FNPOLL_BENCH_NODE_ENV: 'keep' };
    assert.deepEqual(dropNodeStartEnv(kept), []);
    assert.equal(kept['NODE_EXTRA_CA_CERTS'], '/certs.pem');
    assert.throws(() => dropNodeStartEnv({ FNPOLL_BENCH_NODE_ENV: 'yes' }), /FNPOLL_BENCH_NODE_ENV="yes" is not "keep"/);
  });
});

describe('bench table', () => {
  test('aligned Markdown with verdicts', () => {
    const rows: Row[] = [
      { id: '1a', what: 'send', fnpoll: '1.00 s', baseline: '2.00 s', ratio: '0.50', target: '≤ 0.7', met: true },
      { id: '2', what: 'idle run', fnpoll: '90 ms', baseline: '50 ms', ratio: '1.80', target: '≤ 1.5', met: false },
      { id: '3', what: 'info', fnpoll: '1', baseline: '-', ratio: '-', target: '-', met: undefined },
    ];
    const lines = formatTable(rows).split('\n');
    assert.equal(lines.length, 5);
    assert.ok(lines.every((l) => l.length === lines[0]!.length), 'columns aligned');
    assert.match(lines[0]!, /^\| # +\| benchmark +\| fnpoll +\| baseline +\| ratio +\| target +\| result \|$/);
    assert.match(lines[1]!, /^\|-+\|/);
    assert.match(lines[2]!, /\| met +\|$/);
    assert.match(lines[3]!, /\| MISSED \|$/);
    assert.match(lines[4]!, /\| - +\|$/);
  });
});
