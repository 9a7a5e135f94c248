import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import {
  capFutureTimes,
  cappedText,
  largestPeriod,
  emptyState,
  loadState,
  parseState,
  saveState,
  serializeState,
  type State,
} from '../../../src/poll/state.js';
import { applyOutcome, type SessionOutcome } from '../../../src/poll/backoff.js';
import { IoError } from '../../../src/errors.js';
import { HOUR, T0, makeHub, seededRandom, stats } from './fixtures.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fnpoll-state-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A state with a history, a failure, a hold and a remote message. */
function sampleState(): State {
  const hub = makeHub({ maxRetries: 2 });
  const state = emptyState();
  const ok: SessionOutcome = { ok: true, stats: stats({ filesSent: 2, bytesSent: 4096, extensions: ['GZ', 'CRYPT'] }) };
  const bad: SessionOutcome = { ok: false, kind: 'auth', message: 'password refused', remote: 'Bad password', stats: stats() };
  let s = applyOutcome(undefined, ok, hub, T0, () => 0);
  s = applyOutcome(s, bad, hub, T0 + HOUR, () => 0);
  state.hubs.fido = s;
  state.hubs.other = applyOutcome(applyOutcome(s, bad, hub, T0 + 2 * HOUR, () => 0), ok, hub, T0 + 3 * HOUR, () => 0);
  return state;
}

function collector() {
  const lines: string[] = [];
  return { lines, log: (m: string) => void lines.push(m) };
}

