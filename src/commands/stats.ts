/**
 * `fnpoll stats [hub] [--json]`: per hub, the cumulative totals from the state file, the success
 * ratio, the average session time and transfer rate, and the last sessions. Read-only.
 *
 * The state keeps totals since the hub entered it, but durations only for the sessions in its
 * bounded history (the last 10): averages are over those sessions and say so.
 */
import type { GlobalFlags, Io } from './io.js';
import type { HubConfig } from '../config/types.js';
import { resolveHubs } from '../config/load.js';
import { ExitCode, type FailureKind } from '../errors.js';
import { formatAddress } from '../ftn/address.js';
import type { HubTotals, State } from '../poll/state.js';
import { bytesPerSecond, formatBytes, formatLocalTime, formatRate } from '../format.js';
import { loadConfigFor } from './common.js';

/** One session in `stats --json`. Field names are part of the interface. */
export interface StatsSession {
  startedAt: string;
  durationSeconds: number;
  ok: boolean;
  kind: FailureKind | null;
  message: string | null;
  filesSent: number;
  filesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Protocol extensions in force: GZ, PLZ, CRYPT, CRC, ND, NR. */
  extensions: string[];
}

/** One hub in `stats --json`. */
export interface StatsHub {
  name: string;
  address: string;
  totals: HubTotals & { sessions: number };
  /** sessionsOk / sessions; null before the first session. */
  successRatio: number | null;
  /** Over `recent` (the state keeps no older durations); null when it is empty. */
  averageSessionSeconds: number | null;
  /** Bytes both ways per second of session time over `recent`; null when there was no session time. */
  averageBytesPerSecond: number | null;
  /** Oldest first, as kept in the state file. */
  recent: StatsSession[];
}

export interface StatsJson {
  hubs: StatsHub[];
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** Statistics of one hub from the state. Pure. */
export function hubStats(hub: HubConfig, state: State): StatsHub {
  const h = state.hubs[hub.key];
  const t = h?.totals;
  const sessions = (t?.sessionsOk ?? 0) + (t?.sessionsFailed ?? 0);
  const history = h?.history ?? [];
  const totalMs = history.reduce((a, e) => a + e.durationMs, 0);
  const totalBytes = history.reduce((a, e) => a + e.bytesSent + e.bytesReceived, 0);
  return {
    name: hub.name,
    address: formatAddress(hub.address),
    totals: {
      sessions,
      sessionsOk: t?.sessionsOk ?? 0,
      sessionsFailed: t?.sessionsFailed ?? 0,
      filesSent: t?.filesSent ?? 0,
      filesReceived: t?.filesReceived ?? 0,
      bytesSent: t?.bytesSent ?? 0,
      bytesReceived: t?.bytesReceived ?? 0,
    },
    successRatio: sessions ? round((t?.sessionsOk ?? 0) / sessions, 4) : null,
    averageSessionSeconds: history.length ? round(totalMs / history.length / 1000, 3) : null,
    averageBytesPerSecond: bytesPerSecond(totalBytes, totalMs),
    recent: history.map((e) => ({
      startedAt: new Date(e.startedAt).toISOString(),
      durationSeconds: round(e.durationMs / 1000, 3),
      ok: e.ok,
      kind: e.kind ?? null,
      message: e.message ?? null,
      filesSent: e.filesSent,
      filesReceived: e.filesReceived,
      bytesSent: e.bytesSent,
      bytesReceived: e.bytesReceived,
      extensions: e.extensions ?? [],
    })),
  };
}

const files = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;

/** `  last sessions:` and one line per session, newest first, in local time (also `status <hub>`). */
export function formatRecent(recent: StatsHub['recent']): string[] {
  if (recent.length === 0) return ['  no sessions yet'];
  const lines = ['  last sessions:'];
  for (const e of [...recent].reverse()) {
    const when = formatLocalTime(Date.parse(e.startedAt));
    const what = e.ok
      ? `sent ${files(e.filesSent)} ${formatBytes(e.bytesSent)}, received ${files(e.filesReceived)} ${formatBytes(e.bytesReceived)}`
      : `${e.kind ?? 'error'}${e.message ? `: ${e.message}` : ''}`;
    const ext = e.extensions.length ? `  [${e.extensions.join(' ')}]` : '';
    lines.push(`    ${when}  ${(e.ok ? 'ok' : 'failed').padEnd(6)}  ${`${e.durationSeconds.toFixed(1)} s`.padStart(8)}  ${what}${ext}`);
  }
  return lines;
}

/** The human report, one block per hub, ending with a newline. Pure. */
export function formatStats(hubs: StatsHub[]): string {
  if (hubs.length === 0) return 'no hubs configured\n';
  const blocks = hubs.map((s) => {
    const t = s.totals;
    const lines = [`${s.name} (${s.address})`];
    const ratio = s.successRatio === null ? '' : `, ${Math.round(s.successRatio * 100)}% ok`;
    lines.push(`  sessions  ${t.sessions} (${t.sessionsOk} ok, ${t.sessionsFailed} failed${ratio})`);
    lines.push(`  sent      ${files(t.filesSent)}, ${formatBytes(t.bytesSent)}`);
    lines.push(`  received  ${files(t.filesReceived)}, ${formatBytes(t.bytesReceived)}`);
    if (s.averageSessionSeconds !== null) {
      const rate = s.averageBytesPerSecond === null ? '' : `, ${formatRate(s.averageBytesPerSecond)}`;
      lines.push(`  average   ${s.averageSessionSeconds.toFixed(1)} s per session${rate} (last ${s.recent.length} session${s.recent.length === 1 ? '' : 's'})`);
    }
    lines.push(...formatRecent(s.recent));
    return lines.join('\n');
  });
  return `${blocks.join('\n\n')}\n`;
}

/** `stats --json` for the chosen hubs. Pure. */
export function statsJson(hubs: HubConfig[], state: State): StatsJson {
  return { hubs: hubs.map((h) => hubStats(h, state)) };
}

/** `fnpoll stats [hub]`. An unknown hub is a usage error (64) naming the known ones. */
export async function commandStats(selector: string | undefined, flags: GlobalFlags, io: Io): Promise<number> {
  const config = await loadConfigFor(flags, io);
  const hubs = resolveHubs(config, selector === undefined ? [] : [selector]);
  const { loadStateReadOnly } = await import('../poll/inputs.js');
  const state = await loadStateReadOnly(config.poller.stateFile, (m) => io.err(`fnpoll: warning: ${m}\n`));
  const doc = statsJson(hubs, state);
  io.out(flags.json ? `${JSON.stringify(doc, null, 2)}\n` : formatStats(doc.hubs));
  return ExitCode.OK;
}
