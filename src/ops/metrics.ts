/**
 * `metrics_file`: the run's state as a Prometheus text file for node_exporter's textfile
 * collector (text exposition format 0.0.4), written at the end of every run — also when nothing
 * was due, so that `fnpoll_run_timestamp_seconds` shows cron is alive.
 *
 * Conventions (prometheus.io "Metric and label naming"): `fnpoll_` prefix, base units (seconds,
 * bytes), `_total` on counters only, one HELP and one TYPE line per family, samples of a family
 * together. Per-hub families carry a `hub` label (the section name); `fnpoll_hub_info` maps it to
 * the address, so address changes do not start new series everywhere.
 *
 * The counters come from the state file's cumulative totals: they restart from 0 when the state
 * file is reset, which Prometheus' rate() treats as an ordinary counter reset.
 */
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Config } from '../config/types.js';
import { IoError, errorText } from '../errors.js';
import { makeDirs } from '../dirs.js';
import { formatAddress } from '../ftn/address.js';
import type { RunSummary } from '../poll/run.js';
import { planHub } from '../poll/schedule.js';
import type { State } from '../poll/state.js';

type MetricType = 'gauge' | 'counter';

interface Sample {
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

/** Label values: backslash, double quote and line feed are escaped (exposition format). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed are escaped. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Go's strconv-style float text that Prometheus parses: integers plain, others up to ms precision. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Number.isInteger(n)) return String(n);
  return String(Math.round(n * 1000) / 1000);
}

function renderFamily(f: Family): string {
  const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.samples) {
    const entries = Object.entries(s.labels);
    const labels = entries.length ? `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}` : '';
    lines.push(`${f.name}${labels} ${formatValue(s.value)}`);
  }
  return lines.join('\n');
}

const secs = (ms: number): number => ms / 1000;

/**
 * The file's text. Pure: `now` is the end of the run (epoch ms). Hubs are those of `config`, in
 * config order; a hub the state does not know yet has zero counters.
 */
export function renderMetrics(state: State, summary: RunSummary, config: Config, now: number): string {
  const fam = (name: string, type: MetricType, help: string): Family => ({ name, type, help, samples: [] });
  const info = fam('fnpoll_hub_info', 'gauge', 'Configured hub: always 1; labels give its FTN address and host.');
  const lastSuccess = fam('fnpoll_hub_last_success_timestamp_seconds', 'gauge', 'Start of the last successful session (unix time); 0 = never.');
  const lastAttempt = fam('fnpoll_hub_last_attempt_timestamp_seconds', 'gauge', 'Start of the last session attempt (unix time); 0 = never.');
  const failures = fam('fnpoll_hub_consecutive_failures', 'gauge', 'Failed sessions since the last success.');
  const held = fam('fnpoll_hub_held', 'gauge', '1 while fnpoll holds the hub after max_retries failures, else 0.');
  const next = fam(
    'fnpoll_hub_next_attempt_timestamp_seconds',
    'gauge',
    'When the hub is next due by schedule, backoff or hold (unix time); queued mail may make it earlier. Absent when it polls only for mail.',
  );
  const sessions = fam('fnpoll_hub_sessions_total', 'counter', 'Sessions by result, since the hub entered the state file.');
  const bytes = fam('fnpoll_hub_transferred_bytes_total', 'counter', 'File data bytes by direction, since the hub entered the state file.');
  const files = fam('fnpoll_hub_transferred_files_total', 'counter', 'Files by direction, since the hub entered the state file.');
  const lastDuration = fam('fnpoll_hub_last_session_duration_seconds', 'gauge', 'Duration of the last session, successful or not.');
  const lastOptions = fam(
    'fnpoll_hub_last_session_extensions',
    'gauge',
    'Always 1; the label lists the protocol extensions in force in the last session (GZ PLZ CRYPT CRC ND NR), empty for none.',
  );

  for (const hub of config.hubs) {
    const h = state.hubs[hub.key];
    const l = { hub: hub.name };
    // A looked-up hub (issue 12) shows the host that answered last, else `*`.
    const host = hub.reach.hosts.length ? `${hub.host}:${hub.port}` : h?.reached ? `${h.reached.host}:${h.reached.port}` : '*';
    info.samples.push({ labels: { hub: hub.name, address: formatAddress(hub.address), host }, value: 1 });
    lastSuccess.samples.push({ labels: l, value: h?.lastSuccess === undefined ? 0 : secs(h.lastSuccess) });
    lastAttempt.samples.push({ labels: l, value: h?.lastAttempt === undefined ? 0 : secs(h.lastAttempt) });
    failures.samples.push({ labels: l, value: h?.consecutiveFailures ?? 0 });
    held.samples.push({ labels: l, value: h?.heldUntil !== undefined && h.heldUntil > now ? 1 : 0 });
    const plan = planHub(hub, h, undefined, undefined, now);
    if (plan.nextAttempt !== undefined) next.samples.push({ labels: l, value: secs(plan.nextAttempt) });
    const t = h?.totals;
    sessions.samples.push({ labels: { ...l, result: 'ok' }, value: t?.sessionsOk ?? 0 });
    sessions.samples.push({ labels: { ...l, result: 'failed' }, value: t?.sessionsFailed ?? 0 });
    bytes.samples.push({ labels: { ...l, direction: 'sent' }, value: t?.bytesSent ?? 0 });
    bytes.samples.push({ labels: { ...l, direction: 'received' }, value: t?.bytesReceived ?? 0 });
    files.samples.push({ labels: { ...l, direction: 'sent' }, value: t?.filesSent ?? 0 });
    files.samples.push({ labels: { ...l, direction: 'received' }, value: t?.filesReceived ?? 0 });
    const last = h?.history[h.history.length - 1];
    if (last) lastDuration.samples.push({ labels: l, value: secs(last.durationMs) });
    if (last) lastOptions.samples.push({ labels: { ...l, extensions: (last.extensions ?? []).join(' ') }, value: 1 });
  }

  const runTime = fam('fnpoll_run_timestamp_seconds', 'gauge', 'End of the last fnpoll run (unix time).');
  runTime.samples.push({ labels: {}, value: secs(now) });
  const runDuration = fam('fnpoll_run_duration_seconds', 'gauge', 'Duration of the last fnpoll run.');
  runDuration.samples.push({ labels: {}, value: secs(summary.durationMs) });
  const runExit = fam('fnpoll_run_exit_code', 'gauge', 'Exit status of the last fnpoll run (0 ok, 1 a session failed, 143/130 signals; see README).');
  runExit.samples.push({ labels: {}, value: summary.exitCode });
  const runSessions = fam('fnpoll_run_sessions', 'gauge', 'Sessions in the last run by result (skipped = the hub was busy elsewhere).');
  runSessions.samples.push({ labels: { result: 'ok' }, value: summary.ok });
  runSessions.samples.push({ labels: { result: 'failed' }, value: summary.failed });
  runSessions.samples.push({ labels: { result: 'skipped' }, value: summary.skipped });
  const runDue = fam('fnpoll_run_hubs_due', 'gauge', 'Hubs that were due in the last run.');
  runDue.samples.push({ labels: {}, value: summary.due });

  const all = [info, lastSuccess, lastAttempt, failures, held, next, sessions, bytes, files, lastDuration, lastOptions, runTime, runDuration, runExit, runSessions, runDue];
  // A family without samples would be a HELP/TYPE pair with nothing under it: leave it out.
  return `${all.filter((f) => f.samples.length).map(renderFamily).join('\n')}\n`;
}

/**
 * Replace `file` atomically (temp file + rename in the same directory, as node_exporter asks: it
 * must never read a half-written file). Mode 0644 so node_exporter's user can read it.
 */
export async function writeMetricsFile(file: string, text: string): Promise<void> {
  try {
    await makeDirs(dirname(file));
    await writeFileAtomic(file, text, { mode: 0o644, fsync: false });
  } catch (err) {
    throw new IoError(`cannot write metrics_file ${file}: ${errorText(err)}`, { cause: err });
  }
}
