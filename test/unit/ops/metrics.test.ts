import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../../src/config/types.js';
import type { RunSummary } from '../../../src/poll/run.js';
import { emptyState, type State } from '../../../src/poll/state.js';
import { emptyHubState } from '../../../src/poll/backoff.js';
import { Logger, MemorySink } from '../../../src/ops/logger.js';
import { escapeHelp, escapeLabelValue, formatValue, renderMetrics, writeMetricsFile } from '../../../src/ops/metrics.js';
import { afterRun } from '../../../src/ops/after.js';
import { HOUR, MINUTE, SECOND, T0, configFromIni } from '../poll/fixtures.js';

function config(dir = '/srv/fido', extra = ''): Config {
  return configFromIni(
    dir,
    `poll_interval = 1h\n${extra}`,
    `[fido]
hub_address = 2:5020/1
hub_hostname = hub.example.net
[fsx"net\\]
hub_address = 21:1/100@fsxnet
hub_hostname = fsx.example.net
hub_port = 24555`,
  );
}

function summary(over: Partial<RunSummary> = {}): RunSummary {
  return {
    startedAt: T0 - 2500,
    durationMs: 2500,
    considered: 2,
    due: 1,
    polled: 1,
    ok: 1,
    failed: 0,
    skipped: 0,
    bytesSent: 0,
    bytesReceived: 0,
    filesSent: 0,
    filesReceived: 0,
    exitCode: 0,
    plan: [],
    results: [],
    ...over,
  };
}

function state(): State {
  const s = emptyState();
  s.hubs.fido = {
    ...emptyHubState(),
    lastAttempt: T0 - 10 * SECOND,
    lastSuccess: T0 - 10 * SECOND,
    lastResult: { ok: true },
    totals: { sessionsOk: 5, sessionsFailed: 2, filesSent: 3, filesReceived: 4, bytesSent: 1000, bytesReceived: 2000 },
    history: [{ startedAt: T0 - 10 * SECOND, durationMs: 1500, ok: true, filesSent: 1, filesReceived: 1, bytesSent: 10, bytesReceived: 20, extensions: ['GZ', 'CRC'] }],
  };
  return s;
}

/** Sample lines by series text (name + labels) → value. */
function samples(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    assert.ok(!m.has(line.slice(0, i)), `duplicate series ${line.slice(0, i)}`);
    m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

describe('escaping and values', () => {
  test('label values escape backslash, double quote and line feed', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  });
  test('HELP escapes backslash and line feed only', () => {
    assert.equal(escapeHelp('a\\b"c\nd'), 'a\\\\b"c\\nd');
  });
  test('values: integers plain, fractions to ms, specials as Prometheus spells them', () => {
    assert.equal(formatValue(42), '42');
    assert.equal(formatValue(1.23456), '1.235');
    assert.equal(formatValue(NaN), 'NaN');
    assert.equal(formatValue(Infinity), '+Inf');
  });
});