describe('state file format', () => {
  test('round trip: serialize → parse → serialize is stable', () => {
    const text = serializeState(sampleState());
    assert.equal(serializeState(parseState(text)), text);
  });

  test('on disk: version 1, ISO 8601 times, null for unknown', () => {
    const doc = JSON.parse(serializeState(sampleState()));
    assert.equal(doc.version, 1);
    const fido = doc.hubs.fido;
    assert.equal(fido.lastAttempt, '2026-03-01T12:00:00.000Z');
    assert.equal(fido.lastSuccess, '2026-03-01T12:00:00.000Z');
    assert.equal(fido.heldUntil, null);
    assert.equal(fido.history[0].startedAt, '2026-03-01T12:00:00.000Z');
    assert.deepEqual(fido.history[0].extensions, ['GZ', 'CRYPT'], 'the extensions in force, kept per session');
    assert.equal(fido.history[1].extensions, undefined, 'none: not written');
    assert.deepEqual(fido.lastResult, { ok: false, kind: 'auth', message: 'password refused', remote: 'Bad password' });
  });

  test('missing optional fields take defaults', () => {
    const s = parseState('{"version":1,"hubs":{"fido":{"lastSuccess":"2026-03-01T12:00:00Z"}}}');
    assert.equal(s.hubs.fido!.lastSuccess, T0);
    assert.equal(s.hubs.fido!.consecutiveFailures, 0);
    assert.deepEqual(s.hubs.fido!.history, []);
    assert.equal(s.hubs.fido!.totals.sessionsOk, 0);
  });

  test('bad shapes are rejected with the path of the bad field', () => {
    const cases: [string, RegExp][] = [
      ['{', /^not JSON/],
      ['[]', /^document: expected an object/],
      ['{"version":2,"hubs":{}}', /^version: expected 1/],
      ['{"hubs":{}}', /^version: expected 1/],
      ['{"version":1}', /^hubs: expected an object, got undefined/],
      ['{"version":1,"hubs":{"fido":{"lastAttempt":12}}}', /^hubs\["fido"\]\.lastAttempt: expected an ISO 8601 time or null, got 12$/],
      ['{"version":1,"hubs":{"fido":{"lastAttempt":"yesterday"}}}', /lastAttempt: expected an ISO 8601 time/],
      ['{"version":1,"hubs":{"fido":{"consecutiveFailures":-1}}}', /consecutiveFailures: expected a non-negative integer/],
      ['{"version":1,"hubs":{"fido":{"consecutiveFailures":"3"}}}', /consecutiveFailures: expected a non-negative integer, got "3"/],
      ['{"version":1,"hubs":{"fido":{"lastResult":{"ok":false,"kind":"gremlins"}}}}', /lastResult\.kind: expected one of dns\//],
      ['{"version":1,"hubs":{"fido":{"history":{}}}}', /history: expected an array, got an object/],
      ['{"version":1,"hubs":{"fido":{"history":[{"ok":true}]}}}', /history\[0\]\.startedAt: expected an ISO 8601 time/],
      ['{"version":1,"hubs":{"fido":{"totals":{"bytesSent":1.5}}}}', /totals\.bytesSent: expected a non-negative integer/],
      [
        '{"version":1,"hubs":{"fido":{"history":[{"startedAt":"2026-03-01T12:00:00Z","ok":true,"extensions":["GZ","\\u001b[2J"]}]}}}',
        /history\[0\]\.extensions: expected a list of option names/,
      ],
      ['{"version":1,"hubs":{"fido":7}}', /hubs\["fido"\]: expected an object, got 7/],
    ];
    for (const [text, want] of cases) {
      assert.throws(() => parseState(text), (err: Error) => {
        assert.match(err.message, want, text);
        return true;
      });
    }
  });
});

describe('loadState', () => {
  const now = () => Date.UTC(2026, 2, 1, 3, 4, 5);

  test('a missing file is an empty state, silently', async () => {
    const { lines, log } = collector();
    assert.deepEqual(await loadState(join(dir, 'nope.json'), { now, warn: log }), emptyState());
    assert.deepEqual(lines, []);
  });

  test('a valid file loads', async () => {
    const path = join(dir, 'valid.json');
    await writeFile(path, serializeState(sampleState()));
    const { lines, log } = collector();
    const s = await loadState(path, { now, warn: log });
    assert.equal(serializeState(s), serializeState(sampleState()));
    assert.deepEqual(lines, []);
  });

  for (const [label, content] of [
    ['garbage', 'this is \u0000 not json'],
    ['garbage-typed', '{"version":1,"hubs":{"fido":{"lastAttempt":12}}}'],
    ['future version', '{"version":2,"hubs":{}}'],
    ['truncated', serializeState({ version: 1, hubs: { fido: { consecutiveFailures: 1, totals: { sessionsOk: 0, sessionsFailed: 1, filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 }, history: [] } } }).slice(0, 40)],
  ] as const) {
    test(`a ${label} file is quarantined with its content, with a warning, and the run starts empty`, async () => {
      const sub = await mkdtemp(join(dir, 'q-'));
      const path = join(sub, 'state.json');
      await writeFile(path, content);
      const { lines, log } = collector();
      const s = await loadState(path, { now, warn: log });
      assert.deepEqual(s, emptyState());
      const moved = `${path}.corrupt-20260301T030405Z`;
      assert.equal(await readFile(moved, 'utf8'), content);
      assert.deepEqual(await readdir(sub), ['state.json.corrupt-20260301T030405Z']);
      assert.equal(lines.length, 1);
      assert.ok(lines[0]!.includes(path) && lines[0]!.includes(moved), lines[0]);
      assert.ok(!lines[0]!.includes('\n'));
    });
  }

  test('an unreadable file (here: a directory) is moved aside too', async () => {
    const sub = await mkdtemp(join(dir, 'q-'));
    const path = join(sub, 'state.json');
    await mkdir(path);
    const { lines, log } = collector();
    assert.deepEqual(await loadState(path, { now, warn: log }), emptyState());
    assert.deepEqual(await readdir(sub), ['state.json.corrupt-20260301T030405Z']);
    assert.match(lines[0]!, /is invalid \(is a directory, not a regular file\)/);
  });

  test('a second quarantine in the same second does not overwrite the first', async () => {
    const sub = await mkdtemp(join(dir, 'q-'));
    const path = join(sub, 'state.json');
    const { log } = collector();
    await writeFile(path, 'first');
    await loadState(path, { now, warn: log });
    await writeFile(path, 'second');
    await loadState(path, { now, warn: log });
    assert.equal(await readFile(`${path}.corrupt-20260301T030405Z`, 'utf8'), 'first');
    assert.equal(await readFile(`${path}.corrupt-20260301T030405Z-2`, 'utf8'), 'second');
  });
});

describe('saveState', () => {
  test('writes what loadState reads, creating the directory', async () => {
    const path = join(dir, 'new', 'sub', 'state.json');
    await saveState(path, sampleState(), { knownHubs: ['fido', 'other'], info: () => assert.fail('no info expected') });
    const back = await loadState(path, { now: Date.now, warn: (m) => assert.fail(m) });
    assert.equal(serializeState(back), serializeState(sampleState()));
  });

  test('hubs gone from the config are dropped once, with one info line naming them', async () => {
    const path = join(dir, 'prune.json');
    const state = sampleState();
    state.hubs.gone = state.hubs.fido!;
    const { lines, log } = collector();
    await saveState(path, state, { knownHubs: ['fido'], info: log });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /prune\.json: dropped hub\(s\) no longer in the config: other, gone$/);
    assert.deepEqual(Object.keys(state.hubs), ['fido']);
    const onDisk = JSON.parse(await readFile(path, 'utf8'));
    assert.deepEqual(Object.keys(onDisk.hubs), ['fido']);
    await saveState(path, state, { knownHubs: ['fido'], info: log });
    assert.equal(lines.length, 1);
  });

  test('a save that cannot be written throws IoError naming the file', async () => {
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, 'x');
    const path = join(blocker, 'state.json');
    await assert.rejects(saveState(path, emptyState(), { knownHubs: [], info: () => {} }), (err: Error) => {
      assert.ok(err instanceof IoError);
      assert.ok(err.message.includes(path), err.message);
      return true;
    });
  });

  test('kill -9 during saves leaves the old or the new file, never a torn one', async () => {
    const path = join(dir, 'killed.json');
    const stateUrl = new URL('../../../src/poll/state.js', import.meta.url).href;
    // The child saves a ~100 KiB state (many hubs with full histories) in a loop, changing it each
    // time, and says "ready" once the first save is on disk.
    const child = `
      const { saveState } = await import(${JSON.stringify(stateUrl)});
      const path = ${JSON.stringify(path)};
      const entry = (i) => ({ startedAt: ${T0} + i, durationMs: i, ok: i % 2 === 0, filesSent: i, filesReceived: 0, bytesSent: i * 10, bytesReceived: 0 });
      const hubs = {};
      for (let h = 0; h < 60; h++) hubs['hub' + h] = { consecutiveFailures: 0, lastAttempt: ${T0}, totals: { sessionsOk: 0, sessionsFailed: 0, filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 }, history: [] };
      const state = { version: 1, hubs };
      const known = Object.keys(hubs);
      for (let i = 0; ; i++) {
        for (const h of known) { const s = hubs[h]; s.consecutiveFailures = i; s.totals.sessionsOk = i; s.history = Array.from({ length: 10 }, (_, k) => entry(i + k)); }
        await saveState(path, state, { knownHubs: known, info() {} });
        if (i === 0) process.stdout.write('ready\\n');
      }
    `;
    const random = seededRandom(7);
    const seen = new Set<number>();
    for (let round = 0; round < 20; round++) {
      const proc = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit'] });
      await once(proc.stdout, 'data');
      // Kill at a random moment into the save loop (not a timing assertion: any moment must do).
      await new Promise((r) => setTimeout(r, Math.floor(random() * 25)));
      proc.kill('SIGKILL');
      await once(proc, 'exit');
      const text = await readFile(path, 'utf8');
      const state = parseState(text); // throws on a torn file
      assert.equal(Object.keys(state.hubs).length, 60);
      seen.add(state.hubs.hub0!.consecutiveFailures);
      const warnings: string[] = [];
      await loadState(path, { now: Date.now, warn: (m) => void warnings.push(m) });
      assert.deepEqual(warnings, []);
    }
    // The saves really were interrupted at different points of the loop.
    assert.ok(seen.size > 1, `always the same save: ${[...seen].join(',')}`);
  });
});



