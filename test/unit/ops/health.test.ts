import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../../src/config/types.js';
import { emptyState, serializeState, type State } from '../../../src/poll/state.js';
import { emptyHubState } from '../../../src/poll/backoff.js';
import type { LockStatus } from '../../../src/poll/lock.js';
import { HealthStatus, evaluateHealth, lockProblem, perfLabel, thresholds, unknownLine } from '../../../src/ops/health.js';
import { commandHealth } from '../../../src/commands/health.js';
import { HOUR, MINUTE, T0, configFromIni } from '../poll/fixtures.js';

function config(extra = '', hubs?: string, dir = '/srv/fido'): Config {
  const fallback = `[fido]
hub_address = 2:5020/1
hub_hostname = hub.example.net
[fsx net]
hub_address = 21:1/100@fsxnet
hub_hostname = fsx.example.net
poll_frequency = 30m`;
  return configFromIni(dir, `poll_interval = 1h\n${extra}`, hubs ?? fallback);
}

/** Both hubs polled successfully `ago` before T0. */
function state(agoFido: number, agoFsx: number): State {
  const s = emptyState();
  s.hubs.fido = { ...emptyHubState(), lastAttempt: T0 - agoFido, lastSuccess: T0 - agoFido, lastResult: { ok: true } };
  s.hubs['fsx net'] = { ...emptyHubState(), lastAttempt: T0 - agoFsx, lastSuccess: T0 - agoFsx, lastResult: { ok: true } };
  return s;
}

describe('thresholds', () => {
  test('default 2x and 6x the hub poll_frequency; configured values win', () => {
    const c = config();
    assert.deepEqual(thresholds(c.hubs[1]!, c), { warnMs: HOUR, critMs: 3 * HOUR });
    const c2 = config('warn_after = 5h\ncrit_after = 1d');
    assert.deepEqual(thresholds(c2.hubs[1]!, c2), { warnMs: 5 * HOUR, critMs: 24 * HOUR });
  });
  test('poll_frequency 0 (not from the loader, but HubConfig allows it) without thresholds: not judged', () => {
    const c = config();
    c.hubs[0]!.pollFrequency = 0;
    assert.deepEqual(thresholds(c.hubs[0]!, c), { warnMs: undefined, critMs: undefined });
    const s = state(30 * 24 * HOUR, 0);
    assert.equal(evaluateHealth({ config: c, state: s, now: T0 }).status, HealthStatus.OK);
  });
});

