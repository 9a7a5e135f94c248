import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatStatusTable,
  statusJson,
  statusRows,
} from '../../../src/poll/status.js';
import { planRun } from '../../../src/poll/schedule.js';
import { emptyHubState } from '../../../src/poll/backoff.js';
import { emptyState } from '../../../src/poll/state.js';
import type { QueueSummary } from '../../../src/bso/types.js';
import { parseAddress } from '../../../src/ftn/address.js';
import { HOUR, MINUTE, T0, makeHub, queue } from './fixtures.js';

function fixture() {
  const fido = makeHub({ name: 'Fido' });
  const other = makeHub({ name: 'Other', address: parseAddress('21:1/100@fsxnet') });
  const fresh = makeHub({ name: 'Fresh', address: parseAddress('2:5020/2') });
  const state = emptyState();
  state.hubs.fido = {
    ...emptyHubState(),
    lastAttempt: T0 - 3 * MINUTE,
    lastSuccess: T0 - 3 * MINUTE,
    lastResult: { ok: true },
  };
  state.hubs.other = {
    ...emptyHubState(),
    lastAttempt: T0 - 5 * MINUTE,
    lastSuccess: T0 - (2 * HOUR + 5 * MINUTE),
    lastResult: { ok: false, kind: 'auth', message: 'hub refused our password', remote: 'Bad password' },
    consecutiveFailures: 3,
    nextAttempt: T0 + 12 * MINUTE,
    heldUntil: T0 + 12 * MINUTE,
  };
  const queued = new Map<string, QueueSummary>([['fido', queue({ files: 3, bytes: 12 * 1024, flavour: 'crash' })]]);
  const plan = planRun({ config: { hubs: [fido, other, fresh] }, state, queued, busy: new Map(), now: T0 });
  return { plan, state, queued };
}

describe('statusRows (fnpoll status --json)', () => {
  test('exact field names and order, ISO 8601 times, nulls when unknown', () => {
    const { plan, state, queued } = fixture();
    const json = JSON.parse(JSON.stringify(statusJson(statusRows(plan, state, queued, T0))));
    assert.deepEqual(Object.keys(json), ['hubs']);
    for (const row of json.hubs) {
      assert.deepEqual(Object.keys(row), [
        'name',
        'address',
        'due',
        'reason',
        'lastAttempt',
        'lastSuccess',
        'lastResult',
        'consecutiveFailures',
        'nextAttempt',
        'heldUntil',
        'queued',
        'host',
        'reached',
      ]);
      assert.deepEqual(Object.keys(row.queued), ['files', 'bytes', 'flavour']);
    }
    assert.deepEqual(json.hubs[0], {
      name: 'Fido',
      address: '2:5020/1@fidonet',
      due: true,
      reason: 'crash mail queued (3 files, 12 KiB)',
      lastAttempt: '2026-03-01T11:57:00.000Z',
      lastSuccess: '2026-03-01T11:57:00.000Z',
      lastResult: { ok: true, kind: null, message: null, remote: null },
      consecutiveFailures: 0,
      nextAttempt: '2026-03-01T12:00:00.000Z',
      heldUntil: null,
      queued: { files: 3, bytes: 12288, flavour: 'crash' },
      host: null,
      reached: null,
    });
    assert.deepEqual(json.hubs[1], {
      name: 'Other',
      address: '21:1/100@fsxnet',
      due: false,
      reason: 'held until 2026-03-01 12:12:00 after 3 failures (auth)',
      lastAttempt: '2026-03-01T11:55:00.000Z',
      lastSuccess: '2026-03-01T09:55:00.000Z',
      lastResult: { ok: false, kind: 'auth', message: 'hub refused our password', remote: 'Bad password' },
      consecutiveFailures: 3,
      nextAttempt: '2026-03-01T12:12:00.000Z',
      heldUntil: '2026-03-01T12:12:00.000Z',
      queued: { files: 0, bytes: 0, flavour: null },
      host: null,
      reached: null,
    });
    assert.deepEqual(json.hubs[2], {
      name: 'Fresh',
      address: '2:5020/2',
      due: true,
      reason: 'never polled successfully',
      lastAttempt: null,
      lastSuccess: null,
      lastResult: null,
      consecutiveFailures: 0,
      nextAttempt: '2026-03-01T12:00:00.000Z',
      heldUntil: null,
      queued: { files: 0, bytes: 0, flavour: null },
      host: null,
      reached: null,
    });
  });

  test('a hold that has expired is not reported', () => {
    const { plan, state, queued } = fixture();
    const rows = statusRows(plan, state, queued, T0 + HOUR);
    assert.equal(rows[1]!.heldUntil, null);
  });
});

describe('formatStatusTable', () => {
  test('aligned columns with ages, queue, hold and the reason', () => {
    const { plan, state, queued } = fixture();
    const table = formatStatusTable(statusRows(plan, state, queued, T0), T0);
    const lines = table.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    assert.ok(table.endsWith('\n'));
    const header = lines[0]!;
    // Every column starts at the same offset in every line (all but the last are padded).
    for (const col of ['ADDRESS', 'HOST', 'LAST RESULT', 'LAST OK', 'FAILS', 'QUEUED', 'HELD UNTIL', 'NEXT ATTEMPT']) {
      const at = header.indexOf(col);
      assert.ok(at > 0, col);
      for (const line of lines.slice(1)) assert.equal(line[at - 1], ' ', `${col} misaligned in: ${line}`);
      for (const line of lines.slice(1)) assert.notEqual(line[at], ' ', `${col} empty in: ${line}`);
    }
    const [, fido, other, fresh] = lines as [string, string, string, string];
    assert.match(fido, /^Fido\s+2:5020\/1@fidonet\s+-\s+ok 3m ago\s+3m ago\s+0\s+3 files, 12 KiB, crash\s+-\s+due now \(crash mail queued \(3 files, 12 KiB\)\)$/);
    assert.match(other, /auth 5m ago \(Bad password\)\s+2h 5m ago\s+3\s+-\s+2026-03-01 12:12:00\s+in 12m \(held until/);
    assert.match(fresh, /^Fresh\s+2:5020\/2\s+-\s+-\s+never\s+0\s+-\s+-\s+due now \(never polled successfully\)$/);
  });

  test('no hubs', () => {
    assert.equal(formatStatusTable([], T0), 'no hubs configured\n');
  });
});