describe('times from the future (issue 11, defect 7)', () => {
  test('past events are capped to now, scheduled times to now + the largest configured period', () => {
    const hubs = [makeHub({ pollFrequency: HOUR, retryMax: 6 * HOUR, holdTime: 4 * HOUR }), makeHub({ name: 'B', pollFrequency: 2 * HOUR })];
    const max = largestPeriod(hubs);
    assert.equal(max, 6 * HOUR);
    // Through the file format, so the hubs share no objects.
    const state = parseState(serializeState(sampleState()));
    const future = Date.parse('9999-12-31T00:00:00Z');
    const fido = state.hubs.fido!;
    fido.lastAttempt = future;
    fido.lastSuccess = T0 + 30_000; // within the slack: clock jitter, left alone
    fido.nextAttempt = future;
    fido.heldUntil = T0 + max; // as far as the config can schedule: fine
    fido.history[0]!.startedAt = future;
    const before = structuredClone(state.hubs.other);
    const capped = capFutureTimes(state, T0, max);
    assert.deepEqual(
      capped.map((c) => [c.hub, c.field, c.now]),
      [
        ['fido', 'lastAttempt', T0],
        ['fido', 'nextAttempt', T0 + max],
        ['fido', 'history[0].startedAt', T0],
      ],
    );
    assert.equal(fido.lastAttempt, T0);
    assert.equal(fido.lastSuccess, T0 + 30_000);
    assert.equal(fido.nextAttempt, T0 + max);
    assert.equal(fido.heldUntil, T0 + max);
    assert.deepEqual(state.hubs.other, before, 'a sane hub is untouched');
    assert.match(cappedText('/s.json', capped[1]!), /^state file \/s\.json: hubs\["fido"\]\.nextAttempt 9999-12-31T00:00:00\.000Z lies in the future .*capped to /);
    assert.deepEqual(capFutureTimes(state, T0, max), [], 'capping is idempotent');
  });
});