describe('evaluateHealth', () => {
  test('OK: one line with valid perfdata per hub', () => {
    const r = evaluateHealth({ config: config(), state: state(2 * MINUTE, 20 * MINUTE), now: T0 });
    assert.equal(r.status, HealthStatus.OK);
    assert.equal(r.line, 'FNPOLL OK - 2 hubs ok | fido_age=120s;7200;21600;0 fido_failures=0;;;0 fsx_net_age=1200s;3600;10800;0 fsx_net_failures=0;;;0');
  });

  test('WARNING past warn_after, CRITICAL past crit_after, worst listed first', () => {
    const warn = evaluateHealth({ config: config(), state: state(3 * HOUR, 20 * MINUTE), now: T0 });
    assert.equal(warn.status, HealthStatus.WARNING);
    assert.match(warn.line, /^FNPOLL WARNING - fido last success 3h ago \(warn 2h\); 1 hub ok \| /);
    const s = state(3 * HOUR, 4 * HOUR);
    s.hubs['fsx net']!.consecutiveFailures = 5;
    const crit = evaluateHealth({ config: config(), state: s, now: T0 });
    assert.equal(crit.status, HealthStatus.CRITICAL);
    assert.match(crit.line, /^FNPOLL CRITICAL - fsx net last success 4h ago \(crit 3h, 5 failures since\); fido last success 3h ago \(warn 2h\); 0 hubs ok \| /);
  });

  test('a held hub is CRITICAL even when its last success is recent', () => {
    const s = state(10 * MINUTE, 10 * MINUTE);
    s.hubs.fido = { ...s.hubs.fido!, consecutiveFailures: 4, heldUntil: T0 + HOUR };
    const r = evaluateHealth({ config: config(), state: s, now: T0 });
    assert.equal(r.status, HealthStatus.CRITICAL);
    assert.match(r.line, /fido held until .* after 4 failures/);
  });

  test('never polled: WARNING and perfdata U; never succeeded: age from the oldest attempt on record', () => {
    const fresh = evaluateHealth({ config: config(), state: emptyState(), now: T0 });
    assert.equal(fresh.status, HealthStatus.WARNING);
    assert.match(fresh.line, /fido never polled; fsx net never polled; 0 hubs ok \| fido_age=U;7200;21600;0/);
    const s = emptyState();
    s.hubs.fido = {
      ...emptyHubState(),
      lastAttempt: T0 - MINUTE,
      consecutiveFailures: 2,
      history: [
        { startedAt: T0 - 7 * HOUR, durationMs: 1, ok: false, kind: 'refused', filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 },
        { startedAt: T0 - MINUTE, durationMs: 1, ok: false, kind: 'refused', filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 },
      ],
    };
    s.hubs['fsx net'] = state(0, 0).hubs['fsx net']!;
    const r = evaluateHealth({ config: config(), state: s, now: T0 });
    assert.equal(r.status, HealthStatus.CRITICAL);
    assert.match(r.line, /fido no success yet, first attempt 7h ago \(crit 6h, 2 failures since\)/);
  });

  test('never OK before a first success, even inside warn_after', () => {
    const s = state(0, 0);
    s.hubs.fido = {
      ...emptyHubState(),
      lastAttempt: T0 - MINUTE,
      consecutiveFailures: 1,
      lastResult: { ok: false, kind: 'refused', message: 'connection refused' },
      history: [{ startedAt: T0 - MINUTE, durationMs: 1, ok: false, kind: 'refused', filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 }],
    };
    const r = evaluateHealth({ config: config(), state: s, now: T0 });
    assert.equal(r.status, HealthStatus.WARNING);
    assert.match(r.line, /^FNPOLL WARNING - fido no success yet, first attempt 1m ago, never succeeded, 1 failure since; 1 hub ok \| /);
  });

  test('a last attempt that failed on authentication is CRITICAL, however recent the last success', () => {
    const s = state(5 * MINUTE, 5 * MINUTE);
    s.hubs.fido = { ...s.hubs.fido!, lastAttempt: T0 - MINUTE, consecutiveFailures: 2, lastResult: { ok: false, kind: 'auth', message: 'bad password', remote: 'Incorrect password' } };
    const r = evaluateHealth({ config: config(), state: s, now: T0 });
    assert.equal(r.status, HealthStatus.CRITICAL);
    assert.match(r.line, /fido authentication failed 2 times \(Incorrect password\); fix the password, then fnpoll reset fido/);
  });

  test('a hub on hold by a .hld is reported as held, not as old', () => {
    const s = state(3 * HOUR, 10 * MINUTE);
    const r = evaluateHealth({ config: config(), state: s, now: T0, holds: new Map([['fido', T0 + HOUR]]) });
    assert.equal(r.status, HealthStatus.WARNING);
    assert.match(r.line, /fido on hold until 2026-\S+Z \(\.hld\)/);
    assert.doesNotMatch(r.line, /fido last success/);
    const expired = evaluateHealth({ config: config(), state: state(10 * MINUTE, 10 * MINUTE), now: T0, holds: new Map([['fido', T0 - 1]]) });
    assert.equal(expired.status, HealthStatus.OK);
  });

  test('stale or orphaned lock: WARNING; a live lock in a running run: OK', () => {
    const lock = (over: Partial<LockStatus>): LockStatus => ({
      lockFile: '/var/lib/fnpoll/state.json.lock',
      refreshedAt: T0 - 5000,
      stale: false,
      owner: { pid: 4242, host: hostname(), startedAt: T0 - MINUTE },
      ownerAlive: true,
      ...over,
    });
    const c = config();
    const st = state(MINUTE, MINUTE);
    assert.equal(evaluateHealth({ config: c, state: st, lock: lock({}), now: T0 }).status, HealthStatus.OK);
    const dead = evaluateHealth({ config: c, state: st, lock: lock({ ownerAlive: false }), now: T0 });
    assert.equal(dead.status, HealthStatus.WARNING);
    assert.match(dead.line, /run lock \/var\/lib\/fnpoll\/state\.json\.lock left by pid 4242, which is gone/);
    const stale = lockProblem(lock({ stale: true, ownerAlive: undefined, refreshedAt: T0 - 10 * MINUTE }), c, T0);
    assert.equal(stale, 'run lock /var/lib/fnpoll/state.json.lock is stale (not refreshed for 10m)');
    const hung = lockProblem(lock({ owner: { pid: 4242, host: hostname(), startedAt: T0 - 2 * HOUR } }), c, T0);
    assert.match(hung ?? '', /held by pid 4242 for 2h \(a run ends within 16m\)/);
  });

  test('no hubs, or a problem with the inputs: UNKNOWN', () => {
    const none = evaluateHealth({ config: config('', ''), state: emptyState(), now: T0 });
    assert.equal(none.status, HealthStatus.UNKNOWN);
    assert.equal(none.line, 'FNPOLL UNKNOWN - no hubs configured in /srv/fido/fnpoll.ini');
    const bad = evaluateHealth({ config: config(), state: state(0, 0), now: T0, inputProblems: ['state file x is invalid'] });
    assert.equal(bad.status, HealthStatus.UNKNOWN);
  });

  test('labels are safe for perfdata; the text part has no "|" and no newline', () => {
    assert.equal(perfLabel("a b'c=d|é"), 'a_b_c_d__');
    assert.equal(unknownLine('x | y\nz'), 'FNPOLL UNKNOWN - x / y; z');
  });
});

