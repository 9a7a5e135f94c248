import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyState, serializeState, type State, type HistoryEntry } from '../../../src/poll/state.js';
import { emptyHubState } from '../../../src/poll/backoff.js';
import { commandStats, formatStats, hubStats } from '../../../src/commands/stats.js';
import { SECOND, T0, makeHub } from '../poll/fixtures.js';

function entry(over: Partial<HistoryEntry>): HistoryEntry {
  return { startedAt: T0, durationMs: 2 * SECOND, ok: true, filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0, ...over };
}

function state(): State {
  const s = emptyState();
  s.hubs.fido = {
    ...emptyHubState(),
    totals: { sessionsOk: 3, sessionsFailed: 1, filesSent: 7, filesReceived: 9, bytesSent: 70_000, bytesReceived: 90_000 },
    history: [
      entry({ startedAt: T0 - 3000 * SECOND, durationMs: 4 * SECOND, filesSent: 1, bytesSent: 4096, filesReceived: 2, bytesReceived: 8192 }),
      entry({ startedAt: T0 - 2000 * SECOND, durationMs: 1 * SECOND, ok: false, kind: 'refused', message: 'connection refused' }),
      entry({ startedAt: T0 - 1000 * SECOND, durationMs: 3 * SECOND, filesReceived: 1, bytesReceived: 12_288, extensions: ['GZ', 'CRYPT'] }),
    ],
  };
  return s;
}

describe('hubStats', () => {
  test('totals, success ratio, averages over the history', () => {
    const st = hubStats(makeHub({ name: 'Fido' }), state());
    assert.deepEqual(st.totals, { sessions: 4, sessionsOk: 3, sessionsFailed: 1, filesSent: 7, filesReceived: 9, bytesSent: 70_000, bytesReceived: 90_000 });
    assert.equal(st.successRatio, 0.75);
    assert.equal(st.averageSessionSeconds, 2.667);
    // (4096 + 8192 + 12288) bytes over 8 s of session time
    assert.equal(st.averageBytesPerSecond, 3072);
    assert.equal(st.recent.length, 3);
    assert.deepEqual(st.recent[1], {
      startedAt: new Date(T0 - 2000 * SECOND).toISOString(),
      durationSeconds: 1,
      ok: false,
      kind: 'refused',
      message: 'connection refused',
      filesSent: 0,
      filesReceived: 0,
      bytesSent: 0,
      bytesReceived: 0,
      extensions: [],
    });
    assert.deepEqual(st.recent[2]!.extensions, ['GZ', 'CRYPT'], 'the extensions in force, per session');
  });

  test('a hub without sessions: zeros and nulls, never NaN', () => {
    const st = hubStats(makeHub({ name: 'New' }), emptyState());
    assert.equal(st.totals.sessions, 0);
    assert.equal(st.successRatio, null);
    assert.equal(st.averageSessionSeconds, null);
    assert.equal(st.averageBytesPerSecond, null);
    assert.deepEqual(st.recent, []);
    assert.match(formatStats([st]), /^New \(2:5020\/1@fidonet\)\n  sessions  0 \(0 ok, 0 failed\)\n.*\n.*\n  no sessions yet\n$/);
  });
});

describe('formatStats', () => {
  test('human report: newest session first', () => {
    const text = formatStats([hubStats(makeHub({ name: 'Fido' }), state())]);
    const lines = text.split('\n');
    assert.deepEqual(lines.slice(0, 6), [
      'Fido (2:5020/1@fidonet)',
      '  sessions  4 (3 ok, 1 failed, 75% ok)',
      '  sent      7 files, 68 KiB',
      '  received  9 files, 87 KiB',
      '  average   2.7 s per session, 3 KiB/s (last 3 sessions)',
      '  last sessions:',
    ]);
    assert.match(lines[6]!, /^ {4}2026-03-01 11:43:20 {2}ok {6}\s+3\.0 s {2}sent 0 files 0 B, received 1 file 12 KiB {2}\[GZ CRYPT\]$/);
    assert.match(lines[7]!, /failed\s+1\.0 s {2}refused: connection refused$/);
    assert.ok(text.endsWith('\n'));
  });
});

describe('commandStats', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fnpoll-stats-'));
    file = join(dir, 'fnpoll.ini');
    await writeFile(
      file,
      `[node]\naddress = 2:5020/1234\noutbound = out\ninbound = in\n[poller]\nstate_file = state.json\n[fido]\nhub_address = 2:5020/1\nhub_hostname = h.example.net\n[other]\nhub_address = 2:5020/2\nhub_hostname = o.example.net\n`,
    );
    await writeFile(join(dir, 'state.json'), serializeState(state()));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
  }

  test('--json for one hub, selected by name or address; the state file is left alone', async () => {
    const before = await readFile(join(dir, 'state.json'), 'utf8');
    for (const sel of ['fido', '2:5020/1']) {
      const o = io();
      assert.equal(await commandStats(sel, { config: file, json: true }, o.io), 0);
      const doc = JSON.parse(o.out.join('')) as { hubs: { name: string; successRatio: number; recent: unknown[] }[] };
      assert.deepEqual(doc.hubs.map((h) => h.name), ['fido']);
      assert.equal(doc.hubs[0]!.successRatio, 0.75);
      assert.equal(doc.hubs[0]!.recent.length, 3);
    }
    assert.equal(await readFile(join(dir, 'state.json'), 'utf8'), before);
  });

  test('all hubs without a selector', async () => {
    const o = io();
    await commandStats(undefined, { config: file }, o.io);
    assert.match(o.out.join(''), /^fido \(2:5020\/1\)\n[\s\S]*\n\nother \(2:5020\/2\)\n[\s\S]*no sessions yet\n$/);
  });

  test('an unknown hub is a usage error naming the known ones', async () => {
    await assert.rejects(commandStats('nope', { config: file }, io().io), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 64);
      assert.match(err.message, /unknown hub "nope" \(known hubs: fido, other\)/);
      return true;
    });
  });
});