describe('renderMetrics', () => {
  const text = renderMetrics(state(), summary(), config(), T0);
  const s = samples(text);

  test('per-hub gauges and counters with hub labels', () => {
    assert.equal(s.get('fnpoll_hub_last_success_timestamp_seconds{hub="fido"}'), String((T0 - 10 * SECOND) / 1000));
    assert.equal(s.get('fnpoll_hub_consecutive_failures{hub="fido"}'), '0');
    assert.equal(s.get('fnpoll_hub_held{hub="fido"}'), '0');
    assert.equal(s.get('fnpoll_hub_sessions_total{hub="fido",result="ok"}'), '5');
    assert.equal(s.get('fnpoll_hub_sessions_total{hub="fido",result="failed"}'), '2');
    assert.equal(s.get('fnpoll_hub_transferred_bytes_total{hub="fido",direction="sent"}'), '1000');
    assert.equal(s.get('fnpoll_hub_transferred_bytes_total{hub="fido",direction="received"}'), '2000');
    assert.equal(s.get('fnpoll_hub_transferred_files_total{hub="fido",direction="received"}'), '4');
    assert.equal(s.get('fnpoll_hub_last_session_duration_seconds{hub="fido"}'), '1.5');
    assert.equal(s.get('fnpoll_hub_info{hub="fido",address="2:5020/1",host="hub.example.net:24554"}'), '1');
    assert.equal(s.get('fnpoll_hub_last_session_extensions{hub="fido",extensions="GZ CRC"}'), '1');
  });

  test('a looked-up hub (hub_hostname = *) shows the host that answered last, else *', () => {
    const c = configFromIni('/srv/fido', 'poll_interval = 1h', `[fido]\nhub_address = 2:5020/1\nhub_hostname = *`);
    const before = samples(renderMetrics(emptyState(), summary(), c, T0));
    assert.equal(before.get('fnpoll_hub_info{hub="fido",address="2:5020/1",host="*"}'), '1');
    const st = emptyState();
    st.hubs['fido'] = { ...emptyHubState(), reached: { host: 'hub.example.net', port: 24556, source: 'nodelist NODELIST.339 line 4', tls: false } };
    const after = samples(renderMetrics(st, summary(), c, T0));
    assert.equal(after.get('fnpoll_hub_info{hub="fido",address="2:5020/1",host="hub.example.net:24556"}'), '1');
  });

  test('next attempt: last success + poll_frequency (minus the schedule slack)', () => {
    assert.equal(s.get('fnpoll_hub_next_attempt_timestamp_seconds{hub="fido"}'), String((T0 - 10 * SECOND + HOUR - MINUTE) / 1000));
  });

  test('a hub the state does not know: zero counters, never succeeded, due now', () => {
    const hub = 'hub="fsx\\"net\\\\"';
    assert.equal(s.get(`fnpoll_hub_last_success_timestamp_seconds{${hub}}`), '0');
    assert.equal(s.get(`fnpoll_hub_sessions_total{${hub},result="ok"}`), '0');
    assert.equal(s.get(`fnpoll_hub_next_attempt_timestamp_seconds{${hub}}`), String(T0 / 1000));
    assert.equal(s.get(`fnpoll_hub_last_session_duration_seconds{${hub}}`), undefined);
    assert.equal([...s.keys()].some((k) => k.startsWith(`fnpoll_hub_last_session_extensions{${hub}`)), false);
  });

  test('held and in backoff', () => {
    const st = state();
    st.hubs.fido = { ...st.hubs.fido!, consecutiveFailures: 3, heldUntil: T0 + HOUR, nextAttempt: T0 + HOUR };
    const h = samples(renderMetrics(st, summary(), config(), T0));
    assert.equal(h.get('fnpoll_hub_held{hub="fido"}'), '1');
    assert.equal(h.get('fnpoll_hub_consecutive_failures{hub="fido"}'), '3');
    assert.equal(h.get('fnpoll_hub_next_attempt_timestamp_seconds{hub="fido"}'), String((T0 + HOUR) / 1000));
  });

  test('run metrics', () => {
    assert.equal(s.get('fnpoll_run_duration_seconds'), '2.5');
    assert.equal(s.get('fnpoll_run_exit_code'), '0');
    assert.equal(s.get('fnpoll_run_timestamp_seconds'), String(T0 / 1000));
    assert.equal(s.get('fnpoll_run_sessions{result="ok"}'), '1');
    assert.equal(s.get('fnpoll_run_hubs_due'), '1');
    const failedRun = samples(renderMetrics(state(), summary({ exitCode: 143 }), config(), T0));
    assert.equal(failedRun.get('fnpoll_run_exit_code'), '143');
  });

  test('format: one HELP and TYPE per family before its samples, families contiguous, naming conventions', () => {
    const lines = text.trimEnd().split('\n');
    assert.ok(text.endsWith('\n'));
    const seen = new Set<string>();
    let current = '';
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const help = /^# HELP (\S+) \S/.exec(line);
      if (help) {
        const name = help[1]!;
        assert.ok(!seen.has(name), `family ${name} appears twice`);
        seen.add(name);
        const type = /^# TYPE (\S+) (gauge|counter)$/.exec(lines[i + 1] ?? '');
        assert.ok(type && type[1] === name, `TYPE must follow HELP for ${name}`);
        assert.equal(type[2] === 'counter', name.endsWith('_total'), `${name}: _total exactly on counters`);
        assert.match(name, /^fnpoll_[a-z_]+$/);
        current = name;
        i++;
        continue;
      }
      assert.ok(line.startsWith(current), `sample "${line}" outside its family ${current}`);
      assert.match(line, /^[a-z_]+(\{[a-z]+="(?:[^"\\]|\\.)*"(,[a-z]+="(?:[^"\\]|\\.)*")*\})? \S+$/);
    }
    for (const name of seen) {
      if (/(timestamp|duration)/.test(name)) assert.ok(name.endsWith('_seconds'), `${name} needs the _seconds unit`);
    }
  });
});

describe('writeMetricsFile and afterRun', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fnpoll-metrics-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('replaces the file atomically, creates the directory, mode 0644, no temp files left', async () => {
    const file = join(dir, 'textfile', 'fnpoll.prom');
    await writeMetricsFile(file, 'a 1\n');
    await writeMetricsFile(file, 'b 2\n');
    assert.equal(await readFile(file, 'utf8'), 'b 2\n');
    assert.equal((await stat(file)).mode & 0o777, 0o644);
    assert.deepEqual(await readdir(join(dir, 'textfile')), ['fnpoll.prom']);
  });

  test('failure names metrics_file and the path', async () => {
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, '');
    await assert.rejects(writeMetricsFile(join(blocker, 'x.prom'), ''), (err: Error) => {
      assert.equal(err.name, 'IoError');
      assert.match(err.message, /^cannot write metrics_file .*blocker\/x\.prom: /);
      return true;
    });
  });

  test('afterRun writes the file when metrics_file is set, also when nothing was due', async () => {
    const cfg = config(dir, 'metrics_file = m/fnpoll.prom');
    const sink = new MemorySink('debug');
    await afterRun(summary({ due: 0, polled: 0, ok: 0 }), emptyState(), cfg, new Logger([sink]), () => T0);
    const text = await readFile(join(dir, 'm', 'fnpoll.prom'), 'utf8');
    assert.match(text, /^fnpoll_run_hubs_due 0$/m);
    assert.match(text, new RegExp(`^fnpoll_run_timestamp_seconds ${T0 / 1000}$`, 'm'));
  });

  test('afterRun without metrics_file writes nothing; a failed write is logged, not thrown', async () => {
    const sink = new MemorySink('debug');
    await afterRun(summary(), emptyState(), config(dir), new Logger([sink]), () => T0);
    assert.equal(sink.events.length, 0);
    await writeFile(join(dir, 'file'), '');
    const bad = config(dir, 'metrics_file = file/fnpoll.prom');
    await afterRun(summary(), emptyState(), bad, new Logger([sink]), () => T0);
    const errors = sink.events.filter((e) => e.level === 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /metrics_file .*file\/fnpoll\.prom/);
  });
});