describe('commandHealth', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fnpoll-health-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
  }

  test('reads the state file and exits with the plugin status', async () => {
    const file = join(dir, 'ok.ini');
    await writeFile(file, `[node]\naddress = 2:5020/1234\noutbound = out\ninbound = in\n[poller]\nstate_file = ok-state.json\n[fido]\nhub_address = 2:5020/1\nhub_hostname = h.example.net\n`);
    const s = emptyState();
    s.hubs.fido = { ...emptyHubState(), lastAttempt: T0 - 3 * HOUR, lastSuccess: T0 - 3 * HOUR, lastResult: { ok: true } };
    await writeFile(join(dir, 'ok-state.json'), serializeState(s));
    const o = io();
    const code = await commandHealth({ config: file }, o.io, () => T0);
    assert.equal(code, HealthStatus.WARNING);
    assert.deepEqual(o.out, ['FNPOLL WARNING - fido last success 3h ago (warn 2h); 0 hubs ok | fido_age=10800s;7200;21600;0 fido_failures=0;;;0\n']);
  });

  test('a hub whose state lies in the future is never OK (issue 11, defect 7)', async () => {
    const file = join(dir, 'future.ini');
    await writeFile(file, `[node]\naddress = 2:5020/1234\noutbound = out\ninbound = in\n[poller]\nstate_file = future-state.json\n[fido]\nhub_address = 2:5020/1\nhub_hostname = h.example.net\n`);
    const s = emptyState();
    const future = Date.parse('9999-01-01T00:00:00Z');
    s.hubs.fido = { ...emptyHubState(), lastAttempt: future, lastSuccess: future, nextAttempt: future, lastResult: { ok: true } };
    await writeFile(join(dir, 'future-state.json'), serializeState(s));
    const o = io();
    assert.equal(await commandHealth({ config: file }, o.io, () => T0), HealthStatus.WARNING);
    assert.match(o.out[0]!, /^FNPOLL WARNING - fido: lastAttempt 9999-01-01T00:00:00\.000Z lies in the future/);
  });

  test('an invalid config is UNKNOWN (3), not 78, in one line', async () => {
    const file = join(dir, 'bad.ini');
    await writeFile(file, `[node]\naddress = nonsense\n[fido]\nhub_address = 2:5020/x\n`);
    const o = io();
    const code = await commandHealth({ config: file }, o.io, () => T0);
    assert.equal(code, 3);
    assert.equal(o.out.length, 1);
    assert.match(o.out[0]!, /^FNPOLL UNKNOWN - .*bad\.ini.*address.*nonsense[^\n]*\n$/);
  });

  test('a missing config file and an invalid state file are UNKNOWN too', async () => {
    const o = io();
    assert.equal(await commandHealth({ config: join(dir, 'missing.ini') }, o.io, () => T0), 3);
    assert.match(o.out[0]!, /^FNPOLL UNKNOWN - .*missing\.ini/);
    const file = join(dir, 'corrupt.ini');
    await writeFile(file, `[node]\naddress = 2:5020/1234\noutbound = out\ninbound = in\n[poller]\nstate_file = corrupt.json\n[fido]\nhub_address = 2:5020/1\nhub_hostname = h.example.net\n`);
    await writeFile(join(dir, 'corrupt.json'), '{not json');
    const o2 = io();
    assert.equal(await commandHealth({ config: file }, o2.io, () => T0), 3);
    assert.match(o2.out[0]!, /^FNPOLL UNKNOWN - state file .*corrupt\.json is invalid/);
  });

  test('a lock left by a dead process is a WARNING', async () => {
    const file = join(dir, 'lock.ini');
    await writeFile(file, `[node]\naddress = 2:5020/1234\noutbound = out\ninbound = in\n[poller]\nstate_file = lock-state.json\n[fido]\nhub_address = 2:5020/1\nhub_hostname = h.example.net\n`);
    const s = emptyState();
    s.hubs.fido = { ...emptyHubState(), lastAttempt: Date.now(), lastSuccess: Date.now(), lastResult: { ok: true } };
    await writeFile(join(dir, 'lock-state.json'), serializeState(s));
    await mkdir(join(dir, 'lock-state.json.lock'));
    // pid 2^22+1 is above Linux's pid_max limit: no such process.
    await writeFile(join(dir, 'lock-state.json.lock.info'), JSON.stringify({ pid: 4194305, host: hostname(), startedAt: new Date().toISOString() }));
    const o = io();
    assert.equal(await commandHealth({ config: file }, o.io), HealthStatus.WARNING);
    assert.match(o.out[0]!, /run lock .*lock-state\.json\.lock left by pid 4194305, which is gone/);
  });
});
